"""Simulation-based calibration of the engines (``hm.calibrate``, Talts et al. 2018).

Every engine on small real designs, 200+ simulated data sets each (the parameters drawn
from the priors, the outcomes simulated on the design, each refitted):

* the exact meta-analysis engine: eight schools (8 studies, se 9-18; mu ~ Normal(0, 20),
  the default half-Cauchy on tau) and BCG (13 trials, log risk ratios; mu ~ Normal(0, 2),
  ``half_normal_logor``), 1000 simulations each;
* the full model by NUTS, non-centered and centered: eight schools as rows,
  ``y | se(sigma) ~ 1 + (1 | school)`` with a half-normal hyperprior. The centered form is
  kept as the documented failure: eight studies with large standard errors give the funnel
  of Betancourt & Girolami (2015) (most refits diverge, the ranks of tau are not uniform);
* the full model by NUTS, centered where that is the right choice: a data-rich simulated
  design, 50 groups x 20 rows, ``y ~ x + (1 | g)`` (the likelihood pins each group's effect,
  so the centered posterior has no funnel; ``parameterization="auto"`` chooses it too);
* the marginal engine (NUTS on the population parameters, group effects drawn exactly): a
  radon subset (12 counties, 5 houses each), ``log_radon ~ floor + (1 | county)``;
* a logistic GLM with a varying intercept: the rat tumour experiments (BDA3 §5.1) as
  ``tumors | trials(rats) ~ 1 + (1 | experiment)``, binomial, 71 groups.

MCMC: 2 chains x 2000 draws after 2000 tuning steps, ranks among 199 draws thinned from them. With
nutpie each structure compiles once and every refit gives the compiled model the new
outcome, so a refit costs its sampling only (``first_refit_seconds`` compiles,
``median_later_refit_seconds`` reuses). Per parameter: the chi-square and ECDF uniformity
p-values of the ranks and the coverage of the central 50/80/90/95% intervals, with the
binomial SD of a coverage, sqrt(p (1 - p) / n_sims): 2.1% at 90% for 200 simulations, so a
90% coverage between 85.8% and 94.2% (2 SD) is what a calibrated engine gives.
Writes ``benchmarks/results/calibration.json``.

Run: ``make calibrate`` or ``.venv/bin/python benchmarks/bench_calibration.py``
(``CALIBRATION_MCMC_SIMS`` sets the simulations per MCMC case, default 1000, and
``CALIBRATION_MCMC_DRAWS`` the draws per chain, default 2000;
``--cases NAME [NAME ...]`` runs only those cases and merges them into the JSON file,
keeping the other cases' numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hiermodels as hm
from hiermodels.engines.compiled import compile_count

EXACT_SIMS = 1000
MCMC_SIMS = int(os.environ.get("CALIBRATION_MCMC_SIMS", "1000"))  # per MCMC case
# draws per chain; the 199 ranked draws are thinned from 2 x DRAWS, so that they are nearly
# independent (Talts et al. 2018 §5.1): autocorrelated draws bend the rank ECDF, which
# 1000 simulations can see
DRAWS = int(os.environ.get("CALIBRATION_MCMC_DRAWS", "2000"))
OUT = Path(__file__).parent / "results" / "calibration.json"


def radon_subset(counties=12, per_county=5, seed=0):
    """Houses of the ``counties`` counties with the most, ``per_county`` from each."""
    radon = hm.datasets.load("radon")
    big = radon["county"].value_counts().index[:counties]
    rows = radon[radon["county"].isin(big)]
    return rows.groupby("county").sample(per_county, random_state=seed).reset_index(drop=True)


# what a case's numbers mean, written into the results (also for cases not rerun)
NOTES = {
    "mcmc_centered_eight_schools": (
        "the documented failure: the centered form on eight schools (8 studies, se 9-18) has "
        "the funnel of Betancourt & Girolami (2015); most refits diverge and the ranks of "
        "tau are not uniform (its 90% coverage well below 0.9). Use the non-centered form "
        "here (parameterization='auto' chooses it)"
    ),
    "mcmc_centered_data_rich": (
        "the centered form where it is the right choice: 20 rows per group pin each group's "
        "effect, so the centered posterior has no funnel (6 of 200 refits diverged, against "
        "186 on eight schools; the other warnings are mostly the largest R-hat of 50 group "
        "effects a little above 1.01 with 2 chains x 500 draws)"
    ),
}


def data_rich_design(groups=50, per_group=20, seed=0):
    """A simulated design where the centered form fits: 50 groups x 20 rows, group SD 1
    and residual SD 1, so each group mean is known to about 1 / sqrt(20) of the group SD."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(size=groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def record(cal, seconds: float, compiles: int, **extra) -> dict:
    out = cal.to_dict()
    table = cal.uniformity()
    cover = cal.coverage().query("level == 0.9")
    out.update(
        seconds=round(seconds, 1),
        compiles=compiles,
        min_ecdf_p=float(table["ecdf_p"].min()),
        min_chi2_p=float(table["chi2_p"].min()),
        coverage_90_range=[float(cover["coverage"].min()), float(cover["coverage"].max())],
        coverage_90_binomial_sd=float(cover["binomial_sd"].iloc[0]),
        **extra,
    )
    return out


