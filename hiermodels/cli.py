"""The ``hiermodels`` command: ``demo``, ``fit``, ``meta``, ``pool`` (``hiermodels --help``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence

import pandas as pd

from hiermodels import datasets
from hiermodels.errors import ConvergenceWarning, HierModelsError
from hiermodels.meta import meta_analysis
from hiermodels.models import fit_hierarchical
from hiermodels.pooling import compare_pooling

__all__ = ["main"]


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.round(3).to_string())


def report_fit(result, *, n_groups_shown: int = 5) -> None:
    """Print a fitted model's summary and its most / least shrunken groups."""
    _print_table("Population-level parameters (95% intervals):", result.summary())
    effects = result.group_effects()
    columns = ["group", "n_obs", "no_pooling", "mean", "population", "shrinkage"]
    for factor, rows in effects[effects["term"] == "Intercept"].groupby("factor", sort=False):
        ranked = rows.sort_values("n_obs", kind="stable")[columns].dropna(axis=1, how="all")
        _print_table(
            f"Varying intercepts by {factor}, {n_groups_shown} with the fewest rows (shrunk most):",
            ranked.head(n_groups_shown).set_index("group"),
        )
        _print_table(
            f"... and the {n_groups_shown} with the most rows (shrunk least):",
            ranked.tail(n_groups_shown).set_index("group"),
        )
    for message in result.diagnostics:
        print(f"\nwarning: {message}")


def report_pooling(comparison, *, plot: str | None) -> None:
    """Print the three estimators side by side, the shrinkage, the comparison and verdict."""
    est = comparison.estimates()
    precision = "se" if "se" in est.columns else "n_obs"
    for term in comparison.terms:
        rows = est[est["term"] == term]
        wide = rows.pivot_table(
            index="group", columns="pooling", values=["mean", "sd"], sort=False
        ).reindex(columns=["none", "complete", "partial"], level=1)
        wide.columns = [f"{pooling}_{stat}" for stat, pooling in wide.columns]
        wide = wide[[f"{p}_{s}" for p in ("none", "complete", "partial") for s in ("mean", "sd")]]
        wide.insert(0, precision, rows.drop_duplicates("group").set_index("group")[precision])
        title = f"{term}: no pooling / complete pooling / partial pooling (posterior mean, sd)"
        if len(wide) > 12:
            wide = wide.sort_values(precision)
            _print_table(title + ", 6 least and 6 most precise groups:", _ends(wide, 6))
        else:
            _print_table(title + ":", wide)
    shrink = comparison.shrinkage().set_index("group").drop(columns="term")
    if len(shrink) > 12:
        shrink = _ends(shrink.sort_values(precision), 6)
    _print_table("Shrinkage toward complete pooling (0 = none, 1 = all the way):", shrink)
    table = comparison.compare()
    _print_table("Out-of-sample comparison (higher elpd is better):", table)
    print("\n" + table.attrs["verdict"])
    if plot:
        comparison.plot(plot)
        print(f"\nshrinkage plot written to {os.path.abspath(plot)}")
    partial = comparison.partial
    for message in getattr(partial, "diagnostics", ()):
        print(f"\nwarning: {message}")


def _ends(table: pd.DataFrame, k: int) -> pd.DataFrame:
    return pd.concat([table.head(k), table.tail(k)])


def _demo(args) -> None:
    schools = datasets.load("eight_schools")
    print(datasets.describe("eight_schools"))
    print(
        "\nNo pooling (each school alone), complete pooling (one effect for all) and partial "
        "pooling (hierarchical model, half-Cauchy prior on tau), all exact:"
    )
    start = time.perf_counter()
    comparison = compare_pooling(
        schools, estimate="y", se="sigma", study="school", random_seed=args.seed
    )
    print(f"(fitted in {1000 * (time.perf_counter() - start):.0f} ms)")
    report_pooling(comparison, plot=args.plot)


def _fit(args) -> None:
    data = pd.read_csv(args.file)
    if args.formula is None and (args.y is None or args.group is None):
        raise SystemExit("hiermodels fit: give --formula, or --y and --group")
    result = fit_hierarchical(
        data,
        args.formula,
        y=args.y,
        group=args.group,
        predictors=args.predictors,
        varying=args.varying,
        parameterization=args.parameterization,
        hyperprior=args.hyperprior,
        family=args.family,
        random_seed=args.seed,
        draws=args.draws,
    )
    report_fit(result)


