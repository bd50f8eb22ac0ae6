"""The comparison of no, complete and partial pooling: tables, LOO, verdict, plot."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from hiermodels.errors import SpecError
from hiermodels.numerics.pooling import shrinkage

__all__ = ["POOLINGS", "PooledFit", "PoolingComparison"]

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
