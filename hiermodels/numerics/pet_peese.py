"""PET-PEESE: the effect of a study of infinite precision, from two weighted regressions.

PET regresses the estimates on their standard errors, PEESE on their variances, and a
conditional rule picks one intercept as the estimate (Stanley & Doucouliagos 2014, Res.
Synth. Methods 5:60-78). It is read like the funnel-asymmetry tests of
:mod:`hiermodels.numerics.bias`, whose weighted line (:class:`~hiermodels.numerics.bias.WLSLine`),
input checks and caveats it shares: a sensitivity analysis, biased when studies are
heterogeneous or few, not a corrected estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.bias import _CAVEAT, WLSLine, _arrays, _few, _p, _wls
from hiermodels.numerics.heterogeneity import scaled_se

__all__ = ["PetPeese", "pet_peese"]


@dataclass(frozen=True)
class PetPeese:
    """PET and PEESE meta-regressions and the conditional PET-PEESE estimate.

    ``pet`` regresses y on se, ``peese`` on se^2 (both :class:`WLSLine`, weights 1/se^2);
    ``use`` is "PEESE" if PET's intercept is significantly different from 0 at the one-sided
    ``alpha`` level in the tested direction, else "PET"; ``estimate``/``ci_low``/``ci_high``
    are the chosen line's intercept and interval.
    """

    pet: WLSLine
    peese: WLSLine
    pet_pvalue_one_sided: float
    direction: str
    alpha: float
    use: str
    k: int

    @property
    def chosen(self):
        """The line the conditional rule picks."""
        return self.peese if self.use == "PEESE" else self.pet

    @property
    def estimate(self):
        return self.chosen.intercept

    @property
    def ci_low(self):
        return self.chosen.ci_low

    @property
    def ci_high(self):
        return self.chosen.ci_high

    @property
    def reading(self):
        """What PET-PEESE says, in one paragraph of plain language."""
        lvl = f"{self.chosen.level:.0%} CI"
        pet = (
            f"PET (regression on the standard error) gives an effect of {self.pet.intercept:.3g} "
            f"for a study of infinite precision ({lvl} {self.pet.ci_low:.3g} to "
            f"{self.pet.ci_high:.3g}; one-sided {_p(self.pet_pvalue_one_sided)})."
        )
        if self.use == "PEESE":
            rule = (
                " As that is significantly different from zero, PEESE (regression on the "
                f"variance), which is less biased when there is a real effect, is used: "
                f"{self.peese.intercept:.3g} ({lvl} {self.peese.ci_low:.3g} to "
                f"{self.peese.ci_high:.3g})."
            )
        else:
            rule = (
                " As that is not significantly different from zero, PET is used: the data do "
                "not show an effect once small-study effects are allowed for."
            )
        caveat = (
            " PET-PEESE is biased when studies are heterogeneous or few (Stanley 2017; Carter "
            "et al. 2019); read it as a sensitivity analysis. " + _CAVEAT
        )
        return pet + rule + _few(self.k) + caveat


def _rescaled(line, unit, slope_unit):
    return replace(
        line,
        intercept=line.intercept * unit,
        intercept_se=line.intercept_se * unit,
        slope=line.slope * slope_unit,
        slope_se=line.slope_se * slope_unit,
    )


def pet_peese(y, se, *, direction=None, alpha=0.05, level=0.95):
    """PET-PEESE (Stanley & Doucouliagos 2014, Res. Synth. Methods 5:60-78).

    PET: weighted least squares y_i = b0 + b1 se_i + e_i; PEESE: y_i = b0 + b1 se_i^2 + e_i;
    both with weights 1/se_i^2 and a residual variance estimated from the data (R's
    ``lm(y ~ se, weights = 1/se^2)``), t(k - 2) tests and intervals. The intercept b0 is the
    effect of a study with se = 0.

    Conditional rule: if PET's intercept is significantly different from 0 at the one-sided
    ``alpha`` (5%) level, in the expected direction of the effect, report PEESE's intercept,
    otherwise PET's (Stanley & Doucouliagos 2014, §3). ``direction`` is that expected
    direction, "positive" or "negative"; None takes the sign of PET's intercept (the
    one-sided test then equals a two-sided test at 2 alpha, as most software does).

    Returns
    -------
    PetPeese

    Examples
    --------
    >>> res = pet_peese([0.1, 0.3, 0.5, 0.9, 1.2], [0.1, 0.2, 0.3, 0.4, 0.5])
    >>> res.use in ("PET", "PEESE")
    True
    """
    if direction not in (None, "positive", "negative"):
        raise SpecError(f"direction must be 'positive', 'negative' or None, got {direction!r}")
    y, se = _arrays(y, se)
    # fitted in the units of the fits (scaled_se), so se^2 and 1/se^2 stay representable;
    # the intercepts scale back by the unit, PEESE's slope (y per se^2) by 1/unit
    se, unit = scaled_se(se)
    y = y / unit
    w = 1 / se**2
    pet = _rescaled(_wls(y, se, w, level), unit, 1.0)
    peese = _rescaled(_wls(y, se**2, w, level), unit, 1 / unit)
    if direction is None:
        direction = "negative" if pet.intercept < 0 else "positive"
    t = pet.t if direction == "positive" else -pet.t
    p_one = float(stats.t.sf(t, pet.df))
    return PetPeese(
        pet=pet,
        peese=peese,
        pet_pvalue_one_sided=p_one,
        direction=direction,
        alpha=alpha,
        use="PEESE" if p_one < alpha else "PET",
        k=y.size,
    )
