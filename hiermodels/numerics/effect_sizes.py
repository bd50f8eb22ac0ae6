"""Effect sizes and their sampling variances, as the R package metafor's ``escalc`` computes them.

:func:`escalc` takes a measure name and the data under metafor's argument names and returns
``(yi, vi)``: the estimates and their large-sample sampling variances (metafor's default
``vtype="LS"``). The measures live in the registry :data:`MEASURES` (name -> :class:`Measure`);
formulas are those of metafor 3.8 (Viechtbauer 2010, J. Stat. Softw. 36(3); ``?escalc``):

=========  =======================================  ===========================================
measure    data                                     estimate
=========  =======================================  ===========================================
MD         m1i, m2i, sd1i, sd2i, n1i, n2i            raw mean difference
SMD        m1i, m2i, sd1i, sd2i, n1i, n2i            Hedges' g (exact small-sample correction)
ROM        m1i, m2i, sd1i, sd2i, n1i, n2i            log ratio of means
COR        ri, ni                                    raw correlation
ZCOR       ri, ni                                    Fisher's r-to-z
PR         xi, ni (or mi = ni - xi)                  raw proportion
PLO        xi, ni (or mi)                            logit of the proportion
IR         xi, ti                                    incidence rate
IRLN       xi, ti                                    log incidence rate
IRR        x1i, x2i, t1i, t2i                        log incidence rate ratio
RR         ai, bi, ci, di (or ai, n1i, ci, n2i)      log risk ratio
OR         ai, bi, ci, di (or ai, n1i, ci, n2i)      log odds ratio
RD         ai, bi, ci, di (or ai, n1i, ci, n2i)      risk difference
PETO       ai, bi, ci, di (or ai, n1i, ci, n2i)      Peto's log odds ratio
=========  =======================================  ===========================================

Counts of zero make log and logit measures infinite. Like metafor, every count measure adds
``add`` (default 1/2; Gart & Zweifel 1967) to the cells of a study: ``to="only0"`` (default)
only to studies with a zero cell, ``to="all"`` to every study, ``to="if0all"`` to every study
if any study has a zero cell, ``to="none"`` never. The corrected counts enter both ``yi`` and
``vi``, for every count measure (also PR, RD and PETO, as metafor does by default).
The cells checked and corrected are ai, bi, ci, di (2x2 tables), x1i, x2i (IRR), xi and
mi = ni - xi (PR, PLO) and xi alone (IR, IRLN). ``drop00=True`` gives NaN for studies with no
events (or only events) in both groups: ai = ci = 0 or bi = di = 0 (2x2 tables),
x1i = x2i = 0 (IRR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from hiermodels.errors import DataError

__all__ = [
    "MEASURES",
    "TRANSFORMS",
    "Measure",
    "escalc",
    "hedges_correction",
    "log_odds_ratio",
    "log_risk_ratio",
    "risk_difference",
]

_TO = ("only0", "all", "if0all", "none")

#: Back-transforms of the measures' scales to the scale readers know (summaries, plots).
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: np.asarray(x, dtype=float),
    "exp": np.exp,  # log ratios (RR, OR, PETO, ROM, IRR, IRLN) -> ratios
    "tanh": np.tanh,  # Fisher's z -> correlation (inverse of atanh)
    "expit": special.expit,  # logit -> proportion
}


def _arrays(names, values):
    arrays = [np.asarray(x, dtype=float) for x in values]
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{n} {np.shape(x)}" for n, x in zip(names, values, strict=True))
        raise DataError(f"{', '.join(names)} must have the same length; got {shapes}") from None
    return [np.atleast_1d(a).astype(float) for a in arrays]


def _check(name, x, ok, rule, what="values"):
    bad = np.flatnonzero(np.ravel(~(np.isfinite(x) & ok)))
    if bad.size:
        raise DataError(f"{name} has invalid {what} at positions {bad.tolist()}; {rule}")


def _counts(**cells):
    for name, c in cells.items():
        _check(name, c, c >= 0, "counts must be >= 0", "counts")


def _correct(cells, add, to):
    """metafor's continuity correction: ``add`` to all ``cells`` of the studies ``to`` says."""
    if to not in _TO:
        raise DataError(f"to must be one of {_TO}, got {to!r}")
    if not (np.isfinite(add) and add >= 0):
        raise DataError(f"add must be a finite number >= 0, got {add!r}")
    zero = np.any([c == 0 for c in cells], axis=0)  # NaN (dropped) studies count as no zero
    mask = {
        "only0": zero,
        "all": np.ones_like(zero),
        "if0all": np.full_like(zero, zero.any()),
        "none": np.zeros_like(zero),
    }[to]
    return [c + add * mask for c in cells]