def mcmc_cases():
    schools = hm.datasets.load("eight_schools")
    rats = hm.datasets.load("rat_tumors")
    school_formula = "y | se(sigma) ~ 1 + (1 | school)"
    return {
        "mcmc_noncentered_eight_schools": (
            hm.HierarchicalModel(
                schools, school_formula, hyperprior="half_normal", parameterization="noncentered"
            ),
            "full",
            "eight schools as rows, " + school_formula + ", half-normal hyperprior",
        ),
        "mcmc_centered_eight_schools": (
            hm.HierarchicalModel(
                schools, school_formula, hyperprior="half_normal", parameterization="centered"
            ),
            "full",
            "eight schools as rows, " + school_formula + ", half-normal hyperprior",
        ),
        "mcmc_centered_data_rich": (
            hm.HierarchicalModel(
                data_rich_design(), "y ~ x + (1 | g)", parameterization="centered"
            ),
            "full",
            "simulated, 50 groups x 20 rows, y ~ x + (1 | g), default priors, centered",
        ),
        "marginal_radon": (
            hm.HierarchicalModel(radon_subset(), "log_radon ~ floor + (1 | county)"),
            "marginal",
            "radon, 12 counties x 5 houses, log_radon ~ floor + (1 | county)",
        ),
        "binomial_rat_tumors": (
            hm.HierarchicalModel(
                rats,
                "tumors | trials(rats) ~ 1 + (1 | experiment)",
                family="binomial",
                hyperprior="half_normal",
            ),
            "full",
            "rat tumours (71 experiments), tumors | trials(rats) ~ 1 + (1 | experiment), "
            "binomial, half-normal hyperprior",
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="NAME",
        help="run only these cases and merge them into the existing results file",
    )
    cases = parser.parse_args(argv).cases
    known = ["exact_eight_schools", "exact_bcg", *mcmc_cases()]
    unknown = sorted(set(cases or ()) - set(known))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {known}")
    results = json.loads(OUT.read_text()) if cases and OUT.exists() else {}
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    wanted = (lambda name: name in cases) if cases else (lambda name: True)
    for name, note in NOTES.items():
        if name in results:
            results[name]["note"] = note
    schools = hm.datasets.load("eight_schools")
    bcg = hm.effect_sizes_2x2(hm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
    metas = {
        "exact_eight_schools": dict(
            data=schools, estimate="y", se="sigma", study="school",
            mu_prior=hm.priors.Normal(0, 20),
        ),
        "exact_bcg": dict(
            data=bcg, estimate="yi", se="sei", study="trial",
            mu_prior=hm.priors.Normal(0, 2), hyperprior="half_normal_logor",
        ),
    }  # fmt: skip
    for name, args in metas.items():
        if not wanted(name):
            continue
        start = time.perf_counter()
        cal = hm.calibrate(args, EXACT_SIMS, random_seed=2018, progressbar=False)
        results[name] = record(
            cal, time.perf_counter() - start, 0, draws_per_refit=cal.n_values - 1
        )
        print(name, cal, flush=True)
        OUT.write_text(json.dumps(results, indent=2))
    for name, (model, engine, design) in mcmc_cases().items():
        if not wanted(name):
            continue
        before, start = compile_count(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small simulated data sets: prior warnings
            cal = hm.calibrate(
                model,
                MCMC_SIMS,
                draws=DRAWS,
                tune=DRAWS,
                chains=2,
                random_seed=2018,
                engine=engine,
                progressbar=False,
            )
        results[name] = record(
            cal,
            time.perf_counter() - start,
            compile_count() - before,
            design=design,
            draws=f"2 chains x {DRAWS} (+{DRAWS} tuning), ranks among 199 thinned draws",
            divergent_refits=len({m.split(":")[0] for m in cal.diagnostics if "divergent" in m}),
            **({"note": NOTES[name]} if name in NOTES else {}),
        )
        print(name, cal, results[name]["median_later_refit_seconds"], flush=True)
        OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
