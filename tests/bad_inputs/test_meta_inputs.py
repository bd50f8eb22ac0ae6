"""Bad input to meta_analysis and effect_sizes_2x2: each row names the error and its words."""

from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

Case = namedtuple("Case", "id frame call error words")
# frame: zero-arg callable returning the DataFrame given to call (or None); call: callable(frame);
# error: a HierModelsError subclass; words: strings the message must contain (case-insensitive)


def studies(**changes):
    """Six studies with estimates ``y``, standard errors ``se`` and labels ``study``."""
    df = pd.DataFrame(
        {
            "study": list("ABCDEF"),
            "y": [0.1, 0.3, -0.2, 0.5, 0.05, 0.25],
            "se": [0.2, 0.15, 0.3, 0.25, 0.1, 0.2],
            "year": [2001, 2003, 2005, 2007, 2009, 2011],
        }
    )
    return df.assign(**changes)


def tables(**changes):
    """Four 2x2 tables: events/non-events treated (ai, bi) and control (ci, di)."""
    df = pd.DataFrame(
        {
            "ai": [4, 6, 3, 10],
            "bi": [119, 300, 228, 90],
            "ci": [11, 29, 11, 20],
            "di": [128, 274, 209, 80],
        }
    )
    return df.assign(**changes)


def meta(**kwargs):
    return lambda df: hm.meta_analysis(df, estimate="y", se="se", **kwargs)


def es(**kwargs):
    return lambda df: hm.effect_sizes_2x2(df, ai="ai", bi="bi", ci="ci", di="di", **kwargs)