def _drop(cells, double_zero, drop00):
    if not drop00:
        return cells
    return [np.where(double_zero, np.nan, c) for c in cells]


def _table(ai, bi, ci, di, n1i, n2i):
    """The four cells, with bi = n1i - ai and di = n2i - ci where only totals are given."""
    if bi is None and n1i is not None:
        bi = np.asarray(n1i, dtype=float) - np.asarray(ai, dtype=float)
    if di is None and n2i is not None:
        di = np.asarray(n2i, dtype=float) - np.asarray(ci, dtype=float)
    if any(x is None for x in (ai, bi, ci, di)):
        raise DataError("a 2x2 table needs ai, ci and either bi, di or n1i, n2i")
    a, b, c, d = _arrays(("ai", "bi", "ci", "di"), (ai, bi, ci, di))
    _counts(ai=a, bi=b, ci=c, di=d)
    for arm, n in (("treated (ai + bi)", a + b), ("control (ci + di)", c + d)):
        empty = np.flatnonzero(n == 0)
        if empty.size:
            raise DataError(
                f"the {arm} arm has no patients at positions {empty.tolist()}; its risk is "
                "undefined"
            )
    return a, b, c, d


def _corrected_table(ai, bi, ci, di, n1i, n2i, add, to, drop00):
    a, b, c, d = _table(ai, bi, ci, di, n1i, n2i)
    # no events in both groups, or only events: the table says nothing about the contrast
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    return _correct(_drop([a, b, c, d], double_zero, drop00), add, to)


# -- formulas: each takes metafor's arguments and the correction options, returns (yi, vi)


def _rr(ai, ci, bi=None, di=None, n1i=None, n2i=None, *, add, to, drop00):
    a, b, c, d = _corrected_table(ai, bi, ci, di, n1i, n2i, add, to, drop00)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(a / (a + b)) - np.log(c / (c + d))
        vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)  # delta method
    return yi, vi


def _or(ai, ci, bi=None, di=None, n1i=None, n2i=None, *, add, to, drop00):
    a, b, c, d = _corrected_table(ai, bi, ci, di, n1i, n2i, add, to, drop00)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(a / b) - np.log(c / d)
        vi = 1 / a + 1 / b + 1 / c + 1 / d  # Woolf (1955)
    return yi, vi


def _rd(ai, ci, bi=None, di=None, n1i=None, n2i=None, *, add, to, drop00):
    a, b, c, d = _corrected_table(ai, bi, ci, di, n1i, n2i, add, to, drop00)
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def _peto(ai, ci, bi=None, di=None, n1i=None, n2i=None, *, add, to, drop00):
    # observed minus expected events in the treated arm over its hypergeometric variance
    # (Yusuf et al. 1985); metafor applies add/to here as for the other 2x2 measures
    a, b, c, d = _corrected_table(ai, bi, ci, di, n1i, n2i, add, to, drop00)
    n1, n2 = a + b, c + d
    n = n1 + n2
    events, non_events = a + c, b + d
    with np.errstate(divide="ignore", invalid="ignore"):
        info = events * non_events * (n1 / n) * (n2 / n) / (n - 1)
        return (a - events * n1 / n) / info, 1 / info


def _irr(x1i, x2i, t1i, t2i, *, add, to, drop00):
    x1, x2, t1, t2 = _arrays(("x1i", "x2i", "t1i", "t2i"), (x1i, x2i, t1i, t2i))
    _counts(x1i=x1, x2i=x2)
    for name, t in (("t1i", t1), ("t2i", t2)):
        _check(name, t, t > 0, "person-times must be > 0")
    x1, x2 = _correct(_drop([x1, x2], (x1 == 0) & (x2 == 0), drop00), add, to)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x1 / t1) - np.log(x2 / t2), 1 / x1 + 1 / x2


