"""PSIS-LOO comparison of fitted models from their pointwise log-likelihood draws.

One table and one plain-language verdict for every comparison the package makes:
``compare_pooling`` (no / complete / partial pooling) and ``hm.compare`` (any fitted models).
PSIS-LOO is ArviZ's (Vehtari, Gelman & Gabry 2017); differences are judged as in Sivula,
Magnusson, Matamoros & Vehtari (2022): below 4 a difference is small, otherwise it is clear
when larger than twice its standard error.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["SMALL_ELPD_DIFF", "Candidate", "loo", "loo_table", "verdict"]

SMALL_ELPD_DIFF = 4.0  # below this an elpd difference is small (Sivula et al. 2022)


@dataclass(frozen=True, eq=False)
class Candidate:
    """One model in a comparison: its (chain, draw, n_obs) pointwise log-likelihood, the
    relative efficiency of its draws (1 for independent exact draws, None to estimate it),
    and optionally the exact leave-one-study-out log predictive density of each study."""

    log_likelihood: np.ndarray
    reff: float | None = None
    loso: np.ndarray | None = None


def loo(candidate: Candidate):
    """ArviZ's PSIS-LOO for one candidate (pointwise), high Pareto k left to the table."""
    import arviz as az

    ll = np.asarray(candidate.log_likelihood)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"_": (("chain", "draw"), np.zeros(ll.shape[:2]))}),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)}),
        }
    )
    with warnings.catch_warnings():
        # high Pareto k is reported in the table's n_high_k column and in the verdict
        warnings.filterwarnings("ignore", "Estimated shape parameter", UserWarning)
        return az.loo(tree, pointwise=True, reff=candidate.reff)


def loo_table(candidates: Mapping[str, Candidate], *, loos: Mapping | None = None) -> pd.DataFrame:
    """Best first: ``rank, elpd_loo, se, elpd_diff, dse, p_loo, n_high_k, max_k,
    k_threshold`` (and ``elpd_loso, loso_se`` when any candidate has exact leave-one-study-out
    densities). ``elpd_diff`` and ``dse`` come from the pointwise differences to the best."""
    loos = dict(loos or {})
    rows, pointwise = {}, {}
    sizes = {name: np.shape(c.log_likelihood)[-1] for name, c in candidates.items()}
    if len(set(sizes.values())) > 1:
        from hiermodels.errors import SpecError

        raise SpecError(
            f"models fitted to different data cannot be compared by LOO: observations {sizes}"
        )
    with_loso = any(c.loso is not None for c in candidates.values())
    for name, candidate in candidates.items():
        result = loos[name] if name in loos else loo(candidate)
        k = np.asarray(result.pareto_k).ravel()
        pointwise[name] = np.asarray(result.elpd_i).ravel()
        rows[name] = {
            "elpd_loo": float(result.elpd),
            "se": float(result.se),
            "p_loo": float(result.p),
            "n_high_k": int((k > result.good_k).sum()),
            "max_k": float(k.max()),
            "k_threshold": float(result.good_k),
        }
        if with_loso:
            loso = candidate.loso
            rows[name]["elpd_loso"] = float(loso.sum()) if loso is not None else np.nan
            rows[name]["loso_se"] = (
                float(np.sqrt(len(loso) * loso.var(ddof=1))) if loso is not None else np.nan
            )
    table = pd.DataFrame(rows).T
    best = table["elpd_loo"].idxmax()
    n = len(pointwise[best])
    diffs = {name: pointwise[name] - pointwise[best] for name in candidates}
    table["elpd_diff"] = [float(diffs[name].sum()) for name in table.index]
    table["dse"] = [float(np.sqrt(n * diffs[name].var(ddof=1))) for name in table.index]
    table = table.sort_values("elpd_loo", ascending=False)
    table.insert(0, "rank", np.arange(len(table)))
    first = ["rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo"]
    table = table[first + [c for c in table.columns if c not in first]]
    table = table.astype({"rank": int, "n_high_k": int})
    table.attrs["n_obs"] = n
    return table


def verdict(table: pd.DataFrame, labels: Mapping[str, str] | None = None, *, kind: str = "") -> str:
    """A plain-language reading of :func:`loo_table`; ``labels`` names the candidates."""
    labels = {name: (labels or {}).get(name, name) for name in table.index}
    n = table.attrs.get("n_obs", "?")
    best = table.index[0]
    lines = [f"Best out-of-sample prediction (PSIS-LOO, {n} observations): {labels[best]}."]
    for name, row in table.iloc[1:].iterrows():
        diff, dse = -row["elpd_diff"], row["dse"]
        if diff < SMALL_ELPD_DIFF:
            reading = "a small difference: they predict about equally well"
        elif diff > 2 * dse:
            reading = "a clear difference"
        else:
            reading = "not clearly different (less than 2 se)"
        lines.append(f"  {labels[name]} is worse by {diff:.1f} (se {dse:.1f}): {reading}.")
    for name, row in table.iterrows():
        if row["n_high_k"]:
            advice = (
                "trust elpd_loso"
                if "elpd_loso" in table and np.isfinite(row["elpd_loso"])
                else "refit without them to check"
            )
            lines.append(
                f"  PSIS-LOO is unreliable for {labels[name]}: {int(row['n_high_k'])} of {n} "
                f"observations have Pareto k > {row['k_threshold']:.2f} (max "
                f"{row['max_k']:.2f}), so its elpd_loo is too optimistic or noisy; {advice}."
            )
    if "elpd_loso" in table:
        loso = table["elpd_loso"].dropna().sort_values(ascending=False)
        if len(loso):
            scores = ", ".join(f"{labels[p]} {v:.1f}" for p, v in loso.items())
            tail = "; no pooling cannot predict a study it has not seen" if kind == "study" else ""
            lines.append(
                f"For a new study (exact leave-one-study-out): {labels[loso.index[0]]} predicts "
                f"best ({scores}){tail}."
            )
    return "\n".join(lines)