CASES = [
    # -- the estimate and se columns ---------------------------------------------------------
    Case(
        "se_numbers_as_text",
        lambda: studies(se=["0.2", "0.15", "0.3", "0.25", "0.1", "0.2"]),
        meta(),
        hm.DataError,
        ("'se'", "to_numeric"),
    ),
    Case(
        "se_text_missing",
        lambda: studies(se=["0.2", "missing", "0.3", "0.25", "0.1", "0.2"]),
        meta(),
        hm.DataError,
        ("'se'", "row 1", "'missing'", "to_numeric"),
    ),
    Case(
        "estimate_text",
        lambda: studies(y=["0.1", "0.3", "n/a", "0.5", "0.05", "0.25"]),
        meta(),
        hm.DataError,
        ("'y'", "row 2", "to_numeric"),
    ),
    Case(
        "se_nan",
        lambda: studies(se=[0.2, np.nan, 0.3, 0.25, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "row 1", "dropna"),
    ),
    Case(
        "estimate_nan",
        lambda: studies(y=[0.1, 0.3, np.nan, 0.5, np.nan, 0.25]),
        meta(),
        hm.DataError,
        ("'y'", "rows 2, 4", "dropna"),
    ),
    Case(
        "estimate_inf",
        lambda: studies(y=[0.1, np.inf, -0.2, 0.5, 0.05, 0.25]),
        meta(),
        hm.DataError,
        ("'y'", "infinite", "row 1"),
    ),
    Case(
        "se_inf",
        lambda: studies(se=[0.2, 0.15, 0.3, np.inf, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "infinite", "row 3"),
    ),
    Case(
        "se_zero",
        lambda: studies(se=[0.2, 0.0, 0.3, 0.25, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "row 1", "positive"),
    ),
    Case(
        "se_negative",
        lambda: studies(se=[0.2, 0.15, -0.3, 0.25, -0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "rows 2, 4", "positive"),
    ),
    Case(
        "se_underflows",
        lambda: studies(se=[0.2, 0.15, 1e-200, 0.25, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "row 2", "below 1e-150", "units"),
    ),
    Case(
        "se_overflows",
        lambda: studies(se=[0.2, 0.15, 0.3, 1e200, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "row 3", "above 1e+150", "units"),
    ),
    Case(
        "se_range_too_wide",
        lambda: studies(se=[1e-100, 0.15, 0.3, 1e100, 0.1, 0.2]),
        meta(),
        hm.DataError,
        ("'se'", "row 0", "row 3", "drop"),
    ),
    Case(
        "column_missing",
        lambda: studies(),
        lambda df: hm.meta_analysis(df, estimate="y", se="sd"),
        hm.DataError,
        ("'sd'", "available columns"),
    ),
    Case("one_study", lambda: studies().iloc[:1], meta(), hm.DataError, ("at least 2 studies",)),
    Case(
        "duplicate_labels",
        lambda: studies(study=list("ABCDEA")),
        meta(study="study"),
        hm.DataError,
        ("'study'", "rows 0, 5", "unique"),
    ),
    Case(
        "too_many_moderators",
        lambda: studies().iloc[:2],
        meta(moderators=["year"]),
        hm.DataError,
        ("2 studies", "fewer moderators"),
    ),
    # -- options -----------------------------------------------------------------------------
    Case("draws_zero", lambda: studies(), meta(draws=0), hm.SpecError, ("draws", ">= 1")),
    Case("draws_negative", lambda: studies(), meta(draws=-5), hm.SpecError, ("draws", ">= 1")),
    Case(
        "draws_float", lambda: studies(), meta(draws=10.5), hm.SpecError, ("draws", "whole number")
    ),
    Case(
        "seed_negative",
        lambda: studies(),
        meta(random_seed=-1),
        hm.SpecError,
        ("random_seed", ">= 0"),
    ),
    Case(
        "sample_kwargs_not_a_dict",
        lambda: studies(),
        meta(sample_kwargs=0.95),
        hm.SpecError,
        ("sample_kwargs", "target_accept"),
    ),
    Case(
        "sample_kwargs_repeats_tune",
        lambda: studies(),
        meta(method="mcmc", sample_kwargs={"tune": 500}),
        hm.SpecError,
        ("sample_kwargs", "'tune'", "tune="),
    ),
    Case(
        "exact_with_student_t_mu_prior",
        lambda: studies(),
        meta(mu_prior=hm.priors.StudentT(3, 0, 1)),
        hm.SpecError,
        ("method='exact'", "StudentT", "method='mcmc'"),
    ),
    Case("chains_zero", lambda: studies(), meta(chains=0), hm.SpecError, ("chains", ">= 1")),
    Case("tune_negative", lambda: studies(), meta(tune=-1), hm.SpecError, ("tune", ">= 0")),
    Case(
        "unknown_parameterization",
        lambda: studies(),
        meta(parameterization="offset"),
        hm.SpecError,
        ("'offset'", "noncentered"),
    ),
    Case(
        "unknown_method",
        lambda: studies(),
        meta(method="bootstrap"),
        hm.SpecError,
        ("'bootstrap'", "'exact'"),
    ),
    Case(
        "unknown_hyperprior",
        lambda: studies(),
        meta(hyperprior="cauchy"),
        hm.SpecError,
        ("'cauchy'",),
    ),
    Case(
        "mu_prior_not_a_prior",
        lambda: studies(),
        meta(mu_prior=5.0),
        hm.SpecError,
        ("mu_prior", "prior object"),
    ),
    # -- 2x2 tables --------------------------------------------------------------------------
    Case(
        "count_negative",
        lambda: tables(ci=[11, -29, 11, 20]),
        es(),
        hm.DataError,
        ("'ci'", "row 1", "negative"),
    ),
    Case(
        "count_not_integer",
        lambda: tables(ai=[4, 6.5, 3, 10.25]),
        es(),
        hm.DataError,
        ("'ai'", "rows 1, 3", "whole numbers", "round"),
    ),
    Case(
        "treated_arm_empty",
        lambda: tables(ai=[4, 0, 3, 10], bi=[119, 0, 228, 90]),
        es(),
        hm.DataError,
        ("treated", "'ai'", "'bi'", "row 1", "drop"),
    ),
    Case(
        "control_arm_empty",
        lambda: tables(ci=[0, 29, 11, 0], di=[0, 274, 209, 0]),
        es(),
        hm.DataError,
        ("control", "rows 0, 3"),
    ),
    Case(
        "count_nan",
        lambda: tables(di=[128, np.nan, 209, 80]),
        es(),
        hm.DataError,
        ("'di'", "row 1"),
    ),
    Case(
        "count_text",
        lambda: tables(bi=["119", "300", "many", "90"]),
        es(),
        hm.DataError,
        ("'bi'", "row 2", "to_numeric"),
    ),
    Case("add_negative", lambda: tables(), es(add=-0.5), hm.SpecError, ("add", ">= 0")),
    Case("add_nan", lambda: tables(), es(add=float("nan")), hm.SpecError, ("add",)),
    Case("unknown_measure", lambda: tables(), es(measure="RR"), hm.SpecError, ("'RR'", "log_rr")),
    Case(
        "count_column_missing",
        lambda: tables(),
        lambda df: hm.effect_sizes_2x2(df, ai="a", bi="bi", ci="ci", di="di"),
        hm.DataError,
        ("'a'",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, bad_input):
    bad_input(case)