def _rate(xi, ti, add, to):
    x, t = _arrays(("xi", "ti"), (xi, ti))
    _counts(xi=x)
    _check("ti", t, t > 0, "person-times must be > 0")
    (x,) = _correct([x], add, to)
    return x, t


def _ir(xi, ti, *, add, to, drop00):
    x, t = _rate(xi, ti, add, to)
    return x / t, x / t**2  # Poisson


def _irln(xi, ti, *, add, to, drop00):
    x, t = _rate(xi, ti, add, to)
    with np.errstate(divide="ignore"):
        return np.log(x / t), 1 / x


def _proportion(xi, ni, mi, add, to):
    if ni is None and mi is None:
        raise DataError("a proportion needs xi and either ni or mi (= ni - xi)")
    if mi is None:
        mi = np.asarray(ni, dtype=float) - np.asarray(xi, dtype=float)
    x, m = _arrays(("xi", "mi"), (xi, mi))
    _counts(xi=x, mi=m)  # mi < 0 means xi > ni
    _check("ni", x + m, x + m > 0, "group sizes must be > 0")
    return _correct([x, m], add, to)


def _pr(xi, ni=None, mi=None, *, add, to, drop00):
    x, m = _proportion(xi, ni, mi, add, to)
    p = x / (x + m)
    return p, p * (1 - p) / (x + m)


def _plo(xi, ni=None, mi=None, *, add, to, drop00):
    x, m = _proportion(xi, ni, mi, add, to)
    with np.errstate(divide="ignore"):
        return np.log(x / m), 1 / x + 1 / m


def _means(m1i, m2i, sd1i, sd2i, n1i, n2i):
    names = ("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i")
    arrays = _arrays(names, (m1i, m2i, sd1i, sd2i, n1i, n2i))
    for name, x in zip(names, arrays, strict=True):
        _check(name, x, np.ones_like(x, dtype=bool), "values must be finite")
    for name, x in zip(names[2:4], arrays[2:4], strict=True):
        _check(name, x, x >= 0, "standard deviations must be >= 0")
    for name, x in zip(names[4:], arrays[4:], strict=True):
        _check(name, x, x > 0, "group sizes must be > 0")
    return arrays


def _md(m1i, m2i, sd1i, sd2i, n1i, n2i, **_):
    m1, m2, s1, s2, n1, n2 = _means(m1i, m2i, sd1i, sd2i, n1i, n2i)
    return m1 - m2, s1**2 / n1 + s2**2 / n2  # no equal-variance assumption


def hedges_correction(mi):
    """Exact small-sample bias correction c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)).

    Hedges (1981), eq. 6e; metafor's ``.cmicalc``. NaN for m <= 1. Computed with log-gamma
    so it stays finite for large m (it tends to 1 like 1 - 3 / (4m - 1)).

    Examples
    --------
    >>> round(float(hedges_correction(10)), 6)
    0.922746
    """
    m = np.asarray(mi, dtype=float)
    with np.errstate(invalid="ignore"):
        safe = np.where(m > 1, m, 2.0)
        c = np.exp(
            special.gammaln(safe / 2) - 0.5 * np.log(safe / 2) - special.gammaln((safe - 1) / 2)
        )
    return np.where(m > 1, c, np.nan)


def _smd(m1i, m2i, sd1i, sd2i, n1i, n2i, **_):
    m1, m2, s1, s2, n1, n2 = _means(m1i, m2i, sd1i, sd2i, n1i, n2i)
    df = n1 + n2 - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        sd_pooled = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
        g = hedges_correction(df) * (m1 - m2) / sd_pooled
        # vtype="LS": Hedges (1982), with g in place of d in the large-sample variance
        return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def _rom(m1i, m2i, sd1i, sd2i, n1i, n2i, **_):
    m1, m2, s1, s2, n1, n2 = _means(m1i, m2i, sd1i, sd2i, n1i, n2i)
    for name, m in (("m1i", m1), ("m2i", m2)):
        _check(name, m, m > 0, "a ratio of means needs positive means")
    # delta method (Hedges, Gurevitch & Curtis 1999, eq. 1)
    return np.log(m1 / m2), s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)


