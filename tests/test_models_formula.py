"""The formula form of HierarchicalModel / fit_hierarchical builds the keyword form's spec."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm


def test_formula_and_keywords_build_the_same_spec_and_graph(radon):
    formula = hm.HierarchicalModel(radon, "log_radon ~ floor + log_uranium + (1 + floor | county)")
    keywords = hm.HierarchicalModel(
        radon, y="log_radon", group="county", predictors=["floor", "log_uranium"], varying=["floor"]
    )
    _, f_spec, f_priors = formula.prepared()
    _, k_spec, k_priors = keywords.prepared()
    assert f_spec.formula.startswith("log_radon ~")
    assert f_spec == dataclasses.replace(k_spec, formula=f_spec.formula)
    assert f_priors == k_priors
    f_model, k_model = formula.build(), keywords.build()
    assert sorted(f_model.named_vars) == sorted(k_model.named_vars)
    point = k_model.initial_point()
    assert f_model.compile_logp(mode="FAST_COMPILE")(point) == pytest.approx(
        k_model.compile_logp(mode="FAST_COMPILE")(point)
    )


def test_formula_options_binomial_offset_uncorrelated():
    df = pd.DataFrame(
        {"k": [1, 2, 0, 3], "n": [4, 4, 5, 6], "x": [0.1, 0.5, 0.2, 0.9], "g": list("abab")}
    )
    spec = hm.HierarchicalModel(df, "k | trials(n) ~ x + (1 + x || g)", family="binomial")
    _, s, _ = spec.prepared()
    assert (s.y, s.trials, s.varying, s.correlated) == ("k", "n", ("x",), False)
    counts = df.assign(log_t=np.log(df["n"]))
    _, s, _ = hm.HierarchicalModel(
        counts, "k ~ x + offset(log_t) + (1 | g)", family="poisson"
    ).prepared()
    assert s.offset == "log_t" and s.predictors == ("x",)


@pytest.mark.parametrize(
    ("formula", "kwargs", "message"),
    [
        ("y ~ x + (1 | a) + (1 + x | a)", {}, r"\['a'\] appear in more than one grouping"),
        ("y ~ 1 + (1 + x | a)", {}, r"\['x'\] vary by 'a' but have no population-level term"),
        ("y ~ x + (1 | a)", {"group": "a"}, "given together with a formula"),
        ("y ~ 0 + x + (1 | a)", {}, "removes the population intercept"),
    ],
)
def test_formula_errors(formula, kwargs, message):
    df = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0], "a": ["u", "v"], "b": ["p", "q"]})
    with pytest.raises(hm.SpecError, match=message):
        hm.HierarchicalModel(df, formula, **kwargs).build()


def test_neither_formula_nor_keywords():
    with pytest.raises(hm.SpecError, match="give a formula, or y= and group="):
        hm.HierarchicalModel(pd.DataFrame({"y": [1.0]})).build()