def _meta(args) -> None:
    data = pd.read_csv(args.file)
    meta = meta_analysis(
        data,
        estimate=args.estimate,
        se=args.se,
        study=args.study,
        moderators=args.moderators,
        hyperprior=args.hyperprior,
        method=args.method,
        random_seed=args.seed,
    )
    print(meta)
    _print_table("Posterior (95% intervals):", meta.summary())
    _print_table("Heterogeneity:", meta.heterogeneity().T)
    _print_table("Study effects:", meta.study_effects().set_index("study"))
    if args.plot:
        meta.plot_forest(args.plot)
        print(f"\nforest plot written to {args.plot}")
    for message in meta.diagnostics:
        print(f"\nwarning: {message}")


def _pool(args) -> None:
    data = pd.read_csv(args.file)
    comparison = compare_pooling(
        data,
        estimate=args.estimate,
        se=args.se,
        study=args.study,
        y=args.y,
        group=args.group,
        predictors=args.predictors,
        varying=args.varying,
        hyperprior=args.hyperprior,
        random_seed=args.seed,
        draws=args.draws,
    )
    print(comparison)
    report_pooling(comparison, plot=args.plot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hiermodels", description="Hierarchical models and Bayesian meta-analysis."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="no / complete / partial pooling on eight schools")
    demo.add_argument("--plot", default="eight_schools_pooling.png", help="shrinkage plot PNG")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(run=_demo)

    fit = sub.add_parser("fit", help="fit a hierarchical regression to a CSV file")
    fit.add_argument("file")
    fit.add_argument(
        "--formula",
        default=None,
        help="lme4-style, e.g. 'y ~ x + (1 + x | g)', '(1 | item) + (1 | rater)', "
        "'(1 | school/class)'; replaces --y/--group/--predictors/--varying",
    )
    fit.add_argument("--y", default=None, help="outcome column")
    fit.add_argument("--group", default=None, help="grouping column")
    fit.add_argument("--family", default="gaussian", help="gaussian, poisson, bernoulli, ...")
    fit.add_argument("--predictors", nargs="*", default=[])
    fit.add_argument("--varying", nargs="*", default=[], help="predictors with varying slopes")
    fit.add_argument("--parameterization", default="noncentered")
    fit.add_argument("--hyperprior", default="half_cauchy")
    fit.add_argument("--draws", type=int, default=1000)
    fit.add_argument("--seed", type=int, default=None)
    fit.set_defaults(run=_fit)

    meta = sub.add_parser("meta", help="random-effects meta-analysis of study estimates")
    meta.add_argument("file")
    meta.add_argument("--estimate", required=True, help="column of study estimates")
    meta.add_argument("--se", required=True, help="column of their standard errors")
    meta.add_argument("--study", default=None, help="column of study labels")
    meta.add_argument("--moderators", nargs="*", default=[])
    meta.add_argument("--hyperprior", default="half_cauchy")
    meta.add_argument("--method", default="exact", choices=["exact", "mcmc"])
    meta.add_argument("--plot", default=None, help="write the forest plot to this PNG")
    meta.add_argument("--seed", type=int, default=None)
    meta.set_defaults(run=_meta)

    pool = sub.add_parser(
        "pool",
        help="compare no, complete and partial pooling (study-level: --estimate/--se; "
        "row-level: --y/--group)",
    )
    pool.add_argument("file")
    pool.add_argument("--estimate", default=None, help="column of study estimates")
    pool.add_argument("--se", default=None, help="column of their standard errors")
    pool.add_argument("--study", default=None, help="column of study labels")
    pool.add_argument("--y", default=None, help="outcome column (row-level data)")
    pool.add_argument("--group", default=None, help="grouping column (row-level data)")
    pool.add_argument("--predictors", nargs="*", default=[])
    pool.add_argument("--varying", nargs="*", default=[], help="predictors with varying slopes")
    pool.add_argument("--hyperprior", default="half_cauchy")
    pool.add_argument("--draws", type=int, default=1000)
    pool.add_argument("--plot", default="pooling.png", help="write the shrinkage plot here")
    pool.add_argument("--seed", type=int, default=None)
    pool.set_defaults(run=_pool)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # convergence warnings are printed once, after the tables, by report_fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS", UserWarning)
            args.run(args)
    except HierModelsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
