import pytest

import hiermodels as hm


@pytest.mark.parametrize(
    ("name", "rows", "columns"),
    [
        ("eight_schools", 8, ["school", "y", "sigma"]),
        ("radon", 919, ["county", "floor", "log_radon", "log_uranium"]),
        ("sleepstudy", 180, ["subject", "days", "reaction"]),
        ("bcg", 13, ["trial", "author", "year", "tpos", "tneg", "cpos", "cneg", "ablat", "alloc"]),
        ("rat_tumors", 71, ["experiment", "tumors", "rats"]),
    ],
)
def test_load_shapes_and_columns(name, rows, columns):
    df = hm.datasets.load(name)
    assert len(df) == rows
    assert list(df.columns) == columns
    assert "Source:" in hm.datasets.describe(name)


def test_published_values():
    schools = hm.datasets.load("eight_schools")
    # BDA3 Table 5.2
    assert schools["y"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert schools["sigma"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]
    radon = hm.datasets.load("radon")
    assert radon["county"].nunique() == 85
    sleep = hm.datasets.load("sleepstudy")
    assert sleep.groupby("subject").size().eq(10).all()
    assert sleep["subject"].nunique() == 18


def test_load_returns_fresh_copy():
    a = hm.datasets.load("eight_schools")
    a.loc[0, "y"] = 999
    assert hm.datasets.load("eight_schools").loc[0, "y"] == 28


def test_unknown_dataset():
    with pytest.raises(hm.HierModelsError, match=r"unknown data set 'nope'.*eight_schools"):
        hm.datasets.load("nope")
