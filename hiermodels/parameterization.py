"""``parameterization="auto"``: centered or non-centered per varying term, from the data,
before sampling (no PyMC here).

The choice follows how much each group's own data say about its effect relative to how much
the effects vary between groups. In the normal-normal model with group estimates of standard
error ``s_j`` and between-group SD ``tau``, the centered Gibbs sampler converges at rate
``s^2 / (s^2 + tau^2)`` and the non-centered one at ``tau^2 / (s^2 + tau^2)``
(Papaspiliopoulos, Roberts & Sköld 2007, Statistical Science 22(1):59-73, §3; Gelfand, Sahu
& Carlin 1995); NUTS sees the same geometry, a funnel for the centered form when the data
are weak and a tight ridge between offsets and tau for the non-centered one when they are
strong (Betancourt & Girolami 2015, "Hamiltonian Monte Carlo for hierarchical models", §4).
The two forms break even at ``s / tau = 1``.

For term t of factor f:

1. ``s_j``: the standard error of group j's own estimate of its coefficient. Identity links:
   the no-pooling least-squares fit of :func:`hiermodels.numerics.pooling.no_pooling_fit`
   (weighted by ``1 / se_i^2`` with known standard errors), the other population terms
   shared. Logit and log links: the Fisher information of the group's rows at the pooled
   maximum-likelihood fit, ``s_j = sqrt(diag((Z_j' W Z_j)^-1))`` (no separation trouble:
   the weights come from the pooled fit), and the group estimate is one Fisher-scoring step
   from it. A group whose rows cannot identify the coefficient has ``s_j = inf``.
2. ``tau_hat``: method of moments on the group estimates, ``var(b_j) - mean(s_j^2)``
   (over groups with an estimate), its root, floored at 1% of the median ``s_j``.
3. centered when the median of ``s_j / tau_hat`` is below :data:`THRESHOLD` = 0.5, else
   non-centered.

Why 0.5 and not the break-even 1: the two mistakes do not cost the same. A centered term
whose tau posterior reaches toward 0 gives divergences, i.e. biased estimates; a
non-centered term with informative data only mixes more slowly (lower ESS, no bias). And
``tau_hat`` is a noisy point estimate while the posterior of tau spreads below it. So the
centered form is chosen only when the data pin the groups down clearly (a shrinkage factor
``s^2 / (s^2 + tau^2)`` below 0.2).

Correlated terms of one factor share a multivariate normal and so one form: the block is
centered only when every term in it would be (the largest median ratio decides), since one
weakly identified term puts the whole joint block in a funnel.

With several grouping factors that each have a varying intercept (crossed, like items and
raters, or nested), the intercepts stay non-centered whatever the ratios: centered values of
two factors both sit on the population intercept, and a shift of one factor's values against
the other's leaves the likelihood unchanged, a ridge that centering does not remove
(Papaspiliopoulos, Roberts & Zanella 2020, "Scalable inference for crossed random effects
models", Biometrika 107(1):25-40). In ``benchmarks/bench_parameterization.py`` (40 items x
12 raters) centering both intercepts cut the smallest bulk ESS from ~80 to ~25 even though
each factor's ratio was ~0.25. Slopes of such models follow the ratio rule; each factor's
``s_j`` comes from a fit that ignores the other factors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hiermodels.data import GroupedData, GroupFactor
from hiermodels.families import get_family
from hiermodels.names import INTERCEPT, effect_name
from hiermodels.spec import HierarchicalSpec

__all__ = ["THRESHOLD", "Choice", "choices_frame", "choose", "information_ratios"]

THRESHOLD = 0.5  # median s_j / tau_hat below this: centered (see the module docstring)
TAU_FLOOR = 0.01  # tau_hat is at least this fraction of the median s_j


@dataclass(frozen=True)
class Choice:
    """The parameterization of one varying term of one factor, and why."""

    term: str
    factor: str
    choice: str
    ratio: float  # median s_j / tau_hat (NaN when the choice was given, not computed)
    reason: str
    automatic: bool

    @property
    def name(self) -> str:
        return effect_name(self.term, self.factor)

    def to_dict(self) -> dict:
        return {
            "term": self.term,
            "factor": self.factor,
            "choice": self.choice,
            "ratio": None if not np.isfinite(self.ratio) else round(float(self.ratio), 6),
            "reason": self.reason,
            "automatic": self.automatic,
        }


DENSE_LIMIT = 20_000_000  # elements of the dense no-pooling design (160 MB) before per-group sums


def _shared_columns(data: GroupedData, f: GroupFactor) -> np.ndarray:
    absorbed = f.group_level if INTERCEPT in f.varying else ()
    shared = [t for t in data.terms if t not in f.varying and t not in absorbed]
    if not shared:
        return np.empty((len(data.y), 0))
    return np.column_stack([data.column(t) for t in shared])


def _group_estimates(data: GroupedData, spec: HierarchicalSpec, f: GroupFactor):
    """Each group's own estimate of the factor's varying terms and its standard error,
    (n_groups, q) each (see the module docstring, step 1)."""
    # imported here: numerics.pooling imports scipy.stats (~0.9 s), which a marginal fit,
    # that makes no choice, does not need (docs/performance.md)
    from hiermodels.numerics.pooling import no_pooling_by_group, no_pooling_fit, no_pooling_glm

    Z = np.column_stack([data.column(t) for t in f.varying])
    link = get_family(spec.family).link
    if link == "identity":
        shared = _shared_columns(data, f)
        if len(data.y) * (f.n_groups * Z.shape[1] + shared.shape[1]) > DENSE_LIMIT:
            # the dense no-pooling design would not fit in memory (1e6 rows x 1e4 groups:
            # 149 GiB): per-group sums, without the shared columns (a heuristic input only)
            return no_pooling_by_group(data.y, Z, f.idx, f.n_groups, se=data.se)
        return no_pooling_fit(data.y, shared, Z, f.idx, f.n_groups, se=data.se)
    # the pooled fit: one coefficient per population term, no group effects
    n = len(data.y)
    pooled, _ = no_pooling_glm(
        data.y,
        np.empty((n, 0)),
        data.X,
        np.zeros(n, dtype=int),
        1,
        link=link,
        trials=data.trials,
        offset=data.offset,
    )
    nan = np.full((f.n_groups, Z.shape[1]), np.nan)
    if not np.all(np.isfinite(pooled)):
        return nan, nan.copy()
    eta = data.X @ pooled[0] + (0.0 if data.offset is None else data.offset)
    if link == "logit":
        size = np.ones(n) if data.trials is None else np.asarray(data.trials, dtype=float)
        prob = 1 / (1 + np.exp(-eta))
        mean, weight = size * prob, size * prob * (1 - prob)
    else:
        mean = weight = np.exp(eta)
    est, std = nan.copy(), nan.copy()
    for j in range(f.n_groups):
        rows = f.idx == j
        Zj, wj = Z[rows], weight[rows]
        info = Zj.T @ (wj[:, None] * Zj)
        if np.linalg.matrix_rank(info) < Z.shape[1]:
            continue  # the group's rows cannot identify all its coefficients
        cov = np.linalg.inv(info)
        std[j] = np.sqrt(np.diag(cov))
        est[j] = cov @ (Zj.T @ (data.y[rows] - mean[rows]))  # one scoring step from pooled
    return est, std


def information_ratios(data: GroupedData, spec: HierarchicalSpec, f: GroupFactor):
    """Per varying term of ``f``: (median s_j / tau_hat, median s_j, tau_hat, whether
    tau_hat is at its floor)."""
    est, std = _group_estimates(data, spec, f)
    out = {}
    for k, t in enumerate(f.varying):
        b, s = est[:, k], std[:, k]
        ok = np.isfinite(b) & np.isfinite(s)
        s_all = np.where(ok, s, np.inf)  # a group without an estimate is uninformed
        median_s = float(np.median(s_all))
        if ok.sum() < 2 or not np.isfinite(median_s):
            out[t] = (np.inf, median_s, np.nan, False)
            continue
        tau2 = np.var(b[ok], ddof=1) - np.mean(s[ok] ** 2)
        floored = np.sqrt(max(tau2, 0.0)) < TAU_FLOOR * median_s
        tau = max(np.sqrt(max(tau2, 0.0)), TAU_FLOOR * median_s)
        out[t] = (median_s / tau if tau > 0 else np.inf, median_s, tau, floored)
    return out


def _automatic(ratios: dict, terms) -> tuple[str, float, str]:
    worst_term = max(terms, key=lambda t: ratios[t][0])
    ratio, median_s, tau, floored = ratios[worst_term]
    block = f" (the least informed of the correlated terms, {worst_term})" if len(terms) > 1 else ""
    if not np.isfinite(tau):
        return "noncentered", ratio, "fewer than 2 groups have an estimate of their own"
    choice = "centered" if ratio < THRESHOLD else "noncentered"
    relation = "<" if choice == "centered" else ">="
    what = (
        "each group's data pin its effect down"
        if choice == "centered"
        else "the groups' own data are weak relative to the spread between groups"
    )
    if floored:
        what = (
            "the group estimates vary no more than their noise (tau_hat at its floor, 1% of "
            "the median s_j), so the data cannot pin the groups down"
        )
    return (
        choice,
        ratio,
        f"median s_j / tau_hat = {median_s:.3g} / {tau:.3g} = {ratio:.3g} {relation} "
        f"{THRESHOLD}{block}: {what}",
    )


def _asked(spec: HierarchicalSpec, term: str, factor: str) -> str:
    """What the user asked for one term: a parameterization or "auto"."""
    if isinstance(spec.parameterization, str):
        return spec.parameterization
    given = dict(spec.parameterization)
    return given.get(effect_name(term, factor), given.get(term, "noncentered"))


def choose(
    data: GroupedData, spec: HierarchicalSpec
) -> tuple[HierarchicalSpec, tuple[Choice, ...]]:
    """The spec with every ``"auto"`` resolved to a parameterization, and each term's choice.

    A spec without ``"auto"`` comes back unchanged (its choices are listed as given).
    """
    choices = []
    shared = [f.name for f in data.factors if INTERCEPT in f.varying]
    for f in data.factors:
        asked = {t: _asked(spec, t, f.name) for t in f.varying}
        blocks = (
            [list(f.varying)] if f.correlated and len(f.varying) > 1 else [[t] for t in f.varying]
        )
        ratios = None
        for block in blocks:
            if asked[block[0]] != "auto":
                for t in block:
                    choices.append(Choice(t, f.name, asked[t], np.nan, "given", False))
                continue
            if ratios is None:
                ratios = information_ratios(data, spec, f)
            choice, ratio, reason = _automatic(ratios, block)
            if INTERCEPT in block and len(shared) > 1:
                choice, reason = (
                    "noncentered",
                    (
                        f"the intercept varies by several grouping factors ({', '.join(shared)}): "
                        "centered, their values would share the population intercept, a ridge "
                        f"centering does not remove (median s_j / tau_hat = {ratio:.3g})"
                    ),
                )
            for t in block:
                choices.append(Choice(t, f.name, choice, ratio, reason, True))
    if not any(c.automatic for c in choices):
        return spec, tuple(choices)
    concrete = tuple(sorted((c.name, c.choice) for c in choices))
    return replace(spec, parameterization=concrete), tuple(choices)


def choices_frame(choices) -> pd.DataFrame:
    """The choices as a table: term, factor, choice, ratio (median s_j / tau_hat), reason."""
    columns = ["term", "factor", "choice", "ratio", "reason"]
    rows = [{k: c.to_dict()[k] for k in columns} for c in choices]
    table = pd.DataFrame(rows, columns=columns)
    table["ratio"] = table["ratio"].astype(float)
    return table
