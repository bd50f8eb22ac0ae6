"""Effect sizes from 2x2 tables, as the R package metafor's ``escalc`` computes them.

Each study is a table of counts: ``ai``/``bi`` events/non-events in the treated group and
``ci``/``di`` in the control group. Every function returns ``(yi, sei)``: the estimate and its
large-sample standard error (metafor reports the variance ``vi = sei**2``).

Zero cells make the log measures infinite, so, like metafor, ``add`` (default 1/2) is added to
the four cells of a table (Gart & Zweifel 1967), by default only to tables with a zero
(``to="only0"``); ``to="all"`` adds it to every table, ``to="if0all"`` to every table if any
has a zero, and ``to="none"`` never.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_odds_ratio", "log_risk_ratio", "risk_difference"]

_TO = ("only0", "all", "if0all", "none")


def _cells(ai, bi, ci, di, add, to):
    cells = [np.asarray(c, dtype=float) for c in (ai, bi, ci, di)]
    try:
        cells = list(np.broadcast_arrays(*cells))
    except ValueError:
        raise ValueError("ai, bi, ci and di must have the same length") from None
    names = ("ai", "bi", "ci", "di")
    for name, c in zip(names, cells, strict=True):
        bad = np.flatnonzero(np.ravel(~np.isfinite(c) | (c < 0)))
        if bad.size:
            raise ValueError(
                f"{name} has invalid counts at positions {bad.tolist()}; counts must be >= 0"
            )
    if to not in _TO:
        raise ValueError(f"to must be one of {_TO}, got {to!r}")
    if not (np.isfinite(add) and add >= 0):
        raise ValueError(f"add must be a finite number >= 0, got {add!r}")
    for arm, (e, n) in (("treated (ai + bi)", cells[:2]), ("control (ci + di)", cells[2:])):
        empty = np.flatnonzero(np.ravel(e + n == 0))
        if empty.size:
            raise ValueError(
                f"the {arm} arm has no patients at positions {empty.tolist()}; its risk is "
                "undefined"
            )
    zero = np.any([c == 0 for c in cells], axis=0)
    if to == "all":
        mask = np.ones_like(zero)
    elif to == "only0":
        mask = zero
    elif to == "if0all":
        mask = np.full_like(zero, zero.any())
    else:
        mask = np.zeros_like(zero)
    return [c + add * mask for c in cells]


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
    a, b, c, d = _cells(ai, bi, ci, di, add, to)
    with np.errstate(divide="ignore"):
        yi = np.log(a / (a + b)) - np.log(c / (c + d))
        vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, np.sqrt(vi)


def log_odds_ratio(ai, bi, ci, di, *, add=0.5, to="only0"):
    """Log odds ratio and its standard error (metafor ``measure="OR"``).

    yi = log(ai di / (bi ci)), vi = 1/ai + 1/bi + 1/ci + 1/di (Woolf 1955).

    Examples
    --------
    >>> yi, sei = log_odds_ratio(4, 119, 11, 128)
    >>> round(float(yi), 4), round(float(sei**2), 4)
    (-0.9387, 0.3571)
    """
    a, b, c, d = _cells(ai, bi, ci, di, add, to)
    with np.errstate(divide="ignore"):
        yi = np.log(a / b) - np.log(c / d)
        vi = 1 / a + 1 / b + 1 / c + 1 / d
    return yi, np.sqrt(vi)


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
    a, b, c, d = _cells(ai, bi, ci, di, add, to)
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    return p1 - p2, np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
