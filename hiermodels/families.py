"""Outcome families: link, auxiliary parameters and data-scaled defaults, as data.

Each :class:`Family` in :data:`FAMILIES` says how an outcome depends on the linear predictor
``eta = X beta + Z b + offset`` and how to score and simulate it (numpy, for LOO and
predictions). Default priors follow rstanarm's scheme (Gabry & Goodrich, *Prior
distributions for rstanarm models*): coefficients get ``Normal(0, 2.5 s_y / s_x)`` where
``s_y`` is ``sd(y)`` for the identity link and 1 for the logit and log links (one unit on the
log-odds or log scale is already a large effect), and the intercept is centred on the link of
the mean outcome.

Known measurement error (brms' ``y | se(sei)``; a meta-analysis is a hierarchical model whose
lowest-level variance is known, metafor's ``rma.mv``): the gaussian outcome is
``Normal(eta_i, se_i)``, with no residual SD, or ``Normal(eta_i, sqrt(se_i^2 + sigma^2))`` when a
residual SD is estimated besides (brms' ``se(sei, sigma = TRUE)``). :meth:`Family.model_aux`
says which auxiliary parameters such a model has and :meth:`Family.observation_aux` turns them
into what scores and simulates an observation, in numpy and in PyMC alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.names import RESIDUAL_SIGMA
from hiermodels.priors import Exponential, Gamma, HalfCauchy, Prior

__all__ = ["FAMILIES", "Family", "get_family"]


@dataclass(frozen=True)
class Aux:
    """An auxiliary parameter of a family (a residual SD, degrees of freedom, dispersion)."""

    name: str
    role: str
    default: Callable[[float], Prior]  # s_y -> prior
    rule: str


@dataclass(frozen=True)
class Family:
    """One outcome family; see the module docstring.

    ``logpdf(y, eta, aux, trials)`` and ``sample(eta, aux, trials, rng)`` score and simulate
    outcomes in numpy, broadcasting over draws; ``mean(eta, trials)`` is the expected outcome.
    The PyMC likelihood of each family is in :mod:`hiermodels.builders.likelihoods`.
    """

    name: str
    link: str
    description: str
    source: str
    aux: tuple[Aux, ...]
    logpdf: Callable
    sample: Callable
    inverse_link: Callable[[np.ndarray], np.ndarray]
    outcome: str  # "real", "binary", "count", "successes"
    needs_trials: bool = False
    known_se: bool = False  # takes known standard errors (se=, y | se(sei))

    def model_aux(self, *, se: bool = False, se_sigma: bool = False) -> tuple[Aux, ...]:
        """The auxiliary parameters a model of this family estimates: :attr:`aux`, less the
        residual SD when the standard errors are known (``se``) and no residual SD is asked
        for besides them (``se_sigma``)."""
        if se and not se_sigma:
            return tuple(a for a in self.aux if a.name != RESIDUAL_SIGMA)
        return self.aux

    def observation_aux(self, aux: dict, se=None) -> dict:
        """The auxiliary values that score and simulate an observation (in :attr:`logpdf`,
        :attr:`sample` and the PyMC likelihood): ``aux`` itself, or with known standard errors
        ``se`` the residual SD replaced by each row's total SD, ``sqrt(se_i^2 + sigma^2)``, or
        ``se_i`` when the model has no residual SD. Works on numpy arrays (draws broadcast
        against rows) and PyMC tensors alike.

        Examples
        --------
        >>> import numpy as np
        >>> gaussian = get_family("gaussian")
        >>> gaussian.observation_aux({"sigma": 4.0}, np.array([3.0]))["sigma"]
        array([5.])
        """
        if se is None:
            return aux
        if not self.known_se:
            raise SpecError(f"family {self.name!r} takes no known standard errors (se=)")
        sigma = aux.get(RESIDUAL_SIGMA)
        # the tensor (or draws) first, so numpy defers to PyMC's operators
        total = se if sigma is None else (sigma**2 + se**2) ** 0.5
        return {**aux, RESIDUAL_SIGMA: total}

    def mean(self, eta, trials=None):
        """E[y | eta]: the inverse link, times the trials for the binomial."""
        mu = self.inverse_link(eta)
        return mu * trials if self.needs_trials else mu

    def scale(self, y, trials=None, offset=None) -> tuple[float, float]:
        """(centre of the intercept on the link scale, s_y)."""
        if self.link == "identity":
            sd = float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
            return float(np.mean(y)), sd if sd > 0 else 1.0
        if self.link == "logit":
            n = trials if trials is not None else np.ones_like(y)
            p = (y.sum() + 0.5) / (n.sum() + 1.0)  # never exactly 0 or 1
            return float(special.logit(p)), 1.0
        exposure = np.exp(offset).sum() if offset is not None else len(y)
        return float(np.log((y.sum() + 0.5) / exposure)), 1.0

    def check(self, y: np.ndarray, index, column: str, trials=None, trials_name=None) -> None:
        """Raise :class:`DataError` naming the rows if ``y`` (and trials) cannot be this
        family's outcome."""
        if self.outcome == "real":
            if np.ptp(y) == 0:
                raise DataError(
                    f"outcome column {column!r} is constant ({y[0]:g} in every row): there is "
                    "nothing to model and its SD is zero; check that you chose the right column"
                )
            return
        whole = np.equal(np.mod(y, 1), 0)
        if self.outcome == "binary":
            bad = ~np.isin(y, (0.0, 1.0))
            need = "0 or 1 (bernoulli)"
        elif self.outcome == "count":
            bad = ~whole | (y < 0)
            need = f"non-negative integer counts ({self.name})"
        else:
            bad = ~whole | (y < 0) | (y > trials)
            need = f"integer successes between 0 and the trials column {trials_name!r}"
        if bad.any():
            raise DataError(
                f"outcome column {column!r} has {int(bad.sum())} value(s) that are not {need} "
                f"({format_rows(index[bad])}, e.g. {y[bad][0]:g}); fix those rows or choose "
                "another family"
            )


