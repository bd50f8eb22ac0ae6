"""Subgroup analysis: the pooled effect per level of a study-level factor and the test of
differences between subgroups (Borenstein et al. 2009, ch. 19; metafor's
``rma(yi, vi, mods = ~ factor(g))``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.data import level_labels, require_columns
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.meta.data import StudyData
from hiermodels.meta.engines import exact_fit, exact_takes
from hiermodels.meta.inference import check_method, check_prob, check_test
from hiermodels.numerics.heterogeneity import data_unit
from hiermodels.numerics.inference import RMAFit, fit_random_effects

__all__ = ["SubgroupAnalysis", "subgroup_analysis"]


def _subset(data: StudyData, keep: np.ndarray) -> StudyData:
    """The intercept-only data of the studies ``keep`` (moderators are not used here)."""
    return replace(
        data,
        y=data.y[keep],
        se=data.se[keep],
        labels=tuple(np.asarray(data.labels)[keep]),
        X=np.ones((int(keep.sum()), 1)),
        terms=data.terms[:1],
    )


@dataclass(frozen=True, eq=False)
class SubgroupAnalysis:
    """A meta-analysis split by the levels of ``column`` (from
    :meth:`~hiermodels.meta.result.MetaAnalysisResult.subgroup_analysis`).

    Attributes
    ----------
    column : str
    levels : tuple of str
        In sorted order (numbers numerically, text alphabetically).
    groups : ndarray of str
        Each study's level.
    common_tau : bool
        True: one tau^2 for all subgroups (the mixed-effects model ``mods = ~ factor(g) - 1``);
        False: a separate random-effects model per subgroup.
    method, test_type, prob
        The tau^2 estimator, the test ("z" or "knha") and the interval level.
    """

    result: object
    column: str
    levels: tuple[str, ...]
    groups: np.ndarray
    common_tau: bool
    method: str
    test_type: str
    prob: float

    def _keep(self, level) -> np.ndarray:
        return self.groups == level

    @cached_property
    def _separate(self) -> dict[str, RMAFit]:
        d = self.result.data
        return {
            level: fit_random_effects(
                d.y[self._keep(level)],
                d.se[self._keep(level)],
                method=self.method,
                test=self.test_type,
                level=self.prob,
            )
            for level in self.levels
        }

    def _factor_design(self, intercept: bool) -> np.ndarray:
        dummies = [self._keep(level).astype(float) for level in self.levels]
        if intercept:
            return np.column_stack([np.ones(len(self.groups)), *dummies[1:]])
        return np.column_stack(dummies)

    @cached_property
    def _common(self) -> RMAFit:
        """The mixed-effects model with one mean per level and one tau^2."""
        d = self.result.data
        return fit_random_effects(
            d.y,
            d.se,
            self._factor_design(intercept=False),
            method=self.method,
            test=self.test_type,
            level=self.prob,
        )

    def estimates(self) -> pd.DataFrame:
        """One row per level: ``k``, the pooled effect ``mu`` with ``mu_se`` and its interval,
        ``tau2`` (the level's own, or the common one with ``common_tau=True``), and the
        level's own heterogeneity test ``Q``, ``Q_df``, ``Q_pvalue`` and ``I2``.

        With the exact engine (and a flat or normal mu prior) each level is also fitted on its
        own with the exact engine under the same priors: ``bayes_mu`` (posterior mean),
        ``bayes_mu_sd``, ``bayes_ci_low``, ``bayes_ci_high`` (equal-tailed ``prob``) and
        ``bayes_tau`` (posterior median of tau).
        """
        rows = {}
        common = self._common if self.common_tau else None
        for j, level in enumerate(self.levels):
            own = self._separate[level]
            fit, index = (common, j) if common is not None else (own, 0)
            rows[level] = {
                "k": own.k,
                "mu": fit.beta[index],
                "mu_se": fit.se[index],
                "ci_low": fit.ci_low[index],
                "ci_high": fit.ci_high[index],
                "tau2": fit.tau2,
                "Q": own.QE,
                "Q_df": own.QE_df,
                "Q_pvalue": own.QE_p,
                "I2": own.I2,
            }
        table = pd.DataFrame(rows).T
        table = table.astype(float).astype({"k": int, "Q_df": int})
        result = self.result
        if result.exact is not None and exact_takes(result.mu_prior):
            for level in self.levels:
                sub = _subset(result.data, self._keep(level))
                post = exact_fit(sub, mu_prior=result.mu_prior, tau_prior=result.tau_prior)
                beta = post.beta_summary(self.prob)
                table.loc[level, "bayes_mu"] = float(beta["mean"][0])
                table.loc[level, "bayes_mu_sd"] = float(beta["sd"][0])
                table.loc[level, "bayes_ci_low"] = float(beta["lower"][0])
                table.loc[level, "bayes_ci_high"] = float(beta["upper"][0])
                table.loc[level, "bayes_tau"] = post.tau_summary(self.prob)["median"]
        table.index.name = self.column
        table.attrs.update(method=self.method, test=self.test_type, common_tau=self.common_tau)
        return table

    def test(self) -> pd.DataFrame:
        """Tests of differences between the subgroups, two rows.

        ``Q_between``: the per-level estimates of :meth:`estimates` compared as a fixed-effect
        meta-analysis of G estimates with their standard errors, Q = sum w_g (mu_g -
        mu_bar)^2 with w_g = 1 / mu_se_g^2, chi^2(G - 1) (Borenstein et al. 2009, eq. 19.13;
        RevMan's test for subgroup differences). ``QM``: the omnibus test of the factor in the
        mixed-effects meta-regression with one tau^2, metafor's
        ``rma(yi, vi, mods = ~ factor(g), method=, test=)``: chi^2(G - 1), or F(G - 1, k - G)
        under ``test="knha"`` (then ``df2`` is k - G). With ``common_tau=True`` and
        ``test="z"`` the two agree.
        """
        table = self.estimates()
        g = len(self.levels)
        # in units of the standard errors (data_unit): 1/mu_se^2 stays representable for
        # estimates of any size, and Q does not depend on the units
        unit = data_unit(table["mu_se"].to_numpy())
        w = 1 / (table["mu_se"].to_numpy() / unit) ** 2
        mu = table["mu"].to_numpy() / unit
        q = float(np.sum(w * (mu - np.sum(w * mu) / np.sum(w)) ** 2))
        mixed = fit_random_effects(
            self.result.data.y,
            self.result.data.se,
            self._factor_design(intercept=True),
            method=self.method,
            test=self.test_type,
            level=self.prob,
        )
        knha = self.test_type == "knha"
        out = pd.DataFrame(
            {
                "Q": [q, mixed.QM],
                "df": [g - 1, mixed.QM_df[0]],
                "df2": [np.nan, mixed.QM_df[1] if knha else np.nan],
                "pvalue": [float(stats.chi2.sf(q, g - 1)), mixed.QM_p],
                "note": [
                    "fixed-effect test of the per-level estimates "
                    f"({'common' if self.common_tau else 'separate'} tau^2)",
                    f"mixed-effects meta-regression on factor({self.column}), common tau^2 "
                    f"({self.method}{', F test' if knha else ''}): metafor's QM",
                ],
            },
            index=pd.Index(["Q_between", "QM"], name="test"),
        )
        return out

    def __repr__(self) -> str:
        return (
            f"<SubgroupAnalysis by {self.column!r}: {len(self.levels)} levels; "
            f"method={self.method}, common_tau={self.common_tau}>"
        )


def _level_key(label: str):
    """Numbers in numeric order (2 before 10), then text alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def subgroup_analysis(result, column, *, common_tau=False, method="REML", test="z", prob=0.95):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.subgroup_analysis`."""
    check_method(method, bayes=False)
    check_test(test)
    prob = check_prob(prob)
    column = column if column is not None else result.spec.subgroup
    if column is None:
        raise SpecError(
            "name the subgroup column, subgroup_analysis('alloc'), or give "
            "meta_analysis(..., subgroup='alloc')"
        )
    frame = result.frame
    if frame is None:
        raise SpecError("this result keeps no data frame, so it cannot split by a column")
    require_columns(frame, [column])
    missing = frame.index[frame[column].isna().to_numpy()]
    if len(missing):
        raise DataError(
            f"subgroup column {column!r} has missing values ({format_rows(missing)}); give "
            "those studies a level (e.g. 'unknown') or drop them"
        )
    labels = level_labels(frame[column]).to_numpy()
    levels = tuple(sorted(set(labels), key=_level_key))
    if len(levels) < 2:
        raise DataError(
            f"subgroup column {column!r} has a single level ({levels[0]!r}); a subgroup "
            "analysis needs at least two"
        )
    return SubgroupAnalysis(
        result=result,
        column=column,
        levels=levels,
        groups=labels,
        common_tau=bool(common_tau),
        method=method,
        test_type=test,
        prob=prob,
    )
