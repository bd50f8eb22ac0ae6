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
    with pytest.raises(hm.DataError, match="polars or pyarrow"):
        to_pandas({"y": [1, 2]})
    with pytest.raises(hm.DataError, match="got list"):
        to_pandas([1, 2, 3])


def test_any_arrow_stream_object():
    """The Arrow PyCapsule stream is the protocol: an object with only that converts."""

    class Stream:
        def __arrow_c_stream__(self, requested_schema=None):
            return pa.Table.from_pandas(frame()).__arrow_c_stream__(requested_schema)

    np.testing.assert_allclose(to_pandas(Stream())["y"], frame()["y"])
