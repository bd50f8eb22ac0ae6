"""Prior distributions and the registry of hyperprior presets for group-level SDs.

A prior is a small frozen dataclass that knows three things: how to put itself in a PyMC
model (:meth:`Prior.create`), its log density in numpy (for the exact meta-analysis engine),
and how to print itself. Presets are data: :data:`PRESETS` maps a name to a
:class:`Preset` that turns a data-derived scale into a prior.

Examples
--------
>>> import hiermodels as hm
>>> hm.priors.resolve_hyperprior("half_cauchy", scale=2.0)
HalfCauchy(beta=2)
>>> hm.priors.resolve_hyperprior(hm.priors.HalfNormal(5), scale=2.0)  # explicit prior wins
HalfNormal(sigma=5)
>>> sorted(hm.priors.PRESETS)[:3]
['exponential', 'half_cauchy', 'half_normal']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from hiermodels.errors import SpecError

# scipy.stats is imported inside the logpdf methods that use it: importing it takes ~0.9 s,
# and fitting never needs it (docs/performance.md)

__all__ = [
    "LKJ",
    "PRESETS",
    "Exponential",
    "Gamma",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "InverseGamma",
    "LogNormal",
    "Normal",
    "Preset",
    "Prior",
    "Uniform",
    "resolve_hyperprior",
    "stacked_dist",
]


@dataclass(frozen=True, repr=False)
class Prior:
    """Base class: a named family with numeric parameters.

    Parameters are checked when the prior is made: every one must be a finite number, and
    scales, shapes and rates (every parameter but ``mu``, ``lower`` and ``upper``) > 0.
    """

    _location_fields = ("mu", "lower", "upper")

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "upper":
                continue
            number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, bool
            )
            if not number or not np.isfinite(value):
                raise SpecError(
                    f"{type(self).__name__}: {f.name} must be a finite number, got {value!r}"
                )
            if f.name not in self._location_fields and value <= 0:
                raise SpecError(
                    f"{type(self).__name__}: {f.name} must be > 0, got {value!r}; e.g. "
                    f"{type(self).__name__}({f.name}=1)"
                )

    def create(self, name: str, **kwargs):
        """Add this prior as a random variable ``name`` to the PyMC model in context."""
        import pymc as pm

        return getattr(pm, self._pymc_name)(name, **self.pymc_params(), **kwargs)

    def pymc_params(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at ``x`` (numpy; used by the exact engine)."""
        raise NotImplementedError

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` independent draws from this prior (numpy; used by ``hm.calibrate``).

        ``rng`` is a ``numpy.random.Generator`` or anything ``default_rng`` takes.
        """
        raise SpecError(f"{type(self).__name__}: drawing from this prior is not available")

    # priors whose PyMC .dist() can take a vector of parameters (LKJCholeskyCov's sd_dist)
    vectorizable = False

    def warning(self, n_groups: int) -> str | None:
        """A warning to give when this prior is used for the SD of ``n_groups`` groups."""
        return None

    def to_dict(self) -> dict[str, object]:
        return {"family": type(self).__name__, **self.pymc_params()}

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" for k, v in self.pymc_params().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self) -> str:
        # priors print the same everywhere (tables, messages, the REPL): rounded to 4 digits
        return str(self)


@dataclass(frozen=True, repr=False)
class Normal(Prior):
    """Normal(mu, sigma), for population-level coefficients."""

    mu: float = 0.0
    sigma: float = 1.0
    _pymc_name = "Normal"
    real_line = True  # support: the builders may sample it standardized

    def logpdf(self, x):
        from scipy import stats

        return stats.norm.logpdf(x, self.mu, self.sigma)

    def sample(self, n, rng=None):
        return np.random.default_rng(rng).normal(self.mu, self.sigma, size=n)


@dataclass(frozen=True, repr=False)
class HalfNormal(Prior):
    """Half-normal with scale ``sigma`` on an SD."""

    sigma: float = 1.0
    _pymc_name = "HalfNormal"
    vectorizable = True

    def logpdf(self, x):
        from scipy import stats

        return stats.halfnorm.logpdf(x, scale=self.sigma)

    def sample(self, n, rng=None):
        return np.abs(np.random.default_rng(rng).normal(0.0, self.sigma, size=n))


@dataclass(frozen=True, repr=False)
class HalfCauchy(Prior):
    """Half-Cauchy with scale ``beta`` on an SD (Gelman 2006)."""

    beta: float = 1.0
    _pymc_name = "HalfCauchy"
    vectorizable = True

    def logpdf(self, x):
        from scipy import stats

        return stats.halfcauchy.logpdf(x, scale=self.beta)

    def sample(self, n, rng=None):
        return np.abs(self.beta * np.random.default_rng(rng).standard_cauchy(size=n))


@dataclass(frozen=True, repr=False)
class HalfStudentT(Prior):
    """Half Student-t with scale ``sigma`` and ``nu`` degrees of freedom on an SD."""

    sigma: float = 1.0
    nu: float = 3.0
    _pymc_name = "HalfStudentT"
    vectorizable = True

    def logpdf(self, x):
        from scipy import stats

        return np.where(
            np.asarray(x) >= 0, np.log(2.0) + stats.t.logpdf(x, self.nu, scale=self.sigma), -np.inf
        )

    def sample(self, n, rng=None):
        return np.abs(self.sigma * np.random.default_rng(rng).standard_t(self.nu, size=n))


@dataclass(frozen=True, repr=False)
class Exponential(Prior):
    """Exponential with mean ``scale`` (rate 1/scale) on an SD."""

    scale: float = 1.0

    _pymc_name = "Exponential"
    vectorizable = True

    def pymc_params(self):
        return {"lam": 1.0 / self.scale}

    def to_dict(self):
        return {"family": "Exponential", "scale": self.scale}

    def __str__(self):
        return f"Exponential(scale={self.scale:.4g})"

    def logpdf(self, x):
        from scipy import stats

        return stats.expon.logpdf(x, scale=self.scale)

    def sample(self, n, rng=None):
        return np.random.default_rng(rng).exponential(self.scale, size=n)


@dataclass(frozen=True, repr=False)
class Gamma(Prior):
    """Gamma(alpha, beta) (shape, rate); ``Gamma(2, 0.1)`` is the Student-t degrees-of-freedom
    prior of Juárez & Steel (2010), recommended by the Stan prior-choice wiki."""

    alpha: float = 2.0
    beta: float = 0.1
    _pymc_name = "Gamma"

    def logpdf(self, x):
        from scipy import stats

        return stats.gamma.logpdf(x, self.alpha, scale=1 / self.beta)

    def sample(self, n, rng=None):
        return np.random.default_rng(rng).gamma(self.alpha, 1.0 / self.beta, size=n)


@dataclass(frozen=True, repr=False)
class LogNormal(Prior):
    """Log-normal on an SD: ``log(tau) ~ Normal(mu, sigma)``.

    :meth:`from_variance` turns a log-normal on tau^2 (as Turner et al. 2015 publish it) into
    one on tau: ``log(tau^2) ~ N(m, s)`` is ``log(tau) ~ N(m/2, s/2)``.
    """

    mu: float = 0.0
    sigma: float = 1.0
    _pymc_name = "LogNormal"
    vectorizable = True

    @classmethod
    def from_variance(cls, mu: float, sigma: float) -> LogNormal:
        return cls(mu / 2.0, sigma / 2.0)

    def logpdf(self, x):
        from scipy import stats

        return stats.lognorm.logpdf(x, s=self.sigma, scale=np.exp(self.mu))

    def sample(self, n, rng=None):
        return np.random.default_rng(rng).lognormal(self.mu, self.sigma, size=n)


@dataclass(frozen=True, repr=False)
class InverseGamma(Prior):
    """Inverse-gamma(alpha, beta) on the variance tau^2; the model variable is the SD tau.

    The variance is sampled as ``{name}_variance`` and ``name`` is its square root.
    """

    alpha: float = 0.001
    beta: float = 0.001

    def create(self, name, **kwargs):
        import pymc as pm
        import pytensor.tensor as pt

        variance = pm.InverseGamma(f"{name}_variance", alpha=self.alpha, beta=self.beta, **kwargs)
        return pm.Deterministic(name, pt.sqrt(variance), **kwargs)

    def logpdf(self, x):
        from scipy import stats

        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            # change of variables v = x^2: p(x) = p_v(x^2) * 2x
            return stats.invgamma.logpdf(x**2, self.alpha, scale=self.beta) + np.log(2 * x)

    def sample(self, n, rng=None):
        # the variance is InverseGamma(alpha, beta) = beta / Gamma(alpha, 1); tau its root
        with np.errstate(divide="ignore"):
            return np.sqrt(self.beta / np.random.default_rng(rng).gamma(self.alpha, size=n))

    def warning(self, n_groups):
        return (
            f"{self}: an inverse-gamma prior on the variance puts its mass where tau is tiny "
            "relative to the data and can pull the posterior of tau toward zero, especially "
            "with few groups (Gelman 2006); prefer 'half_cauchy', 'half_normal' or 'half_t'."
        )


@dataclass(frozen=True, repr=False)
class Uniform(Prior):
    """Flat prior on an SD over ``(lower, upper)``; ``upper=None`` is the improper flat prior."""

    lower: float = 0.0
    upper: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.lower < 0:
            raise SpecError(f"Uniform on an SD: lower must be >= 0, got {self.lower!r}")
        if self.upper is not None and self.upper <= self.lower:
            raise SpecError(f"Uniform: upper ({self.upper!r}) must be above lower ({self.lower!r})")

    def create(self, name, **kwargs):
        import pymc as pm

        if self.upper is None:
            return pm.HalfFlat(name, **kwargs)
        return pm.Uniform(name, lower=self.lower, upper=self.upper, **kwargs)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        upper = np.inf if self.upper is None else self.upper
        inside = (x >= self.lower) & (x <= upper)
        density = 0.0 if self.upper is None else -np.log(self.upper - self.lower)
        return np.where(inside, density, -np.inf)

    def sample(self, n, rng=None):
        if self.upper is None:
            raise SpecError(
                f"{self} is improper (no upper bound), so it cannot be drawn from; give an "
                "upper bound, e.g. hm.priors.Uniform(0, 100)"
            )
        return np.random.default_rng(rng).uniform(self.lower, self.upper, size=n)

    def warning(self, n_groups):
        if n_groups >= 4:
            return None
        return (
            f"{self} with only {n_groups} groups: under a flat prior the posterior of tau is "
            "heavy-tailed (improper with 2 groups, no finite mean with 3; BDA3 §5.4); use a "
            "weakly informative prior such as 'half_normal' or 'half_cauchy'."
        )

    def __str__(self):
        upper = "inf" if self.upper is None else f"{self.upper:.4g}"
        return f"Uniform(lower={self.lower:.4g}, upper={upper})"


@dataclass(frozen=True)
class Preset:
    """A named hyperprior for a group-level SD, built from a data-derived ``scale``."""

    name: str
    description: str
    source: str
    make: Callable[[float], Prior]

    def __call__(self, scale: float) -> Prior:
        return self.make(float(scale))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "half_cauchy",
            "HalfCauchy(beta=scale): weakly informative, heavy tail lets the data speak for "
            "large tau.",
            "Gelman (2006), Prior distributions for variance parameters in hierarchical models, "
            "Bayesian Analysis 1(3), §5.",
            lambda s: HalfCauchy(beta=s),
        ),
        Preset(
            "half_normal",
            "HalfNormal(sigma=scale): weakly informative, light tail; regularizes tau when "
            "groups are few.",
            "Röver et al. (2021), Weakly informative priors for the heterogeneity parameter in "
            "Bayesian random-effects meta-analysis, Res. Synth. Methods 12:448-474.",
            lambda s: HalfNormal(sigma=s),
        ),
        Preset(
            "half_t",
            "HalfStudentT(nu=3, sigma=scale): between half-normal and half-Cauchy.",
            "Gelman (2006) §4.3 (folded-t family); brms default student_t(3, 0, 2.5 sd(y)).",
            lambda s: HalfStudentT(sigma=s, nu=3.0),
        ),
        Preset(
            "exponential",
            "Exponential(mean=scale): penalized-complexity prior shrinking toward tau = 0.",
            "Simpson et al. (2017), Penalising model component complexity, Statistical "
            "Science 32(1):1-28.",
            lambda s: Exponential(scale=s),
        ),
        Preset(
            "inverse_gamma",
            "InverseGamma(0.001, 0.001 scale^2) on tau^2: the classic BUGS 'noninformative' "
            "prior; shown for teaching, it can pull tau toward zero.",
            "Spiegelhalter et al. (2003), WinBUGS manual; criticized by Gelman (2006) §3.2.",
            lambda s: InverseGamma(alpha=0.001, beta=0.001 * s**2),
        ),
        Preset(
            "half_normal_logor",
            "HalfNormal(0.5) on tau for log odds (or risk) ratios, whatever the data: "
            "weakly informative, puts 95% of the mass below tau = 1 (a 'fairly high' "
            "heterogeneity); ignores the data scale.",
            "Röver et al. (2021), On weakly informative prior distributions for the "
            "heterogeneity parameter in Bayesian random-effects meta-analysis, Res. Synth. "
            "Methods 12(4):448-474; Friede et al. (2017), Biometrical Journal 59(4):658-671.",
            lambda s: HalfNormal(sigma=0.5),
        ),
        Preset(
            "turner_general",
            "log(tau^2) ~ Normal(-2.56, 1.74) for log odds ratios: empirical prior from 14,886 "
            "Cochrane meta-analyses, general healthcare setting (marginal over outcome types).",
            "Turner et al. (2015), Predictive distributions for between-study heterogeneity "
            "..., Statistics in Medicine 34(6):984-998, p. 993.",
            lambda s: LogNormal.from_variance(-2.56, 1.74),
        ),
        Preset(
            "turner_mortality",
            "log(tau^2) ~ Normal(-3.95, 1.34) for log odds ratios: all-cause mortality, "
            "pharmacological vs placebo/control.",
            "Turner et al. (2015), Statistics in Medicine 34(6):984-998, Table IV.",
            lambda s: LogNormal.from_variance(-3.95, 1.34),
        ),
        Preset(
            "turner_subjective",
            "log(tau^2) ~ Normal(-2.70, 1.52) for log odds ratios: subjective outcomes, "
            "pharmacological vs placebo/control.",
            "Turner et al. (2015), Statistics in Medicine 34(6):984-998, Table IV.",
            lambda s: LogNormal.from_variance(-2.70, 1.52),
        ),
        Preset(
            "uniform",
            "Uniform(0, 100 scale) on tau: flat over every plausible value, BDA3's choice.",
            "Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., §5.4 and §5.7.",
            lambda s: Uniform(lower=0.0, upper=100.0 * s),
        ),
    )
}


def stacked_dist(priors: list[Prior]):
    """One vector-valued ``pm.X.dist`` for priors of the same vectorizable family, else None."""
    kinds = {type(p) for p in priors}
    if len(kinds) != 1 or not priors[0].vectorizable:
        return None
    params = [p.pymc_params() for p in priors]
    import pymc as pm

    stacked = {k: np.array([p[k] for p in params], dtype=float) for k in params[0]}
    return getattr(pm, priors[0]._pymc_name).dist(**stacked)


def resolve_hyperprior(hyperprior: str | Prior, *, scale: float) -> Prior:
    """Turn a preset name or a :class:`Prior` into a prior for a group-level SD.

    Parameters
    ----------
    hyperprior : str or Prior
        A key of :data:`PRESETS` (scaled by ``scale``) or a prior object (used as is).
    scale : float
        The data-derived scale of the SD (see :class:`hiermodels.HierarchicalModel`).
    """
    if isinstance(hyperprior, Prior):
        return hyperprior
    if isinstance(hyperprior, str) and hyperprior in PRESETS:
        return PRESETS[hyperprior](scale)
    raise SpecError(
        f"unknown hyperprior {hyperprior!r}; use one of {', '.join(PRESETS)} "
        "or a prior object such as hm.priors.HalfCauchy(5)"
    )


@dataclass(frozen=True, repr=False)
class StudentT(Prior):
    """Student-t(nu, mu, sigma) for a population-level coefficient (a pooled effect mu).

    A normal with heavier tails: weakly informative about the size of the effect, yet it
    lets the data override a prior centred in the wrong place (Gelman, Jakulin, Pittau & Su
    2008, Ann. Appl. Stat. 2(4):1360-1383; the Stan prior-choice wiki's student_t(3, 0, s)).
    The exact meta-analysis engine does not take it (mu given tau is no longer normal):
    use ``method="mcmc"``.
    """

    nu: float = 3.0
    mu: float = 0.0
    sigma: float = 1.0
    _pymc_name = "StudentT"
    real_line = True  # support: the builders may sample it standardized

    def logpdf(self, x):
        from scipy import stats

        return stats.t.logpdf(x, self.nu, loc=self.mu, scale=self.sigma)

    def sample(self, n, rng=None):
        return self.mu + self.sigma * np.random.default_rng(rng).standard_t(self.nu, size=n)


__all__ += ["StudentT"]  # appended: the list above is shared and stays as it was


@dataclass(frozen=True, repr=False)
class LKJ(Prior):
    """LKJ(eta) on the correlation matrix of a factor's varying terms (Lewandowski,
    Kurowicka & Joe 2009): eta = 1 is uniform over correlation matrices, eta > 1 favours
    weaker correlations (eta = 2, the default, as brms). Shown by ``default_priors()`` as
    ``{group}_corr``; give ``priors={"county_corr": hm.priors.LKJ(4)}`` to change it."""

    eta: float = 2.0

    def create(self, name, **kwargs):
        raise NotImplementedError("the builder samples LKJ correlations with LKJCholeskyCov")
