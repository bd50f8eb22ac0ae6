"""The comparison of no, complete and partial pooling: tables, LOO, verdict, plot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hiermodels.errors import SpecError
from hiermodels.results.loo import Candidate, loo, loo_table, verdict

__all__ = ["POOLINGS", "PooledFit", "PoolingComparison"]

POOLINGS = ("none", "complete", "partial")
LABELS = {"none": "no pooling", "complete": "complete pooling", "partial": "partial pooling"}
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
        """Per group and term: how much partial pooling pulled it toward the population.

        Columns ``group``, ``term``, the precision (``se`` or ``n_obs``), ``no_pooling``,
        ``partial``, ``complete`` (posterior means), ``population`` (the value partial
        pooling pulls toward: the hierarchical model's population mean, which differs from
        complete pooling because it weights groups rather than observations), ``moved``
        (partial - no_pooling), and the two measures every result reports, from the
        partial-pooling fit's own table: ``pooling_factor`` (the headline, in [0, 1]:
        E[se^2 / (se^2 + tau^2) | y], BDA3 eq. 5.17) and ``shrinkage_ratio`` (the fraction
        of the gap to the population value that was closed, where that gap is at least one
        standard error; see :mod:`hiermodels.numerics.pooling`).
        """
        means = {p: self.fits[p].summarize(0.95) for p in POOLINGS}
        population = self._populations()
        measures = self._measures()
        frames = []
        for term in self.terms:
            own, part, comp = (means[p][term]["mean"] for p in ("none", "partial", "complete"))
            frame = pd.DataFrame({"group": list(self.labels), "term": term})
            frame = pd.concat([frame, self.precision.reset_index(drop=True)], axis=1)
            frame["no_pooling"], frame["partial"], frame["complete"] = own, part, comp
            frame["population"] = population[term]
            frame["moved"] = part - own
            frame["pooling_factor"] = measures[term]["pooling_factor"]
            frame["shrinkage_ratio"] = measures[term]["shrinkage_ratio"]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _measures(self) -> dict[str, pd.DataFrame]:
        """Per term, the partial fit's pooling_factor and shrinkage_ratio, in label order."""
        columns = ["pooling_factor", "shrinkage_ratio"]
        if self.kind == "study":
            effects = self.partial.study_effects()
            return {term: effects[columns].reset_index(drop=True) for term in self.terms}
        effects = self.partial.group_effects()
        return {
            t: rows.set_index("group").loc[list(self.labels), columns].reset_index(drop=True)
            for t, rows in effects.groupby("term", sort=False)
        }

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
            self._loo[pooling] = loo(self._candidate(pooling))
        return self._loo[pooling]

    def _candidate(self, pooling: str) -> Candidate:
        fit = self.fits[pooling]
        return Candidate(fit.log_likelihood, fit.reff, fit.loso if self.kind == "study" else None)

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
        table = loo_table(
            {p: self._candidate(p) for p in POOLINGS}, loos={p: self.loo(p) for p in POOLINGS}
        )
        table.index.name = "pooling"
        table.attrs["verdict"] = verdict(table, LABELS, kind=self.kind)
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