def _correlations(ri, ni):
    r, n = _arrays(("ri", "ni"), (ri, ni))
    _check("ri", r, np.abs(r) <= 1, "correlations must lie in [-1, 1]")
    _check("ni", n, n > 0, "sample sizes must be > 0")
    return r, n


def _cor(ri, ni, **_):
    r, n = _correlations(ri, ni)
    with np.errstate(divide="ignore"):
        vi = (1 - r**2) ** 2 / (n - 1)
    return r, np.where(n > 3, vi, np.nan)  # metafor leaves vi missing for ni <= 3


def _zcor(ri, ni, **_):
    r, n = _correlations(ri, ni)
    with np.errstate(divide="ignore"):
        return np.arctanh(r), np.where(n > 3, 1 / np.where(n > 3, n - 3, 1.0), np.nan)


@dataclass(frozen=True)
class Measure:
    """One effect-size measure of metafor's ``escalc``: a registry entry of :data:`MEASURES`.

    Attributes
    ----------
    name : str
        metafor's ``measure=`` code.
    description : str
    arguments : tuple of tuple of str
        The accepted sets of data arguments (metafor's names); the first is the main one.
    formula : callable
        ``formula(**data, add=, to=, drop00=) -> (yi, vi)``.
    back_transform : str
        Key of :data:`TRANSFORMS` that maps the measure's scale back to a natural one.
    corrected : bool
        Whether ``add``/``to`` apply (count data); ``drop00`` applies to 2x2 tables and IRR.
    source : str
    """

    name: str
    description: str
    arguments: tuple[tuple[str, ...], ...]
    formula: Callable[..., tuple[np.ndarray, np.ndarray]]
    back_transform: str = "identity"
    corrected: bool = False
    source: str = ""


_TWO_BY_TWO = (("ai", "bi", "ci", "di"), ("ai", "n1i", "ci", "n2i"))
_MEANS = (("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i"),)
_PROPORTION = (("xi", "ni"), ("xi", "mi"))

#: metafor's ``escalc`` measures, by their ``measure=`` code.
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("MD", "raw mean difference", _MEANS, _md, source="Borenstein 2009, eq. 4.5"),
        Measure(
            "SMD",
            "standardized mean difference (Hedges' g, exact bias correction)",
            _MEANS,
            _smd,
            source="Hedges 1981; Hedges & Olkin 1985, eq. 5.8",
        ),
        Measure(
            "ROM",
            "log ratio of means",
            _MEANS,
            _rom,
            "exp",
            source="Hedges, Gurevitch & Curtis 1999",
        ),
        Measure("COR", "raw correlation coefficient", (("ri", "ni"),), _cor, source="Olkin 1958"),
        Measure(
            "ZCOR",
            "Fisher's r-to-z transformed correlation",
            (("ri", "ni"),),
            _zcor,
            "tanh",
            source="Fisher 1921",
        ),
        Measure("PR", "raw proportion", _PROPORTION, _pr, corrected=True),
        Measure("PLO", "logit transformed proportion", _PROPORTION, _plo, "expit", True),
        Measure("IR", "incidence rate", (("xi", "ti"),), _ir, corrected=True),
        Measure("IRLN", "log incidence rate", (("xi", "ti"),), _irln, "exp", True),
        Measure(
            "IRR",
            "log incidence rate ratio",
            (("x1i", "x2i", "t1i", "t2i"),),
            _irr,
            "exp",
            True,
        ),
        Measure("RR", "log risk ratio", _TWO_BY_TWO, _rr, "exp", True, "Fleiss & Berlin 2009"),
        Measure("OR", "log odds ratio", _TWO_BY_TWO, _or, "exp", True, "Woolf 1955"),
        Measure("RD", "risk difference", _TWO_BY_TWO, _rd, corrected=True),
        Measure(
            "PETO", "Peto's log odds ratio", _TWO_BY_TWO, _peto, "exp", True, "Yusuf et al. 1985"
        ),
    )
}


