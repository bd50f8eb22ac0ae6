"""Effect sizes against metafor's escalc (metafor 3.8.1) and hand computations."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiermodels.errors import DataError
from hiermodels.numerics.effect_sizes import (
    MEASURES,
    TRANSFORMS,
    escalc,
    hedges_correction,
    log_odds_ratio,
    log_risk_ratio,
    risk_difference,
)

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


# ---------------------------------------------------------------------------------------
# escalc: every measure against metafor 3.8.1 (R 4.2.2; the calls are in
# tests/data/metafor_reference.R, which printed each number below to 10 significant digits;
# dat is the CSV of tests/data read with read.csv)

DATA = Path(__file__).resolve().parents[1] / "data"
R10 = 1e-9  # relative: 10 significant digits as printed


def read(name):
    return pd.read_csv(DATA / f"{name}.csv")


def means(d):
    return {c: d[c].to_numpy(float) for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")}


@pytest.mark.parametrize(
    ("measure", "yi3", "vi3", "sums"),
    [
        # escalc("MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat)
        # with dat = dat.normand1999; metafor 3.8.1
        ("MD", [-20, -2, -55], [40.50802316, 2.080645161, 15.69840376], [-143, 347.7266416]),
        # escalc("SMD", ...): Hedges' g with the exact gamma-function correction, vtype="LS";
        # metafor 3.8.1
        (
            "SMD",
            [-0.3551696409, -0.3479400227, -2.31756916],
            [0.01306467554, 0.0644688761, 0.04581211028],
            [-4.983464517, 0.6377091447],
        ),
        # escalc("ROM", ...); metafor 3.8.1
        (
            "ROM",
            [-0.3101549283, -0.07145896398, -0.6202404098],
            [0.009379083261, 0.002762767854, 0.001777212409],
            [-1.815517642, 0.1790439966],
        ),
    ],
)
def test_mean_measures_match_metafor_normand1999(measure, yi3, vi3, sums):
    yi, vi = escalc(measure, **means(read("normand1999")))
    np.testing.assert_allclose(yi[:3], yi3, rtol=R10)
    np.testing.assert_allclose(vi[:3], vi3, rtol=R10)
    np.testing.assert_allclose([yi.sum(), vi.sum()], sums, rtol=R10)  # all 9 studies


def test_smd_exact_correction_and_published_md_variances():
    # Hedges' c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)); metafor:::.cmicalc(10) in
    # metafor 3.8.1 prints 0.9227456081; the approximation 1 - 3/(4m - 1) is 0.923077
    assert hedges_correction(10) == pytest.approx(0.9227456081, rel=R10)
    assert np.isnan(hedges_correction(1.0))
    # metafor's test suite (test_analysis_example_normand1999.r), from Normand (1999):
    # MD with the pooled SD in both groups, vi = (40.5863, 2.0468, ...)
    d = read("normand1999")
    n1, n2 = d["n1i"].to_numpy(float), d["n2i"].to_numpy(float)
    sdp = np.sqrt(((n1 - 1) * d["sd1i"] ** 2 + (n2 - 1) * d["sd2i"] ** 2) / (n1 + n2 - 2))
    yi, vi = escalc("MD", m1i=d["m1i"], sd1i=sdp, n1i=n1, m2i=d["m2i"], sd2i=sdp, n2i=n2)
    np.testing.assert_allclose(yi, [-20, -2, -55, -71, -4, 1, 11, -10, 7])
    np.testing.assert_allclose(vi[:3], [40.5863, 2.0468, 15.2809], atol=5e-5)


def test_rom_matches_metafor_curtis1998():
    # escalc("ROM", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i,
    # data=dat.curtis1998); metafor 3.8.1
    yi, vi = escalc("ROM", **means(read("curtis1998")))
    assert yi.size == 102
    np.testing.assert_allclose(yi[:3], [0.5469558688, 0.1425469115, 0.4377533845], rtol=R10)
    np.testing.assert_allclose(vi[:3], [0.03847154324, 0.01745537096, 0.03275250641], rtol=R10)
    np.testing.assert_allclose([yi.sum(), vi.sum()], [29.00956327, 2.376096267], rtol=R10)


@pytest.mark.parametrize(
    ("measure", "yi3", "vi3", "mcdaniel_sums"),
    [
        # escalc("COR", ri=ri, ni=ni, data=dat.molloy2014) and data=dat.mcdaniel1994;
        # metafor 3.8.1
        (
            "COR",
            [0.187, 0.162, 0.34],
            [0.008623007694, 0.001267648058, 0.01448450667],
            [38.46, 2.549424646],
        ),
        # escalc("ZCOR", ri=ri, ni=ni, ...); metafor 3.8.1
        (
            "ZCOR",
            [0.1892266425, 0.1634399185, 0.354092529],
            [0.009433962264, 0.001340482574, 0.01923076923],
            [43.28904513, 4.186252334],
        ),
    ],
)
def test_correlations_match_metafor(measure, yi3, vi3, mcdaniel_sums):
    d = read("molloy2014")
    yi, vi = escalc(measure, ri=d["ri"], ni=d["ni"])
    np.testing.assert_allclose(yi[:3], yi3, rtol=R10)
    np.testing.assert_allclose(vi[:3], vi3, rtol=R10)
    d = read("mcdaniel1994")
    yi, vi = escalc(measure, ri=d["ri"], ni=d["ni"])
    assert yi.size == 160
    np.testing.assert_allclose([yi.sum(), vi.sum()], mcdaniel_sums, rtol=R10)
    assert TRANSFORMS[MEASURES[measure].back_transform](yi)[0] == pytest.approx(d["ri"][0])


@pytest.mark.parametrize(
    ("measure", "yi5", "vi5", "sums", "by_to"),
    [
        # escalc("PR", xi=xi, ni=ni, data=dat.pritz1997) and with to="all", "if0all",
        # "none"; metafor 3.8.1 adds 1/2 to xi and ni - xi of study 5 (10 of 10 improved)
        (
            "PR",
            0.9545454545,
            0.003944402705,
            [10.86125113, 0.1611044722],
            {
                "all": [0.9166666667, 0.00424382716],
                "if0all": [0.9166666667, 0.00424382716],
                "none": [0.9411764706, 0.003256665988],
            },
        ),
        # escalc("PLO", xi=xi, ni=ni, ...); metafor 3.8.1
        (
            "PLO",
            3.044522438,
            2.095238095,
            [21.23577927, 10.94095691],
            {
                "all": [2.397895273, 0.7272727273],
                "if0all": [2.397895273, 0.7272727273],
                "none": [2.772588722, 1.0625],
            },
        ),
    ],
)
def test_proportions_match_metafor_pritz1997(measure, yi5, vi5, sums, by_to):
    d = read("pritz1997")
    yi, vi = escalc(measure, xi=d["xi"], ni=d["ni"])
    assert (yi[4], vi[4]) == (pytest.approx(yi5, rel=R10), pytest.approx(vi5, rel=R10))
    np.testing.assert_allclose([yi.sum(), vi.sum()], sums, rtol=R10)
    for to, first in by_to.items():  # study 1 (16 of 17) has no zero cell
        yi, vi = escalc(measure, xi=d["xi"], ni=d["ni"], to=to)
        np.testing.assert_allclose([yi[0], vi[0]], first, rtol=R10)
    # mi = ni - xi is the other way to give the group size
    yi_m, _ = escalc(measure, xi=d["xi"], mi=d["ni"] - d["xi"])
    np.testing.assert_allclose(yi_m, escalc(measure, xi=d["xi"], ni=d["ni"])[0], rtol=1e-15)


@pytest.mark.parametrize(
    ("measure", "yi2", "vi2", "zero"),
    [
        # escalc("IR", xi=x1i, ti=t1i, data=dat.hart1999) and
        # escalc("IR", xi=c(0, 5), ti=c(100, 200)); metafor 3.8.1
        (
            "IR",
            [0.02179176755, 0.03041825095],
            [5.276457035e-05, 0.0001156587489],
            [0.005, 0.025, 5e-05, 0.000125],
        ),
        # escalc("IRLN", ...); metafor 3.8.1
        (
            "IRLN",
            [-3.826223016, -3.49271249],
            [0.1111111111, 0.125],
            [-5.298317367, -3.688879454, 2, 0.2],
        ),
    ],
)
def test_rates_match_metafor_hart1999(measure, yi2, vi2, zero):
    d = read("hart1999")
    yi, vi = escalc(measure, xi=d["x1i"], ti=d["t1i"])
    np.testing.assert_allclose(yi[:2], yi2, rtol=R10)
    np.testing.assert_allclose(vi[:2], vi2, rtol=R10)
    yi, vi = escalc(measure, xi=[0, 5], ti=[100, 200])  # 1/2 added to the zero count only
    np.testing.assert_allclose([*yi, *vi], zero, rtol=R10)


def test_irr_matches_metafor():
    # escalc("IRR", x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i, data=dat.hart1999); metafor 3.8.1
    d = read("hart1999")
    args = {c: d[c] for c in ("x1i", "t1i", "x2i", "t2i")}
    yi, vi = escalc("IRR", **args)
    np.testing.assert_allclose(yi[:2], [-0.7842099895, -0.9358932591], rtol=R10)
    np.testing.assert_allclose(vi[:2], [0.1637426901, 0.1776315789], rtol=R10)
    # same call with data=dat.nielweise2008: sum(yi), sum(vi)
    d = read("nielweise2008")
    yi, vi = escalc("IRR", **{c: d[c] for c in ("x1i", "t1i", "x2i", "t2i")})
    np.testing.assert_allclose([yi.sum(), vi.sum()], [-4.787861385, 5.715208811], rtol=R10)
    # escalc("IRR", x1i=c(0,0,4), t1i=c(100,100,100), x2i=c(0,3,5), t2i=c(90,90,90),
    # drop00=TRUE): NA, -2.051270665, -0.328504067 / NA, 2.285714286, 0.45
    yi, vi = escalc("IRR", x1i=[0, 0, 4], t1i=[100] * 3, x2i=[0, 3, 5], t2i=[90] * 3, drop00=True)
    assert np.isnan(yi[0]) and np.isnan(vi[0])
    np.testing.assert_allclose(yi[1:], [-2.051270665, -0.328504067], rtol=R10)
    np.testing.assert_allclose(vi[1:], [2.285714286, 0.45], rtol=R10)


def test_rd_matches_metafor_hine1989():
    # escalc("RD", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.hine1989); metafor 3.8.1.
    # metafor's test suite (test_analysis_example_normand1999.r) has 100 yi and 10^4 vi from
    # Normand (1999): 2.8026, 0.0000, 1.9711, ... and 17.7575, 37.5657, ...
    d = read("hine1989")
    yi, vi = escalc("RD", ai=d["ai"], n1i=d["n1i"], ci=d["ci"], n2i=d["n2i"])
    np.testing.assert_allclose(
        yi,
        [0.02802623733, 0, 0.01971112999, 0.01796116505, 0.03533447684, 0.04403131115],
        rtol=R10,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        vi,
        [
            0.001775747745,
            0.003756574005,
            0.000813233989,
            0.001089975195,
            0.0008011403299,
            0.0006132030614,
        ],
        rtol=R10,
    )
    np.testing.assert_allclose(100 * yi[:3], [2.8026, 0.0, 1.9711], atol=5e-5)
    np.testing.assert_allclose(1e4 * vi[:3], [17.7575, 37.5657, 8.1323], atol=5e-5)


def test_peto_matches_metafor_yusuf1985():
    # dat <- subset(dat.yusuf1985, table == "6" & !is.na(ai)) (21 trials, 3 with no deaths);
    # escalc("PETO", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat); metafor 3.8.1
    d = read("yusuf1985")
    d = d[(d["table"].astype(str) == "6") & d["ai"].notna()]
    args = {c: d[c].to_numpy(float) for c in ("ai", "n1i", "ci", "n2i")}
    yi, vi = escalc("PETO", **args)
    assert yi.size == 21
    np.testing.assert_allclose(yi[:3], [-0.04505140939, -0.1176859594, 0.1975250627], rtol=R10)
    np.testing.assert_allclose(vi[:3], [0.1834235954, 0.1499919091, 0.1711883876], rtol=R10)
    np.testing.assert_allclose([yi.sum(), vi.sum()], [-3.250106338, 20.81716377], rtol=R10)
    # Pitt (0/9 vs 0/8): metafor adds 1/2 to the cells by default, also for PETO
    np.testing.assert_allclose([yi[10], vi[10]], [-0.1055555556, 4.011111111], rtol=R10)
    # to="none": Gupta (0/25 vs 3/25) needs no correction: -2.085106383, 1.390070922
    yi, vi = escalc("PETO", **args, to="none")
    np.testing.assert_allclose([yi[15], vi[15]], [-2.085106383, 1.390070922], rtol=R10)
    assert np.isnan(yi[10])  # 0/0 information: metafor gives NA
    # drop00=TRUE: NA rows 11, 14, 18 (1-based)
    yi, _ = escalc("PETO", **args, drop00=True)
    assert np.flatnonzero(np.isnan(yi)).tolist() == [10, 13, 17]


NIEL7 = {
    # escalc(measure, ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.nielweise2007, to=to):
    # (yi[1:2], vi[1:2]) for to = only0, all (= if0all here), none; metafor 3.8.1.
    # Trial 1 has ai = 0, trial 2 none.
    "RR": (
        ([-1.937399459, -1.327453861], [2.268692701, 1.282034632]),
        ([-1.937399459, -1.070441412], [2.268692701, 0.9023809524]),
        ([-np.inf, -1.327453861], [np.inf, 1.282034632]),  # metafor recodes +-Inf to NA
    ),
    "OR": (
        ([-1.963226599, -1.394076502], [2.303031601, 1.387839147]),
        ([-1.963226599, -1.138818709], [2.303031601, 1.006138689]),
        ([-np.inf, -1.394076502], [np.inf, 1.387839147]),
    ),
    "RD": (
        ([-0.02538751268, -0.06298701299], [0.0002802784071, 0.002743856687]),
        ([-0.02538751268, -0.06388888889], [0.0002802784071, 0.003154106653]),
        ([-0.02564102564, -0.06298701299], [0.0002135347303, 0.002743856687]),
    ),
    "PETO": (
        ([-1.510886712, -1.293753247], [1.013005356, 1.053675325]),
        ([-1.510886712, -1.089473684], [1.013005356, 0.8526315789]),
        ([-2.008769974, -1.293753247], [1.34495231, 1.053675325]),
    ),
}
# escalc(measure, ..., data=dat.nielweise2007, drop00=TRUE, add=1): yi[14:16], vi[14:16];
# trial 15 (0/118 vs 0/105) is dropped; metafor 3.8.1
NIEL7_DROP = {
    "RR": ([-0.6442875695, -0.6545323444], [0.2466726084, 1.492275113]),
    "OR": ([-0.6747341199, -0.6581921655], [0.2690177792, 1.507769363]),
    "RD": ([-0.02902554961, -0.003638749702], [0.0004848338581, 4.391766435e-05]),
    "PETO": ([-0.6552554412, -0.630730746], [0.2461399661, 1.339010354]),
}


@pytest.mark.parametrize("measure", ["RR", "OR", "RD", "PETO"])
def test_zero_cell_conventions_match_metafor_nielweise2007(measure):
    d = read("nielweise2007")
    args = {c: d[c].to_numpy(float) for c in ("ai", "n1i", "ci", "n2i")}
    only0, all_, none = NIEL7[measure]
    for to, (y2, v2) in (("only0", only0), ("all", all_), ("if0all", all_), ("none", none)):
        with np.errstate(divide="ignore"):
            yi, vi = escalc(measure, **args, to=to)
        np.testing.assert_allclose(yi[:2], y2, rtol=R10)
        np.testing.assert_allclose(vi[:2], v2, rtol=R10)
    yi, vi = escalc(measure, **args, drop00=True, add=1)
    assert np.isnan(yi[14]) and np.isnan(vi[14])
    np.testing.assert_allclose(yi[[13, 15]], NIEL7_DROP[measure][0], rtol=R10)
    np.testing.assert_allclose(vi[[13, 15]], NIEL7_DROP[measure][1], rtol=R10)


def test_bcg_rr_and_or_match_metafor_and_the_old_functions():
    # escalc(measure, ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg): sum(yi), sum(vi);
    # metafor 3.8.1
    d = bcg()
    cells = {"ai": d["tpos"], "bi": d["tneg"], "ci": d["cpos"], "di": d["cneg"]}
    for measure, sums, old in (
        ("RR", [-9.628454956, 1.986420224], log_risk_ratio),
        ("OR", [-10.03115416, 2.062579791], log_odds_ratio),
    ):
        yi, vi = escalc(measure, **cells)
        np.testing.assert_allclose([yi.sum(), vi.sum()], sums, rtol=R10)
        y_old, se_old = old(d["tpos"], d["tneg"], d["cpos"], d["cneg"])
        np.testing.assert_allclose(y_old, yi, rtol=1e-15)
        np.testing.assert_allclose(se_old**2, vi, rtol=1e-15)
    assert MEASURES["RR"].back_transform == "exp"


def test_registry_and_transforms():
    assert set(MEASURES) == {
        *("MD", "SMD", "ROM", "COR", "ZCOR", "PR", "PLO", "IR", "IRLN"),
        *("IRR", "RR", "OR", "RD", "PETO"),
    }
    assert all(m.back_transform in TRANSFORMS for m in MEASURES.values())
    np.testing.assert_allclose(TRANSFORMS["tanh"](np.arctanh(0.3)), 0.3, rtol=1e-15)
    np.testing.assert_allclose(TRANSFORMS["expit"](np.log(0.25 / 0.75)), 0.25, rtol=1e-15)
    # corrections apply to count measures only, as in metafor
    assert {m.name for m in MEASURES.values() if m.corrected} == {
        *("PR", "PLO", "IR", "IRLN", "IRR", "RR", "OR", "RD", "PETO")
    }


@pytest.mark.parametrize(
    ("measure", "data", "match"),
    [
        ("XYZ", {"ai": [1]}, "unknown measure 'XYZ'"),
        ("RR", {"ai": [1], "ci": [2]}, "needs ai, bi, ci, di or ai, n1i, ci, n2i"),
        ("COR", {"ri": [0.1], "ni": [10], "xi": [3]}, "takes no \\['xi'\\]"),
        ("COR", {"ri": [1.2], "ni": [10]}, "ri has invalid values at positions \\[0\\]"),
        (
            "SMD",
            {
                **{key: [1.0] for key in ("m1i", "m2i", "sd2i")},
                "sd1i": [-1.0],
                "n1i": [5],
                "n2i": [5],
            },
            "sd1i .* standard deviations must be >= 0",
        ),
        ("IR", {"xi": [1], "ti": [0]}, "ti .* person-times must be > 0"),
        ("PR", {"xi": [5], "ni": [3]}, "mi has invalid counts"),
        (
            "ROM",
            {**{key: [1.0] for key in ("m1i", "sd1i", "sd2i", "n1i", "n2i")}, "m2i": [0.0]},
            "m2i .* positive means",
        ),
        ("RR", {"ai": [1], "bi": [1], "ci": [1], "di": [1]}, None),
    ],
)
def test_escalc_rejects_bad_input(measure, data, match):
    if match is None:  # the valid call, so that the list above cannot pass by accident
        assert np.isfinite(escalc(measure, **data)[0]).all()
        return
    with pytest.raises(DataError, match=match):
        escalc(measure, **data)
    with pytest.raises(DataError, match="to must be one of"):
        escalc("RR", ai=[1], bi=[1], ci=[1], di=[1], to="never")
