"""hm.effect_sizes: metafor's escalc on the columns of a table, through the public API.

Reference numbers: metafor 3.8.1 on R 4.2.2, the same calls and values as in
tests/numerics/test_effect_sizes.py (which checks the numpy formulas); here they must come
out of the public function that reads, checks and writes columns.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.numerics.effect_sizes import escalc

DATA = Path(__file__).resolve().parents[1] / "data"
R10 = 1e-9


def read(name):
    return pd.read_csv(DATA / f"{name}.csv")


MEANS = {c: c for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")}


def test_smd_matches_metafor_normand1999_and_keeps_the_input():
    d = read("normand1999")
    before = d.copy()
    out = hm.effect_sizes(d, "SMD", **MEANS)
    pd.testing.assert_frame_equal(d, before)  # never mutated
    assert list(out.columns) == [*d.columns, "yi", "vi", "sei"]
    # escalc("SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i,
    # data=dat.normand1999); metafor 3.8.1
    np.testing.assert_allclose(out["yi"][:3], [-0.3551696409, -0.3479400227, -2.31756916], R10)
    np.testing.assert_allclose(
        out["vi"][:3], [0.01306467554, 0.0644688761, 0.04581211028], rtol=R10
    )
    np.testing.assert_allclose([out["yi"].sum(), out["vi"].sum()], [-4.983464517, 0.6377091447])
    np.testing.assert_allclose(out["sei"], np.sqrt(out["vi"]), rtol=1e-15)
    assert out.attrs["measure"] == "SMD"
    only = hm.effect_sizes(d, "SMD", append=False, **MEANS)
    assert list(only.columns) == ["yi", "vi", "sei"] and only.index.equals(d.index)


def test_columns_under_other_names_and_several_measures():
    # the arguments name columns: any column names work
    d = read("molloy2014").rename(columns={"ri": "r", "ni": "n"})
    out = hm.effect_sizes(d, "ZCOR", ri="r", ni="n")
    # escalc("ZCOR", ri=ri, ni=ni, data=dat.molloy2014); metafor 3.8.1
    np.testing.assert_allclose(out["yi"][:3], [0.1892266425, 0.1634399185, 0.354092529], R10)
    np.testing.assert_allclose(
        out["vi"][:3], [0.009433962264, 0.001340482574, 0.01923076923], rtol=R10
    )
    d = read("hart1999")
    out = hm.effect_sizes(d, "IRR", x1i="x1i", t1i="t1i", x2i="x2i", t2i="t2i")
    # escalc("IRR", x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i, data=dat.hart1999); metafor 3.8.1
    np.testing.assert_allclose(out["yi"][:2], [-0.7842099895, -0.9358932591], rtol=R10)
    np.testing.assert_allclose(out["vi"][:2], [0.1637426901, 0.1776315789], rtol=R10)
    d = read("hine1989")
    out = hm.effect_sizes(d, "RD", ai="ai", n1i="n1i", ci="ci", n2i="n2i")
    # escalc("RD", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.hine1989); metafor 3.8.1
    np.testing.assert_allclose(out["yi"][:3], [0.02802623733, 0, 0.01971112999], atol=1e-15)
    # every measure and its zero-cell options equal the numerics' escalc on the same arrays
    d = read("nielweise2007")
    cols = {c: c for c in ("ai", "n1i", "ci", "n2i")}
    for measure in ("RR", "OR", "PETO", "RD"):
        for to in ("only0", "all", "if0all"):
            out = hm.effect_sizes(d, measure, to=to, add=0.25, **cols)
            yi, vi = escalc(measure, to=to, add=0.25, **{c: d[c] for c in cols})
            np.testing.assert_allclose(out["yi"], yi, rtol=1e-15)
            np.testing.assert_allclose(out["vi"], vi, rtol=1e-15)


def test_effect_sizes_2x2_is_a_thin_case():
    bcg = hm.datasets.load("bcg")
    cells = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
    for old, code in (("log_rr", "RR"), ("log_or", "OR")):
        two = hm.effect_sizes_2x2(bcg, measure=old, **cells)
        new = hm.effect_sizes(bcg, code, **cells)
        assert list(two.columns) == [*bcg.columns, "yi", "sei"]
        np.testing.assert_array_equal(two["yi"], new["yi"])
        np.testing.assert_array_equal(two["sei"], new["sei"])
    # metafor: escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg), trial 1
    assert two is not bcg and "yi" not in bcg.columns
    rr = hm.effect_sizes(bcg, "RR", **cells)
    assert rr.loc[0, "yi"] == pytest.approx(-0.8893113339, rel=R10)
    assert rr.loc[0, "vi"] == pytest.approx(0.3255847650, rel=1e-9)


def test_vi_feeds_meta_analysis_like_se():
    bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    by_vi = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
    by_se = hm.meta_analysis(bcg, estimate="yi", se="sei", study="trial")
    pd.testing.assert_frame_equal(by_vi.summary(), by_se.summary(), rtol=1e-14)
    assert by_vi.spec.vi == "vi" and by_vi.spec.se is None
    # metafor: rma(yi, vi, data=dat) on the BCG log risk ratios: mu -0.7145, tau^2 0.3132
    table = by_vi.heterogeneity(["REML"])
    assert table.loc["REML", "mu"] == pytest.approx(-0.7145323422, rel=1e-8)
    assert table.loc["REML", "tau2"] == pytest.approx(0.3132432581, rel=1e-8)
    with pytest.raises(hm.SpecError, match=r"exactly one of se= .* and vi="):
        hm.meta_analysis(bcg, estimate="yi", se="sei", vi="vi")
    with pytest.raises(hm.SpecError, match="exactly one"):
        hm.meta_analysis(bcg, estimate="yi")
