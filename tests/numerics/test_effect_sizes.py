"""Effect sizes from 2x2 tables against metafor's escalc output for dat.bcg and hand values."""

from pathlib import Path

import numpy as np
import pytest

from hiermodels.numerics.effect_sizes import log_odds_ratio, log_risk_ratio, risk_difference

BCG = Path(__file__).resolve().parents[2] / "hiermodels" / "data" / "bcg.csv"


def bcg():
    return np.genfromtxt(BCG, delimiter=",", names=True, dtype=None, encoding="utf-8")


def test_log_risk_ratio_matches_metafor_dat_bcg():
    # escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg), 4 decimals
    d = bcg()
    yi, sei = log_risk_ratio(d["tpos"], d["tneg"], d["cpos"], d["cneg"])
    np.testing.assert_allclose(yi[:2], [-0.8893, -1.5854], atol=5e-5)
    np.testing.assert_allclose(sei[:2] ** 2, [0.3256, 0.1946], atol=5e-5)


def test_log_risk_ratio_by_hand():
    # Aronson (1948): 4/123 vaccinated vs 11/139 controls had TB
    yi, sei = log_risk_ratio(4, 119, 11, 128)
    assert yi == pytest.approx(np.log((4 / 123) / (11 / 139)), rel=1e-12)
    assert sei**2 == pytest.approx(1 / 4 - 1 / 123 + 1 / 11 - 1 / 139, rel=1e-12)


def test_log_odds_ratio_by_hand():
    yi, sei = log_odds_ratio(4, 119, 11, 128)
    assert yi == pytest.approx(np.log(4 * 128 / (119 * 11)), rel=1e-12)
    assert sei**2 == pytest.approx(1 / 4 + 1 / 119 + 1 / 11 + 1 / 128, rel=1e-12)


def test_zero_cell_gets_half_added_to_that_table_only():
    # table 1 has a zero: 0.5 goes to all four of its cells (metafor's add=1/2, to="only0"):
    # log((0.5/11) / (5.5/11)) = log(1/11) and 1/0.5 - 1/11 + 1/5.5 - 1/11 = 2
    yi, sei = log_risk_ratio([0, 4], [10, 119], [5, 11], [5, 128])
    assert yi[0] == pytest.approx(-np.log(11), rel=1e-12)
    assert sei[0] ** 2 == pytest.approx(2.0, rel=1e-12)
    assert yi[1] == pytest.approx(np.log((4 / 123) / (11 / 139)), rel=1e-12)  # untouched
    # to="all" and to="if0all" also correct the second table; to="none" leaves log(0)
    for to in ("all", "if0all"):
        yi, _ = log_risk_ratio([0, 4], [10, 119], [5, 11], [5, 128], to=to)
        assert yi[1] == pytest.approx(np.log((4.5 / 124) / (11.5 / 140)), rel=1e-12)
    yi, _ = log_risk_ratio([0, 4], [10, 119], [5, 11], [5, 128], to="none")
    assert yi[0] == -np.inf


def test_risk_difference_by_hand():
    yi, sei = risk_difference([10, 0], [90, 20], [20, 5], [80, 15])
    assert yi[0] == pytest.approx(-0.1, rel=1e-12)
    assert sei[0] ** 2 == pytest.approx(0.1 * 0.9 / 100 + 0.2 * 0.8 / 100, rel=1e-12)
    # zero cell: 0.5/21 vs 5.5/21
    assert yi[1] == pytest.approx(0.5 / 21 - 5.5 / 21, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([1, -1], [2, 2], [3, 3], [4, 4]), {}, "ai has invalid counts at positions \\[1\\]"),
        (([1, 2], [2, 2], [3, 3], [4, 4, 4]), {}, "same length"),
        (([1], [2], [3], [4]), {"to": "sometimes"}, "to must be one of"),
        (([1], [2], [3], [4]), {"add": -0.5}, "add must be a finite number >= 0"),
        (([1, 0], [2, 0], [3, 3], [4, 4]), {}, "treated .* no patients at positions \\[1\\]"),
        (([1, 2], [2, 2], [0, 3], [0, 4]), {}, "control .* no patients at positions \\[0\\]"),
    ],
)
def test_bad_input_raises(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        log_risk_ratio(*args, **kwargs)