_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _normal_logpdf(y, mu, sigma):
    """``log N(y | mu, sigma)`` in numpy: the formula of ``scipy.stats.norm.logpdf`` (for
    sigma > 0) without its argument checks, ~10x faster over draws x rows, and no import of
    ``scipy.stats`` (~0.9 s) in a fit (docs/performance.md)."""
    z = (y - mu) / sigma
    return -0.5 * z**2 - _LOG_SQRT_2PI - np.log(sigma)


def _scipy_logpdf(distribution: str, method: str = "logpdf"):
    """``scipy.stats.<distribution>.<method>``, imported on first use (see
    :func:`_normal_logpdf`)."""

    def score(*args, **kwargs):
        from scipy import stats

        return getattr(getattr(stats, distribution), method)(*args, **kwargs)

    return score


def _log_sigmoid(eta):
    return -np.logaddexp(0.0, -eta)


def _standard_t(nu, eta, rng):
    # one draw per element of eta (numpy returns a single draw for a scalar nu)
    return rng.standard_t(np.broadcast_to(nu, np.broadcast_shapes(np.shape(nu), np.shape(eta))))


def _nbinom_p(mu, alpha):
    # PyMC's NegativeBinomial(mu, alpha): var = mu + mu^2 / alpha = scipy's nbinom(n=alpha, p)
    return alpha / (alpha + mu)


_T_LOGPDF = _scipy_logpdf("t")
_BINOM_LOGPMF = _scipy_logpdf("binom", "logpmf")
_POISSON_LOGPMF = _scipy_logpdf("poisson", "logpmf")
_NBINOM_LOGPMF = _scipy_logpdf("nbinom", "logpmf")

SIGMA = Aux("sigma", "residual SD", lambda s: Exponential(s), "Exponential(mean s_y)")
NU = Aux("nu", "Student-t degrees of freedom", lambda s: Gamma(2.0, 0.1), "Gamma(2, 0.1)")
ALPHA = Aux(
    "alpha",
    "negative-binomial shape (var = mu + mu^2/alpha)",
    lambda s: HalfCauchy(1.0),
    "HalfCauchy(1), as bambi",
)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "gaussian",
            "identity",
            "y ~ Normal(eta, sigma)",
            "Gelman & Hill (2007), ch. 12",
            (SIGMA,),
            lambda y, eta, aux, trials: _normal_logpdf(y, eta, aux["sigma"]),
            lambda eta, aux, trials, rng: rng.normal(eta, aux["sigma"]),
            lambda eta: eta,
            "real",
            known_se=True,
        ),
        Family(
            "student_t",
            "identity",
            "y ~ StudentT(nu, eta, sigma): robust to outliers",
            "Gelman & Hill (2007), §15.6; Juárez & Steel (2010) for the prior on nu",
            (SIGMA, NU),
            lambda y, eta, aux, trials: _T_LOGPDF(y, aux["nu"], eta, aux["sigma"]),
            lambda eta, aux, trials, rng: eta + aux["sigma"] * _standard_t(aux["nu"], eta, rng),
            lambda eta: eta,
            "real",
        ),
        Family(
            "bernoulli",
            "logit",
            "y ~ Bernoulli(logit^-1(eta)), y in {0, 1}",
            "Gelman & Hill (2007), ch. 14",
            (),
            lambda y, eta, aux, trials: np.where(y > 0, _log_sigmoid(eta), _log_sigmoid(-eta)),
            lambda eta, aux, trials, rng: rng.binomial(1, special.expit(eta)),
            special.expit,
            "binary",
        ),
        Family(
            "binomial",
            "logit",
            "y ~ Binomial(trials, logit^-1(eta)), y successes out of a trials column",
            "Gelman & Hill (2007), §6.3; BDA3 §5.3 (rat tumors)",
            (),
            lambda y, eta, aux, trials: _BINOM_LOGPMF(y, trials, special.expit(eta)),
            lambda eta, aux, trials, rng: rng.binomial(trials.astype(int), special.expit(eta)),
            special.expit,
            "successes",
            needs_trials=True,
        ),
        Family(
            "poisson",
            "log",
            "y ~ Poisson(exp(eta)); an offset log(exposure) makes it a rate model",
            "Gelman & Hill (2007), §6.2",
            (),
            lambda y, eta, aux, trials: _POISSON_LOGPMF(y, np.exp(eta)),
            lambda eta, aux, trials, rng: rng.poisson(np.exp(eta)),
            np.exp,
            "count",
        ),
        Family(
            "negative_binomial",
            "log",
            "y ~ NegativeBinomial(mean exp(eta), shape alpha): overdispersed counts",
            "Gelman & Hill (2007), §6.2",
            (ALPHA,),
            lambda y, eta, aux, trials: _NBINOM_LOGPMF(
                y, aux["alpha"], _nbinom_p(np.exp(eta), aux["alpha"])
            ),
            lambda eta, aux, trials, rng: rng.negative_binomial(
                aux["alpha"], _nbinom_p(np.exp(eta), aux["alpha"])
            ),
            np.exp,
            "count",
        ),
    )
}


def get_family(name: str | Family) -> Family:
    """The :class:`Family` called ``name`` (or ``name`` itself if already a Family)."""
    if isinstance(name, Family):
        return name
    if name not in FAMILIES:
        raise SpecError(f"unknown family {name!r}; use one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
