"""Any data frame in, pandas inside: the one place that converts a user's table.

pandas frames pass through untouched (never copied, never modified). polars, pyarrow, DuckDB
and any other table that exposes the Arrow PyCapsule stream (``__arrow_c_stream__``) are read
through pyarrow (``pyarrow.table``). (The older dataframe interchange protocol is deprecated
in pandas 3 in favour of the Arrow stream, so it is not used.) Results stay pandas.
"""

from __future__ import annotations

import pandas as pd

from hiermodels.errors import DataError

__all__ = ["to_pandas"]


def to_pandas(data, *, what: str = "data") -> pd.DataFrame:
    """``data`` as a pandas DataFrame (the same object when it already is one).

    Examples
    --------
    >>> import pyarrow as pa
    >>> to_pandas(pa.table({"y": [1.0, 2.0], "g": ["a", "b"]})).dtypes["y"]
    dtype('float64')
    """
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "__arrow_c_stream__"):
        import pyarrow as pa

        try:
            return pa.table(data).to_pandas()
        except (TypeError, ValueError, pa.ArrowException) as error:
            raise DataError(
                f"{what}: could not read {type(data).__name__} as a table: {error}"
            ) from error
    raise DataError(
        f"expected a DataFrame for {what}, got {type(data).__name__}; pass a pandas, polars "
        "or pyarrow table (anything that exposes the Arrow stream, __arrow_c_stream__)"
    )
