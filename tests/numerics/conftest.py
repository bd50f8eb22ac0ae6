"""Data sets of tests/data (copies of ../shared/data; sources in tests/data/README.md) as the
(y, v) pairs that metafor's examples meta-analyse."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiermodels.numerics.effect_sizes import escalc

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def bcg_rr():
    """dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg): yi, vi, the
    design [1, ablat] and the publication year."""
    d = pd.read_csv(DATA / "bcg.csv")
    yi, vi = escalc("RR", ai=d["tpos"], bi=d["tneg"], ci=d["cpos"], di=d["cneg"])
    X = np.column_stack([np.ones(len(d)), d["ablat"].to_numpy(float)])
    return yi, vi, X, d["year"].to_numpy()


@pytest.fixture(scope="session")
def normand_smd():
    """escalc("SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i,
    data=dat.normand1999): yi, vi."""
    d = pd.read_csv(DATA / "normand1999.csv")
    return escalc("SMD", **{c: d[c] for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")})


@pytest.fixture(scope="session")
def raudenbush():
    """dat.raudenbush1985: yi, vi as published (2 and 4 decimals)."""
    d = pd.read_csv(DATA / "raudenbush1985.csv")
    return d["yi"].to_numpy(float), d["vi"].to_numpy(float)
