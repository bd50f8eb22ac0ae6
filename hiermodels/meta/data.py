"""Validate study-level data (one estimate and standard error per study) for meta-analysis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hiermodels.columns import level_labels
from hiermodels.data import (
    INTERCEPT,
    encode_predictors,
    numeric_column,
    require_columns,
    require_finite,
)
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.numerics.heterogeneity import SE_RATIO_LIMIT

__all__ = [
    "MultilevelData",
    "StudyData",
    "coefficient_names",
    "prepare_multilevel",
    "prepare_studies",
]


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
    # se of any size are fine (the numerics compute in units of their geometric middle,
    # hiermodels.numerics.heterogeneity.data_unit, and take the limit of a study whose se is
    # more than 1e152 times smaller or larger than the others'); only their spread is limited
    if np.log(s.max()) - np.log(s.min()) > np.log(SE_RATIO_LIMIT):  # the ratio may overflow
        lo, hi = df.index[[int(np.argmin(s)), int(np.argmax(s))]]
        raise DataError(
            f"column {se!r} spans more than a factor {SE_RATIO_LIMIT:g} (se {s.min():g} in row "
            f"{lo}, {s.max():g} in row {hi}): the weights 1/se^2 do not fit in double "
            f"precision. A study with se {SE_RATIO_LIMIT:g} times another's has no weight at "
            "all next to it: drop the rows with the huge se, or check the units of those rows"
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


#: standard errors the multilevel numerics take as given (they do not rescale the data)
MULTILEVEL_SE_RANGE = (1e-150, 1e150)


def _require_multilevel_range(df, studies, column, estimate):
    low, high = MULTILEVEL_SE_RANGE
    s = studies.se
    for bad, side, fix in (
        (df.index[s < low], f"below {low:g}", "smaller"),
        (df.index[s > high], f"above {high:g}", "larger"),
    ):
        if len(bad):
            raise DataError(
                f"column {column!r} has {len(bad)} standard error(s) {side} "
                f"({format_rows(bad)}): in a multilevel model their squares (the sampling "
                "variances) and weights 1/se^2 do not fit in double precision; express "
                f"{estimate!r} and {column!r} in {fix} units (multiply both columns by the same "
                f"power of 10) so that every se lies between {low:g} and {high:g}"
            )


@dataclass(frozen=True, eq=False)
class MultilevelData:
    """Effect sizes in clusters, for a three-level meta-analysis.

    ``studies`` holds one row per effect size (its ``study`` is the name of the effect-size
    level and the dim of the rows, its ``labels`` label each effect size); ``cluster`` gives
    each row's cluster as a code into ``cluster_labels`` (in order of first appearance);
    ``levels`` are the level names, outermost first (each has an SD ``tau_{name}``).
    """

    studies: StudyData
    levels: tuple[str, str]
    cluster: np.ndarray
    cluster_labels: tuple[str, ...]

    @property
    def cluster_name(self) -> str:
        return self.levels[0]

    @property
    def effect_name(self) -> str:
        return self.levels[1]

    @property
    def k(self) -> int:
        return self.studies.k

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_labels)

    @property
    def tau_names(self) -> tuple[str, str]:
        """``tau_{cluster}``, ``tau_{effect level}``: the SD of each level."""
        return f"tau_{self.levels[0]}", f"tau_{self.levels[1]}"

    @property
    def cluster_effect_name(self) -> str:
        """``u_{cluster}``: the clusters' deviations from the average effect (the u of
        Konstantopoulos 2011)."""
        return f"u_{self.levels[0]}"

    @property
    def counts(self) -> np.ndarray:
        """Effect sizes per cluster."""
        return np.bincount(self.cluster, minlength=self.n_clusters)


def prepare_multilevel(
    df: pd.DataFrame,
    *,
    estimate: str,
    levels: Sequence[str],
    names: Sequence[str],
    se: str | None = None,
    vi: str | None = None,
    study: str | None = None,
    moderators: Sequence[str] = (),
) -> MultilevelData:
    """Check and encode effect sizes nested in clusters (the caller's frame is not modified).

    ``levels`` are the level columns given, outermost first: the clusters, and optionally a
    column of the effect sizes (labels reused across clusters are nested in them, as
    metafor's ``~ 1 | district/school``); ``names`` are the two level names (``levels`` with
    the effect-size level named, see :attr:`hiermodels.meta.spec.MetaSpec.level_names`).
    Effect sizes are labelled by ``study`` if given, else by the effect-size column (with
    its cluster where labels repeat), else by the row index.
    """
    levels = list(levels)
    require_columns(df, levels)
    require_finite(df, levels)
    studies = prepare_studies(
        df, estimate=estimate, se=se, vi=vi, study=study, moderators=moderators
    )
    _require_multilevel_range(df, studies, se or vi, estimate)
    outer = level_labels(df[levels[0]])
    codes, uniques = pd.factorize(outer, sort=False)
    if len(uniques) < 2:
        raise DataError(
            f"level column {levels[0]!r} has a single cluster ({uniques[0]!r}) for all "
            f"{len(df)} rows: a multilevel model needs at least 2 clusters to separate the "
            "variance between clusters from the variance within them; drop levels=/cluster= "
            "for a two-level meta-analysis"
        )
    labels = list(studies.labels)
    if len(levels) == 2:
        inner = level_labels(df[levels[1]])
        pairs = pd.Series(list(zip(outer, inner, strict=True)), index=df.index)
        dupes = df.index[pairs.duplicated(keep=False).to_numpy()]
        if len(dupes):
            raise DataError(
                f"{format_rows(dupes)} share both {levels[0]!r} and {levels[1]!r}: the innermost "
                f"level must identify each effect size (one row per {levels[1]!r} within a "
                f"{levels[0]!r}); aggregate those rows or give {levels[1]!r} distinct labels"
            )
        counts = np.bincount(codes)
        if np.all(counts == 1) and inner.duplicated().any():
            raise DataError(
                f"levels not nested as given: every {levels[0]!r} holds a single row while "
                f"{levels[1]!r} repeats across rows; give levels outermost first, e.g. "
                f"levels=[{levels[1]!r}, {levels[0]!r}]"
            )
        if study is None:
            unique = not inner.duplicated().any()
            labels = (
                list(inner) if unique else [f"{o}/{i}" for o, i in zip(outer, inner, strict=True)]
            )
    p = studies.X.shape[1]
    if studies.k < p + 2:
        raise DataError(
            f"{studies.k} effect sizes cannot estimate {p} coefficient(s) and two variance "
            "components; use fewer moderators or a two-level meta-analysis"
        )
    return MultilevelData(
        studies=replace(studies, study=names[1], labels=tuple(labels)),
        levels=(names[0], names[1]),
        cluster=np.asarray(codes, dtype=int),
        cluster_labels=tuple(str(u) for u in uniques),
    )
