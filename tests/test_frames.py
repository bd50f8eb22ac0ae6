"""Any data frame in: pandas untouched, polars and pyarrow through the Arrow stream."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import hiermodels as hm
from hiermodels.frames import to_pandas

polars = pytest.importorskip("polars")


def frame():
    return pd.DataFrame({"y": [0.5, 1.5, -0.2], "g": ["a", "b", "a"], "n": [1, 2, 3]})


def test_pandas_passes_through_unchanged():
    df = frame()
    assert to_pandas(df) is df


@pytest.mark.parametrize("make", [pa.Table.from_pandas, polars.from_pandas])
def test_arrow_tables_convert_with_values_and_kinds(make):
    out = to_pandas(
        make(frame(), preserve_index=False) if make is pa.Table.from_pandas else make(frame())
    )
    pd.testing.assert_frame_equal(out.astype({"g": object}), frame().astype({"g": object}))


def test_other_objects_are_refused_with_the_fix():
    with pytest.raises(hm.DataError, match=r"DataFrame.*polars or pyarrow"):
        to_pandas({"y": [1, 2]})
    with pytest.raises(hm.DataError, match="got list"):
        to_pandas([1, 2, 3])


def test_any_arrow_stream_object():
    """The Arrow PyCapsule stream is the protocol: an object with only that converts."""

    class Stream:
        def __arrow_c_stream__(self, requested_schema=None):
            return pa.Table.from_pandas(frame()).__arrow_c_stream__(requested_schema)

    np.testing.assert_allclose(to_pandas(Stream())["y"], frame()["y"])


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")  # mocked draws
@pytest.mark.parametrize("convert", [pa.Table.from_pandas, polars.from_pandas])
def test_fits_and_meta_analyses_take_polars_and_pyarrow(convert, mock_pymc_sample):
    radon = hm.datasets.load("radon").head(200)
    kw = {"draws": 10, "chains": 1, "random_seed": 1}
    ours = hm.fit_hierarchical(convert(radon), "log_radon ~ floor + (1 | county)", **kw)
    theirs = hm.fit_hierarchical(radon, "log_radon ~ floor + (1 | county)", **kw)
    np.testing.assert_array_equal(ours.data.X, theirs.data.X)
    assert ours.model.coords["county"] == theirs.model.coords["county"]
    new = radon.head(5)
    np.testing.assert_allclose(
        ours.predict(convert(new), random_seed=2).draws.values,
        theirs.predict(new, random_seed=2).draws.values,
    )
    schools = hm.datasets.load("eight_schools")
    a = hm.meta_analysis(convert(schools), estimate="y", se="sigma", study="school")
    b = hm.meta_analysis(schools, estimate="y", se="sigma", study="school")
    pd.testing.assert_frame_equal(a.heterogeneity(), b.heterogeneity())


def test_model_repr_shows_formula_family_groups_and_priors():
    model = hm.HierarchicalModel(hm.datasets.load("radon"), "log_radon ~ floor + (1 | county)")
    text = repr(model)
    assert "log_radon ~ floor + (1 | county)" in text and "gaussian" in text
    assert "county (85)" in text and "Intercept|county_sigma ~ HalfCauchy" in text
    assert "not valid yet" in repr(hm.HierarchicalModel(hm.datasets.load("radon"), y="nope"))