def escalc(measure, /, *, add=0.5, to="only0", drop00=False, **data):
    """Effect sizes ``yi`` and sampling variances ``vi``, as metafor's ``escalc(measure, ...)``.

    Parameters
    ----------
    measure : str
        A key of :data:`MEASURES` ("MD", "SMD", "ROM", "COR", "ZCOR", "PR", "PLO", "IR",
        "IRLN", "IRR", "RR", "OR", "RD", "PETO").
    add, to, drop00
        Continuity correction of count measures, as in metafor (see the module docstring);
        ignored by the other measures, as in metafor.
    **data : array_like
        The measure's data under metafor's names (``Measure.arguments``), e.g.
        ``ai=, bi=, ci=, di=`` or ``ai=, n1i=, ci=, n2i=`` for "RR".

    Returns
    -------
    (yi, vi) : (ndarray, ndarray)

    Examples
    --------
    Normand (1999), study 1: length of stay under specialist and routine stroke care

    >>> yi, vi = escalc("SMD", m1i=55, sd1i=47, n1i=155, m2i=75, sd2i=64, n2i=156)
    >>> round(float(yi[0]), 4), round(float(vi[0]), 4)
    (-0.3552, 0.0131)
    """
    spec = MEASURES.get(measure)
    if spec is None:
        raise DataError(f"unknown measure {measure!r}; choose one of {sorted(MEASURES)}")
    given = {name for name, value in data.items() if value is not None}
    if not any(set(names) <= given for names in spec.arguments):
        options = " or ".join(", ".join(names) for names in spec.arguments)
        raise DataError(f"measure {measure!r} needs {options}; got {sorted(given) or 'nothing'}")
    allowed = {name for names in spec.arguments for name in names}
    unknown = sorted(given - allowed)
    if unknown:
        raise DataError(f"measure {measure!r} takes no {unknown}; it takes {sorted(allowed)}")
    if to not in _TO:
        raise DataError(f"to must be one of {_TO}, got {to!r}")
    kwargs = {name: data[name] for name in given}
    return spec.formula(**kwargs, add=add, to=to, drop00=drop00)


# -- the original functions, returning the standard error (kept for hiermodels.meta.api)


def log_risk_ratio(ai, bi, ci, di, *, add=0.5, to="only0"):
    """Log risk ratio and its standard error (metafor ``measure="RR"``).

    yi = log(ai / (ai + bi)) - log(ci / (ci + di)),
    vi = 1/ai - 1/(ai + bi) + 1/ci - 1/(ci + di) (delta method; Fleiss & Berlin 2009).

    Examples
    --------
    BCG trial 1 (Aronson 1948) of metafor's ``dat.bcg``:

    >>> yi, sei = log_risk_ratio(4, 119, 11, 128)
    >>> round(float(yi), 4), round(float(sei**2), 4)
    (-0.8893, 0.3256)
    """
    yi, vi = _rr(ai, ci, bi, di, add=add, to=to, drop00=False)
    return _scalar(ai, yi), _scalar(ai, np.sqrt(vi))


def log_odds_ratio(ai, bi, ci, di, *, add=0.5, to="only0"):
    """Log odds ratio and its standard error (metafor ``measure="OR"``).

    yi = log(ai di / (bi ci)), vi = 1/ai + 1/bi + 1/ci + 1/di (Woolf 1955).

    Examples
    --------
    >>> yi, sei = log_odds_ratio(4, 119, 11, 128)
    >>> round(float(yi), 4), round(float(sei**2), 4)
    (-0.9387, 0.3571)
    """
    yi, vi = _or(ai, ci, bi, di, add=add, to=to, drop00=False)
    return _scalar(ai, yi), _scalar(ai, np.sqrt(vi))


def risk_difference(ai, bi, ci, di, *, add=0.5, to="only0"):
    """Risk difference and its large-sample standard error (metafor ``measure="RD"``).

    yi = p1 - p2, vi = p1 (1 - p1) / n1 + p2 (1 - p2) / n2 with p1 = ai / n1, n1 = ai + bi
    (metafor's default ``vtype="LS"``; it applies ``add``/``to`` here too).

    Examples
    --------
    >>> yi, sei = risk_difference(10, 90, 20, 80)
    >>> round(float(yi), 4), round(float(sei**2), 6)
    (-0.1, 0.0025)
    """
    yi, vi = _rd(ai, ci, bi, di, add=add, to=to, drop00=False)
    return _scalar(ai, yi), _scalar(ai, np.sqrt(vi))


def _scalar(template, x):
    """Scalar in, scalar out (the shape the original functions returned)."""
    return x.reshape(()) if np.ndim(template) == 0 and x.size == 1 else x
