r"""No, complete and partial pooling, fitted and compared in one call.

The three estimators of Gelman & Hill (2007, §12.2) and BDA3 §5.5:

* **none**: each group on its own (tau -> infinity). Study-level data: ``theta_j = y_j``
  with standard error ``se_j``; row-level data: least squares with one coefficient per group.
* **complete**: one value for all groups (tau = 0). Study-level: the precision-weighted mean
  (BDA3 eq. 5.13: 7.7, se 4.1 for eight schools); row-level: one regression.
* **partial**: the hierarchical model, tau learned from the data.

No and complete pooling get their exact posterior under the reference prior (flat on the
coefficients and on log sigma, BDA3 §14.2), so only the partial-pooling model of row-level
data is compiled and sampled; study-level data use the exact engine for all three.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hiermodels.data import INTERCEPT, GroupedData
from hiermodels.engines.exact import exact_fit
from hiermodels.errors import DataError, SpecError
from hiermodels.meta import meta_analysis
from hiermodels.meta_data import StudyData
from hiermodels.models import HierarchicalModel
from hiermodels.numerics.linear import flat_prior_regression
from hiermodels.numerics.pooling import no_pooling_design, shrinkage
from hiermodels.priors import Prior

__all__ = ["POOLINGS", "PoolingComparison", "compare_pooling"]

POOLINGS = ("none", "complete", "partial")
LABELS = {"none": "no pooling", "complete": "complete pooling", "partial": "partial pooling"}
SMALL_ELPD_DIFF = 4.0  # below this an elpd difference is small (Sivula et al. 2022)
EXACT_DRAWS = 4000  # independent draws of the exact posteriors, for PSIS-LOO

Summary = dict[str, dict[str, np.ndarray]]  # term -> {"mean", "sd", "lower", "upper"}


@dataclass(frozen=True, eq=False)
class PooledFit:
    """One estimator: its group-level estimates and pointwise log-likelihood draws.

    ``summarize(prob)`` gives, per term, (n_groups,) arrays of mean, sd, lower, upper;
    ``log_likelihood`` is (chain, draw, n_obs); ``loso`` the exact leave-one-study-out log
    predictive density of each study (study-level data only); ``result`` the fitted object.
    """

    summarize: Callable[[float], Summary]
    log_likelihood: np.ndarray
    reff: float | None = None  # relative efficiency for PSIS (1 for independent draws)
    loso: np.ndarray | None = None
    result: object = None


@dataclass(frozen=True, eq=False)
class PoolingComparison:
    """The three pooling estimators fitted to the same data; see :func:`compare_pooling`.

    Attributes
    ----------
    fits : dict
        ``"none"``, ``"complete"``, ``"partial"`` -> :class:`PooledFit`; the partial fit's
        ``result`` is the :class:`~hiermodels.MetaAnalysisResult` (study-level data) or the
        :class:`~hiermodels.HierarchicalResult` (row-level data).
    """

    kind: str  # "study" or "rows"
    group: str
    labels: tuple[str, ...]
    terms: tuple[str, ...]
    precision: pd.DataFrame  # per group: "se" (study-level) or "n_obs" (row-level)
    fits: dict[str, PooledFit]
    _loo: dict = field(default_factory=dict, repr=False)

    @property
    def partial(self):
        """The partial-pooling result (MetaAnalysisResult or HierarchicalResult)."""
        return self.fits["partial"].result

    # -- tables ---------------------------------------------------------------------------
    def estimates(self, prob: float = 0.95) -> pd.DataFrame:
        """Tidy table: one row per group x term x pooling.

        Columns ``group``, ``term``, ``pooling`` ("none", "complete", "partial"), ``mean``,
        ``sd``, ``ci_low``, ``ci_high`` (equal-tailed ``prob`` interval) and the group's
        precision (``se`` or ``n_obs``).
        """
        frames = []
        for pooling in POOLINGS:
            summary = self.fits[pooling].summarize(prob)
            for term in self.terms:
                s = summary[term]
                frame = pd.DataFrame(
                    {
                        "group": list(self.labels),
                        "term": term,
                        "pooling": pooling,
                        "mean": s["mean"],
                        "sd": s["sd"],
                        "ci_low": s["lower"],
                        "ci_high": s["upper"],
                    }
                )
                frames.append(pd.concat([frame, self.precision.reset_index(drop=True)], axis=1))
        table = pd.concat(frames, ignore_index=True)
        rank = {
            "term": {t: i for i, t in enumerate(self.terms)},
            "group": {g: i for i, g in enumerate(self.labels)},
            "pooling": {p: i for i, p in enumerate(POOLINGS)},
        }
        table = table.sort_values(
            ["term", "group", "pooling"], key=lambda col: col.map(rank[col.name]), kind="stable"
        ).reset_index(drop=True)
        table.attrs["prob"] = prob
        return table

    def shrinkage(self) -> pd.DataFrame:
        """Per group and term: how far partial pooling moved it toward complete pooling.

        Columns ``group``, ``term``, the precision (``se`` or ``n_obs``), ``no_pooling``,
        ``partial``, ``complete`` (posterior means), ``moved`` (partial - no_pooling) and
        ``shrinkage`` = (no_pooling - partial) / (no_pooling - complete): 0 = kept its own
        estimate, 1 = pulled all the way (the same function as
        :meth:`HierarchicalResult.group_effects`, :func:`hiermodels.numerics.pooling.shrinkage`).
        ``population`` is the value partial pooling pulls toward (the hierarchical model's
        population mean, posterior mean): it differs from complete pooling, which weights
        observations rather than groups equally, so a group whose own estimate lies near
        or between the two can end up slightly past complete pooling, or move away from it
        (negative shrinkage). Study-level data add ``pooling_factor`` =
        E[se^2 / (se^2 + tau^2) | y] (BDA3 eq. 5.17), the weight of the population mean in
        the school's posterior mean at given tau.
        """
        means = {p: self.fits[p].summarize(0.95) for p in POOLINGS}
        population = self._populations()
        if self.kind == "study":
            pooling_factor = self.partial.study_effects()["pooling_factor"].to_numpy()
        frames = []
        for term in self.terms:
            own, part, comp = (means[p][term]["mean"] for p in ("none", "partial", "complete"))
            frame = pd.DataFrame({"group": list(self.labels), "term": term})
            frame = pd.concat([frame, self.precision.reset_index(drop=True)], axis=1)
            frame["no_pooling"], frame["partial"], frame["complete"] = own, part, comp
            frame["population"] = population[term]
            frame["moved"] = part - own
            frame["shrinkage"] = shrinkage(own, part, comp)
            if self.kind == "study":
                frame["pooling_factor"] = pooling_factor
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _populations(self) -> dict[str, np.ndarray]:
        """Per term, the value partial pooling pulls each group toward (posterior mean)."""
        partial = self.partial
        if self.kind == "study":
            mu = partial.summary().loc[partial.coefficient_names[0], "mean"]
            return {term: np.full(len(self.labels), float(mu)) for term in self.terms}
        effects = partial.group_effects()  # one call: it refits the no-pooling regression
        return {t: rows["population"].to_numpy() for t, rows in effects.groupby("term", sort=False)}

    # -- out-of-sample comparison ---------------------------------------------------------
    def loo(self, pooling: str):
        """PSIS-LOO (ArviZ) of one estimator, from its pointwise log-likelihood draws."""
        if pooling not in self._loo:
            import arviz as az

            fit = self.fits[pooling]
            ll = fit.log_likelihood
            tree = xr.DataTree.from_dict(
                {
                    "posterior": xr.Dataset({"_": (("chain", "draw"), np.zeros(ll.shape[:2]))}),
                    "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)}),
                }
            )
            with warnings.catch_warnings():
                # high Pareto k is reported in compare()'s table and verdict instead
                warnings.filterwarnings("ignore", "Estimated shape parameter", UserWarning)
                self._loo[pooling] = az.loo(tree, pointwise=True, reff=fit.reff)
        return self._loo[pooling]

    def compare(self) -> pd.DataFrame:
        """Out-of-sample predictive comparison of the three estimators, best first.

        One row per pooling with PSIS-LOO columns ``elpd_loo`` (expected log predictive
        density for a held-out observation), ``se``, ``p_loo`` (effective number of
        parameters), ``elpd_diff`` and ``dse`` (difference from the best and its standard
        error, from the pointwise differences), ``n_high_k`` (observations whose Pareto k
        exceeds ``k_threshold``, for which PSIS is unreliable) and ``max_k``. Study-level data
        add the exact leave-one-study-out predictive density of a *new* study, ``elpd_loso``
        and ``loso_se`` (NaN for no pooling, which has no prediction for an unseen study).
        ``table.attrs["verdict"]`` (also :meth:`verdict`) says what the numbers mean.
        """
        rows, pointwise = {}, {}
        for pooling in POOLINGS:
            loo = self.loo(pooling)
            k = np.asarray(loo.pareto_k).ravel()
            pointwise[pooling] = np.asarray(loo.elpd_i).ravel()
            rows[pooling] = {
                "elpd_loo": float(loo.elpd),
                "se": float(loo.se),
                "p_loo": float(loo.p),
                "n_high_k": int((k > loo.good_k).sum()),
                "max_k": float(k.max()),
                "k_threshold": float(loo.good_k),
            }
            loso = self.fits[pooling].loso
            if self.kind == "study":
                rows[pooling]["elpd_loso"] = float(loso.sum()) if loso is not None else np.nan
                rows[pooling]["loso_se"] = (
                    float(np.sqrt(len(loso) * loso.var(ddof=1))) if loso is not None else np.nan
                )
        table = pd.DataFrame(rows).T
        best = table["elpd_loo"].idxmax()
        n = len(pointwise[best])
        diffs = {p: pointwise[p] - pointwise[best] for p in POOLINGS}
        table["elpd_diff"] = [float(diffs[p].sum()) for p in table.index]
        table["dse"] = [float(np.sqrt(n * diffs[p].var(ddof=1))) for p in table.index]
        table = table.sort_values("elpd_loo", ascending=False)
        table.insert(0, "rank", np.arange(len(table)))
        first = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo"]
        table = table[first + [c for c in table.columns if c not in first]]
        table = table.astype({"rank": int, "n_high_k": int})
        table.index.name = "pooling"
        table.attrs["verdict"] = _verdict(table, self.kind, n)
        return table

    def verdict(self) -> str:
        """A plain-language reading of :meth:`compare`."""
        return self.compare().attrs["verdict"]

    # -- plot -----------------------------------------------------------------------------
    def plot(self, path=None, *, term: str | None = None, ax=None):
        """The shrinkage picture: no-pooling and partial-pooling estimates per group with an
        arrow between them, the complete-pooling line, groups ordered by precision.

        Saves to ``path`` if given; returns the matplotlib Figure.
        """
        from hiermodels.plots import shrinkage_arrows

        term = term or self.terms[0]
        if term not in self.terms:
            raise SpecError(f"term {term!r} is not compared; use one of {list(self.terms)}")
        return shrinkage_arrows(self, term=term, path=path, ax=ax)

    def __repr__(self) -> str:
        what = "studies" if self.kind == "study" else "groups"
        return (
            f"<PoolingComparison {len(self.labels)} {what} ({self.group}); "
            f"terms {list(self.terms)}; none / complete / partial>"
        )


def _verdict(table: pd.DataFrame, kind: str, n: int) -> str:
    best = table.index[0]
    lines = [f"Best out-of-sample prediction (PSIS-LOO, {n} observations): {LABELS[best]}."]
    for pooling, row in table.iloc[1:].iterrows():
        diff, dse = -row["elpd_diff"], row["dse"]
        if diff < SMALL_ELPD_DIFF:
            reading = "a small difference: they predict about equally well"
        elif diff > 2 * dse:
            reading = "a clear difference"
        else:
            reading = "not clearly different (less than 2 se)"
        lines.append(f"  {LABELS[pooling]} is worse by {diff:.1f} (se {dse:.1f}): {reading}.")
    for pooling, row in table.iterrows():
        if row["n_high_k"]:
            advice = "trust elpd_loso" if kind == "study" else "refit without them to check"
            lines.append(
                f"  PSIS-LOO is unreliable for {LABELS[pooling]}: {int(row['n_high_k'])} of {n} "
                f"observations have Pareto k > {row['k_threshold']:.2f} (max "
                f"{row['max_k']:.2f}), so its elpd_loo is too optimistic or noisy; {advice}."
            )
    if kind == "study":
        loso = table["elpd_loso"].dropna().sort_values(ascending=False)
        scores = ", ".join(f"{LABELS[p]} {v:.1f}" for p, v in loso.items())
        lines.append(
            f"For a new study (exact leave-one-study-out): {LABELS[loso.index[0]]} predicts "
            f"best ({scores}); no pooling cannot predict a study it has not seen."
        )
    return "\n".join(lines)


# -- entry point ------------------------------------------------------------------------------
def compare_pooling(
    data: pd.DataFrame,
    *,
    estimate: str | None = None,
    se: str | None = None,
    study: str | None = None,
    y: str | None = None,
    group: str | None = None,
    predictors: Sequence[str] = (),
    varying: Sequence[str] = (),
    hyperprior: str | Prior = "half_cauchy",
    parameterization: str | Mapping[str, str] = "noncentered",
    mu_prior: Prior | None = None,
    method: str = "exact",
    draws: int = 1000,
    tune: int | None = 1000,
    chains: int = 4,
    random_seed=None,
    sampler: str | None = None,
    progressbar: bool = False,
    sample_kwargs: Mapping | None = None,
) -> PoolingComparison:
    r"""Fit no, complete and partial pooling to the same data and compare them.

    Study-level data (one estimate and standard error per study) take ``estimate``, ``se``
    and optionally ``study``; all three estimators are exact (milliseconds)::

        none:     theta_j | y ~ Normal(y_j, se_j)
        complete: theta_j = mu,  mu | y ~ Normal(sum(w y) / sum(w), 1 / sqrt(sum(w))),
                  w_j = 1 / se_j^2
        partial:  y_j ~ Normal(theta_j, se_j), theta_j ~ Normal(mu, tau), tau ~ hyperprior

    Row-level data take ``y``, ``group``, ``predictors`` and ``varying`` as
    :func:`fit_hierarchical` does. No pooling is the regression with one coefficient per group
    for each varying term (group-level predictors drop out: they are collinear with the
    groups), complete pooling the regression without groups; both are exact under the
    reference prior (BDA3 §14.2). Partial pooling is :class:`HierarchicalModel`, sampled
    with NUTS once.

    Parameters
    ----------
    data : pandas.DataFrame
        Never modified.
    hyperprior, parameterization, mu_prior, method
        For the partial-pooling model, as in :func:`meta_analysis` (study-level; ``method``
        "exact" or "mcmc") or :class:`HierarchicalModel` (row-level).
    draws, tune, chains, random_seed, sampler, progressbar, sample_kwargs
        Sampling options (``random_seed`` also seeds the exact draws).

    Returns
    -------
    PoolingComparison
        ``estimates()``, ``shrinkage()``, ``compare()``, ``verdict()``, ``plot()``.

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> cmp = hm.compare_pooling(schools, estimate="y", se="sigma", study="school",
    ...                          random_seed=1)
    >>> est = cmp.estimates().set_index(["group", "pooling"])
    >>> round(est.loc[("A", "complete"), "mean"], 2), round(est.loc[("A", "complete"), "sd"], 2)
    (7.69, 4.07)
    """
    study_level = estimate is not None or se is not None
    row_level = y is not None or group is not None
    if study_level == row_level:
        raise SpecError(
            "give either estimate= and se= (one row per study) or y= and group= (one row per "
            "observation), not both or neither"
        )
    rng = np.random.default_rng(random_seed)
    if study_level:
        if estimate is None or se is None:
            raise SpecError("study-level data need both estimate= and se=")
        return _compare_studies(
            data,
            estimate=estimate,
            se=se,
            study=study,
            mu_prior=mu_prior,
            hyperprior=hyperprior,
            method=method,
            parameterization=parameterization,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            progressbar=progressbar,
            sample_kwargs=sample_kwargs,
            rng=rng,
        )
    if y is None or group is None:
        raise SpecError("row-level data need both y= and group=")
    if not isinstance(group, str):
        raise SpecError(
            f"compare_pooling takes one grouping column, got group={group!r}: no pooling is "
            "defined per level of a single factor"
        )
    model = HierarchicalModel(
        data,
        y=y,
        group=group,
        predictors=predictors,
        varying=varying,
        parameterization=parameterization,
        hyperprior=hyperprior,
    )
    _check_no_pooling_identified(model._prepare()[0])  # before sampling, not after
    partial = model.fit(
        draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        progressbar=progressbar,
        sample_kwargs=sample_kwargs,
    )
    return _compare_rows(partial, rng=rng, chains=chains)


# -- study-level data -------------------------------------------------------------------------
def _normal_summary(mean, sd, prob) -> dict[str, np.ndarray]:
    z = stats.norm.ppf((1 + prob) / 2)
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    return {"mean": mean, "sd": sd, "lower": mean - z * sd, "upper": mean + z * sd}


def _gaussian_loglik(y, se, theta) -> np.ndarray:
    return stats.norm.logpdf(y, theta, se)


def _compare_studies(data, *, rng, chains, draws, **options) -> PoolingComparison:
    meta = meta_analysis(data, draws=draws, chains=chains, **options)
    d: StudyData = meta.data
    if d.has_moderators:  # pragma: no cover - compare_pooling passes no moderators
        raise SpecError("compare_pooling does not take moderators")
    term = "theta"
    w = 1.0 / d.se**2
    mu_hat, mu_se = float(w @ d.y / w.sum()), float(1.0 / np.sqrt(w.sum()))  # BDA3 eq. 5.13
    n = EXACT_DRAWS // chains

    def shaped(theta):  # (S, k) -> (chain, draw, k)
        return theta[: n * chains].reshape(chains, n, -1)

    own = d.y + d.se * rng.standard_normal((n * chains, d.k))
    pooled = mu_hat + mu_se * rng.standard_normal((n * chains, 1))
    partial_theta = np.asarray(meta.idata["posterior"]["theta"])
    partial_ll = _gaussian_loglik(d.y, d.se, partial_theta)
    reff_partial = 1.0 if meta.method == "exact" else None
    fits = {
        "none": PooledFit(
            summarize=lambda prob: {term: _normal_summary(d.y, d.se, prob)},
            log_likelihood=shaped(_gaussian_loglik(d.y, d.se, own)),
            reff=1.0,
        ),
        "complete": PooledFit(
            summarize=lambda prob: {
                term: _normal_summary(np.full(d.k, mu_hat), np.full(d.k, mu_se), prob)
            },
            log_likelihood=shaped(_gaussian_loglik(d.y, d.se, pooled)),
            reff=1.0,
            loso=_loso_complete(d.y, d.se),
        ),
        "partial": PooledFit(
            summarize=lambda prob: _partial_study_summary(meta, term, prob),
            log_likelihood=partial_ll,
            reff=reff_partial,
            loso=_loso_partial(meta),
            result=meta,
        ),
    }
    return PoolingComparison(
        kind="study",
        group=d.study,
        labels=tuple(d.labels),
        terms=(term,),
        precision=pd.DataFrame({"se": d.se}),
        fits=fits,
    )


def _partial_study_summary(meta, term, prob) -> Summary:
    effects = meta.study_effects(prob)
    return {
        term: {
            "mean": effects["mean"].to_numpy(),
            "sd": effects["sd"].to_numpy(),
            "lower": effects["ci_low"].to_numpy(),
            "upper": effects["ci_high"].to_numpy(),
        }
    }


def _loso_complete(y, se) -> np.ndarray:
    """log p(y_j | y_-j) under complete pooling: Normal(mu_hat_-j, sqrt(V_-j + se_j^2))."""
    out = np.empty(len(y))
    for j in range(len(y)):
        keep = np.arange(len(y)) != j
        w = 1.0 / se[keep] ** 2
        mean, var = w @ y[keep] / w.sum(), 1.0 / w.sum()
        out[j] = stats.norm.logpdf(y[j], mean, np.sqrt(var + se[j] ** 2))
    return out


def _loso_partial(meta) -> np.ndarray:
    """log p(y_j | y_-j) for a new study under the hierarchical model, exactly."""
    d = meta.data
    out = np.empty(d.k)
    for j in range(d.k):
        post = exact_fit(d.without(j), mu_prior=meta.mu_prior, tau_prior=meta.tau_prior)
        out[j] = post.predictive_logpdf(d.y[j], d.se[j], d.X[j])
    return out


# -- row-level data ---------------------------------------------------------------------------
def _no_pooling_design_of(d: GroupedData) -> np.ndarray:
    """The no-pooling design: varying terms per group, the other terms shared."""
    shared = [t for t in d.terms if t not in d.varying and t not in d.group_level]
    X_shared = np.column_stack([d.column(t) for t in shared]) if shared else np.empty((len(d.y), 0))
    return no_pooling_design(X_shared, d.Z, d.group_idx, d.n_groups)


def _check_no_pooling_identified(d: GroupedData) -> None:
    """No pooling needs residual degrees of freedom for sigma (one row per group has none)."""
    design = _no_pooling_design_of(d)
    rank = np.linalg.matrix_rank(design)
    if len(d.y) - rank < 1:
        raise DataError(
            f"no pooling fits {', '.join(d.varying)} separately for each of the {d.n_groups} "
            f"{d.group!r} groups: {rank} coefficients from {len(d.y)} rows leave no residual "
            "degrees of freedom for sigma (groups have too few rows, e.g. one each); "
            "compare_pooling needs some groups with more rows than varying terms, or use "
            "fit_hierarchical for the partial-pooling fit alone"
        )


def _compare_rows(partial, *, rng, chains) -> PoolingComparison:
    d: GroupedData = partial.data
    J, q = d.n_groups, len(d.varying)
    n = EXACT_DRAWS // chains
    none_design = _no_pooling_design_of(d)
    none = flat_prior_regression(d.y, none_design)
    complete = flat_prior_regression(d.y, d.X)
    # contrasts: group j's coefficient of each varying term, as c' beta
    none_c, complete_c = {}, {}
    first_rows = d.first_rows
    for k, t in enumerate(d.varying):
        c = np.zeros((J, none_design.shape[1]))
        c[np.arange(J), np.arange(J) * q + k] = 1.0
        none_c[t] = c
        c = np.zeros((J, d.X.shape[1]))
        c[:, d.terms.index(t)] = 1.0
        if t == INTERCEPT:  # the population value includes the group-level predictors
            for g in d.group_level:
                c[:, d.terms.index(g)] = d.column(g)[first_rows]
        complete_c[t] = c

    def regression_fit(reg, design, contrasts):
        beta, sigma = reg.draw(n * chains, rng)
        mean = beta @ design.T
        ll = stats.norm.logpdf(d.y, mean, sigma[:, None]).reshape(chains, n, -1)
        return PooledFit(
            summarize=lambda prob: {t: reg.summary(prob, c) for t, c in contrasts.items()},
            log_likelihood=ll,
            reff=1.0,
            result=reg,
        )

    fits = {
        "none": regression_fit(none, none_design, none_c),
        "complete": regression_fit(complete, d.X, complete_c),
        "partial": PooledFit(
            summarize=lambda prob: _partial_row_summary(partial, prob),
            log_likelihood=partial.log_likelihood(),
            result=partial,
        ),
    }
    return PoolingComparison(
        kind="rows",
        group=d.group,
        labels=tuple(d.levels),
        terms=tuple(d.varying),
        precision=pd.DataFrame({"n_obs": d.n_obs}),
        fits=fits,
    )


def _partial_row_summary(result, prob) -> Summary:
    effects = result.group_effects(prob)
    out = {}
    for t, rows in effects.groupby("term", sort=False):
        out[t] = {
            "mean": rows["mean"].to_numpy(),
            "sd": rows["sd"].to_numpy(),
            "lower": rows["ci_low"].to_numpy(),
            "upper": rows["ci_high"].to_numpy(),
        }
    return out
