"""The ``hiermodels`` command: ``demo`` and ``fit`` (see ``hiermodels --help``)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

import pandas as pd

from hiermodels import datasets
from hiermodels.errors import ConvergenceWarning, HierModelsError
from hiermodels.meta import meta_analysis
from hiermodels.models import fit_hierarchical

__all__ = ["main"]


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.round(3).to_string())


def report_fit(result, *, n_groups_shown: int = 5) -> None:
    """Print a fitted model's summary and its most / least shrunken groups."""
    _print_table("Population-level parameters (95% intervals):", result.summary())
    effects = result.group_effects()
    intercepts = effects[effects["term"] == "Intercept"].dropna(subset=["shrinkage"])
    columns = ["group", "n_obs", "no_pooling", "mean", "population", "shrinkage"]
    ranked = intercepts.sort_values("n_obs")[columns]
    _print_table(
        f"Varying intercepts, {n_groups_shown} groups with the fewest rows (shrunk most):",
        ranked.head(n_groups_shown).set_index("group"),
    )
    _print_table(
        f"... and the {n_groups_shown} with the most rows (shrunk least):",
        ranked.tail(n_groups_shown).set_index("group"),
    )
    for message in result.diagnostics:
        print(f"\nwarning: {message}")


def _demo(args) -> None:
    radon = datasets.load("radon")
    print(datasets.describe("radon"))
    print(
        "\nModel: log_radon ~ floor + (1 + floor | county), correlated varying intercepts and "
        "slopes, non-centered, half-Cauchy hyperpriors; sampling with nutpie "
        "(the first run compiles the model, ~30-60 s)..."
    )
    start = time.perf_counter()
    result = fit_hierarchical(
        radon,
        y="log_radon",
        group="county",
        predictors=["floor"],
        varying=["floor"],
        random_seed=args.seed,
        draws=args.draws,
    )
    print(f"done in {time.perf_counter() - start:.1f} s")
    report_fit(result)


def _fit(args) -> None:
    data = pd.read_csv(args.file)
    result = fit_hierarchical(
        data,
        y=args.y,
        group=args.group,
        predictors=args.predictors,
        varying=args.varying,
        parameterization=args.parameterization,
        hyperprior=args.hyperprior,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hiermodels", description="Hierarchical models and Bayesian meta-analysis."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the radon varying-intercepts-and-slopes model")
    demo.add_argument("--draws", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(run=_demo)

    fit = sub.add_parser("fit", help="fit a hierarchical regression to a CSV file")
    fit.add_argument("file")
    fit.add_argument("--y", required=True, help="outcome column")
    fit.add_argument("--group", required=True, help="grouping column")
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
