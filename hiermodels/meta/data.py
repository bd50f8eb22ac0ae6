"""Validate study-level data (one estimate and standard error per study) for meta-analysis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hiermodels.data import (
    INTERCEPT,
    encode_predictors,
    numeric_column,
    require_columns,
    require_finite,
)
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.numerics.heterogeneity import SE_RANGE, SE_RATIO

__all__ = ["StudyData", "coefficient_names", "prepare_studies"]


@dataclass(frozen=True, eq=False)
class StudyData:
    """Arrays for a normal-normal meta-analysis (or meta-regression).

    ``X`` is the (k, p) design with the intercept first; ``terms`` names its columns.
    """

    y: np.ndarray
    se: np.ndarray
    labels: tuple[str, ...]
    X: np.ndarray
    terms: tuple[str, ...]
    estimate: str
    se_name: str
    study: str

    @property
    def k(self) -> int:
        return len(self.y)

    @property
    def has_moderators(self) -> bool:
        return len(self.terms) > 1

    def without(self, i: int) -> StudyData:
        """The same data with study ``i`` left out (leave-one-out analyses)."""
        keep = np.arange(self.k) != i
        return replace(
            self,
            y=self.y[keep],
            se=self.se[keep],
            labels=tuple(np.asarray(self.labels)[keep]),
            X=self.X[keep],
        )


def coefficient_names(data: StudyData) -> list[str]:
    """``mu`` without moderators; otherwise ``Intercept`` and one name per moderator column."""
    return list(data.terms) if data.has_moderators else ["mu"]


def prepare_studies(
    df: pd.DataFrame,
    *,
    estimate: str,
    se: str | None = None,
    study: str | None = None,
    moderators: Sequence[str] = (),
    vi: str | None = None,
) -> StudyData:
    """Check and encode study-level data; the caller's frame is not modified.

    The sampling error comes from ``se`` (standard errors) or ``vi`` (sampling variances,
    whose square roots become the standard errors); exactly one must be given.
    """
    if (se is None) == (vi is None):
        raise SpecError("give exactly one of se= and vi= (the column of the sampling error)")
    moderators = [moderators] if isinstance(moderators, str) else list(moderators)
    error_column = se if se is not None else vi
    columns = [estimate, error_column, *([study] if study else []), *moderators]
    require_columns(df, columns)
    require_finite(df, columns)
    y = numeric_column(df, estimate, "estimate")
    if vi is not None:
        v = numeric_column(df, vi, "sampling variance")
        bad = df.index[v <= 0]
        if len(bad):
            raise DataError(
                f"column {vi!r} has {len(bad)} sampling variance(s) <= 0 ({format_rows(bad)}); "
                "sampling variances must be positive (a study with vi = 0 would get infinite "
                "weight): check those rows, or drop them"
            )
        s = np.sqrt(v)
        se = vi
    else:
        s = numeric_column(df, se, "standard error")
    bad = df.index[s <= 0]
    if len(bad):
        raise DataError(
            f"column {se!r} has {len(bad)} value(s) <= 0 ({format_rows(bad)}); standard errors "
            "must be positive (a study with se = 0 would get infinite weight)"
        )
    low, high = SE_RANGE
    for bad, side, fix in (
        (df.index[s < low], f"below {low:g}", "smaller"),
        (df.index[s > high], f"above {high:g}", "larger"),
    ):
        if len(bad):
            raise DataError(
                f"column {se!r} has {len(bad)} standard error(s) {side} ({format_rows(bad)}): "
                "their squares (the sampling variances) and weights 1/se^2 do not fit in double "
                f"precision; express {estimate!r} and {se!r} in {fix} units (multiply both "
                "columns by the same power of 10) so that every se lies between "
                f"{low:g} and {high:g}"
            )
    if s.max() / s.min() > SE_RATIO:
        lo, hi = df.index[[int(np.argmin(s)), int(np.argmax(s))]]
        raise DataError(
            f"column {se!r} spans more than a factor {SE_RATIO:g} (se {s.min():g} in row {lo}, "
            f"{s.max():g} in row {hi}): the weights 1/se^2 do not fit in double precision. A "
            f"study with se {SE_RATIO:g} times another's has no weight at all next to it: drop "
            "the rows with the huge se, or check the units of those rows"
        )
    if len(df) < 2:
        raise DataError(
            f"a meta-analysis needs at least 2 studies, got {len(df)}; add studies or report "
            "the single study's estimate"
        )
    if study:
        labels = df[study].astype(str)
        dupes = df.index[labels.duplicated(keep=False).to_numpy()]
        if len(dupes):
            raise DataError(
                f"column {study!r} has duplicate study labels ({format_rows(dupes)}: "
                f"{sorted(set(labels.loc[dupes]))}); give each study one row with a unique label"
            )
    else:
        labels = pd.Series([str(i) for i in df.index], index=df.index)
    names, design = encode_predictors(df, moderators)
    X = np.column_stack([np.ones(len(df)), design])
    if len(df) <= X.shape[1]:
        raise DataError(
            f"{len(df)} studies cannot estimate {X.shape[1]} coefficients and a heterogeneity; "
            "use fewer moderators"
        )
    return StudyData(
        y=y,
        se=s,
        labels=tuple(labels),
        X=X,
        terms=(INTERCEPT, *names),
        estimate=estimate,
        se_name=se if vi is None else f"sqrt({vi})",
        study=study or "study",
    )
