"""Public data sets shipped with hiermodels.

>>> import hiermodels as hm
>>> hm.datasets.load("eight_schools").shape
(8, 3)
>>> sorted(hm.datasets.DATASETS)
['bcg', 'eight_schools', 'konstantopoulos2011', 'radon', 'rat_tumors', 'sleepstudy']
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from hiermodels.errors import HierModelsError

__all__ = ["DATASETS", "Dataset", "describe", "load"]


@dataclass(frozen=True)
class Dataset:
    """A shipped data set: its file, what one row is, and where it comes from."""

    name: str
    filename: str
    description: str
    source: str
    dtypes: tuple[tuple[str, str], ...] = ()


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "eight_schools",
            "eight_schools.csv",
            "Effects of SAT-V coaching programs in 8 schools: school, y (estimated effect, "
            "points), sigma (its standard error).",
            "Rubin (1981), Estimation in parallel randomized experiments, J. Educational "
            "Statistics 6(4):377-401; Gelman et al., Bayesian Data Analysis, 3rd ed., Table 5.2.",
            (("school", "string"),),
        ),
        Dataset(
            "radon",
            "radon.csv",
            "Radon in 919 Minnesota houses in 85 counties: county, floor (0 = basement, "
            "1 = first floor), log_radon (log pCi/L, 0.1 where 0), log_uranium (county-level "
            "log soil uranium, ppm).",
            "US EPA national radon survey, Minnesota; Gelman & Hill (2007), Data Analysis Using "
            "Regression and Multilevel/Hierarchical Models, ch. 12-13.",
            (("county", "string"),),
        ),
        Dataset(
            "sleepstudy",
            "sleepstudy.csv",
            "Reaction times of 18 subjects over 10 days of sleep deprivation: subject, days, "
            "reaction (mean reaction time, ms).",
            "Belenky et al. (2003), J. Sleep Research 12:1-12; distributed with the R package "
            "lme4.",
            (("subject", "string"),),
        ),
        Dataset(
            "bcg",
            "bcg.csv",
            "13 trials of the BCG vaccine against tuberculosis: trial, author, year, tpos/tneg "
            "(TB cases / non-cases, vaccinated), cpos/cneg (same, control), ablat (absolute "
            "latitude), alloc (allocation method).",
            "Colditz et al. (1994), JAMA 271:698-702; dat.bcg of the R package metafor.",
            (("author", "string"), ("alloc", "string")),
        ),
        Dataset(
            "rat_tumors",
            "rat_tumors.csv",
            "Tumor incidence in 71 groups of rats: experiment, tumors, rats (the last row is "
            "the current experiment).",
            "Tarone (1982), Biometrics 38:215-220; Gelman et al., Bayesian Data Analysis, "
            "3rd ed., Table 5.1.",
        ),
        Dataset(
            "konstantopoulos2011",
            "konstantopoulos2011.csv",
            "56 studies of a modified school calendar in 11 school districts (several effect "
            "sizes per district): district, school (number within district), study (unique), "
            "year, yi (standardized mean difference), vi (its sampling variance).",
            "Konstantopoulos (2011), Fixed effects and variance components estimation in "
            "three-level meta-analysis, Research Synthesis Methods 2:61-76; Cooper, Valentine, "
            "Charlton & Melson (2003), Review of Educational Research 73:1-52; "
            "dat.konstantopoulos2011 of the R package metadat.",
        ),
    )
}


def _get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise HierModelsError(
            f"unknown data set {name!r}; choose one of {', '.join(sorted(DATASETS))}"
        ) from None


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set as a new DataFrame.

    Parameters
    ----------
    name : str
        One of ``hm.datasets.DATASETS`` (see :func:`describe` for each one's source).

    Examples
    --------
    >>> import hiermodels as hm
    >>> radon = hm.datasets.load("radon")
    >>> radon["county"].nunique(), len(radon)
    (85, 919)
    """
    dataset = _get(name)
    with resources.files("hiermodels").joinpath("data", dataset.filename).open() as f:
        return pd.read_csv(f, dtype=dict(dataset.dtypes))


def describe(name: str) -> str:
    """Return a short description and the source of a shipped data set.

    Examples
    --------
    >>> import hiermodels as hm
    >>> "Rubin (1981)" in hm.datasets.describe("eight_schools")
    True
    """
    dataset = _get(name)
    return f"{dataset.name}: {dataset.description}\nSource: {dataset.source}"
