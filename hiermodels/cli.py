"""The ``hiermodels`` command: ``demo``, ``fit``, ``meta``, ``pool`` (``hiermodels --help``).

A user error never shows a traceback: the command prints one line ``error: ...`` on stderr
saying what is wrong and how to fix it, and exits with

* 0 on success;
* 1 when the input cannot be used: the file is missing, unreadable, a directory, empty, binary
  or not valid CSV, or hiermodels rejects the data (a :class:`~hiermodels.errors.HierModelsError`:
  missing column, non-positive standard errors, ...); also when hiermodels itself fails
  (a bug: the line says so and how to report it; ``HIERMODELS_DEBUG=1`` shows the traceback);
* 2 when the command line is wrong: unknown subcommand or option, a bad option value
  (``--draws -5``, ``--chains 0``) or a ``--plot`` path that cannot be written. These are
  checked before anything is read or fitted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hiermodels import datasets
from hiermodels.errors import ConvergenceWarning, DataError, HierModelsError

__all__ = ["main"]

# entry point -> the module that defines it, imported when its subcommand first runs
# (PEP 562, as in the package root): `hiermodels meta` (exact) then starts without PyMC,
# ArviZ or matplotlib, in about a second
_ENTRY_POINTS = {
    "meta_analysis": "hiermodels.meta.api",
    "effect_sizes": "hiermodels.meta.effect_sizes",
    "fit_hierarchical": "hiermodels.models",
    "compare_pooling": "hiermodels.pooling.api",
}


def __getattr__(name: str):
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def _entry(name: str):
    """The entry point ``name`` of :data:`_ENTRY_POINTS`, imported on first use."""
    return getattr(sys.modules[__name__], name)


def _print_table(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.round(3).to_string())


def report_fit(result, *, n_groups_shown: int = 5) -> None:
    """Print a fitted model's summary and its most / least shrunken groups."""
    engine = result.idata["posterior"].attrs.get("engine")
    if engine is not None:
        print(f"engine: {engine}")
    _print_table("Population-level parameters (95% intervals):", result.summary())
    effects = result.group_effects()
    columns = ["group", "n_obs", "no_pooling", "mean", "population", "pooling_factor"]
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
    _print_table(
        "Pooling toward the population value (pooling_factor: 0 = keeps its own estimate, "
        "1 = pulled all the way):",
        shrink,
    )
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


# -- input and option checks: every user error becomes one line, never a traceback ---------


class UsageError(Exception):
    """The command line is wrong (exit code 2), found after argparse's own checks."""


def read_csv(path: str) -> pd.DataFrame:
    """Read the CSV file ``path``; a file that cannot be read raises :class:`DataError` saying
    why (missing, a directory, empty, binary, not UTF-8, not valid CSV)."""
    file = Path(path)
    if not file.exists():
        raise DataError(f"no such file: {path!r} (in {os.getcwd()}); check the file name")
    if file.is_dir():
        raise DataError(f"{path!r} is a directory; give the path of a CSV file")
    with open(file, "rb") as handle:  # an OSError (no permission) is reported by main
        start = handle.read(8192)
    if not start.strip():
        raise DataError(
            f"{path!r} is empty; give a CSV file with a header row and one row per observation"
        )
    if b"\0" in start:
        raise DataError(
            f"{path!r} is a binary file, not CSV text (an Excel or netCDF file?); "
            "export it as CSV (comma-separated, UTF-8)"
        )
    try:
        return pd.read_csv(file)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path!r} is not UTF-8 text (byte {error.object[error.start]:#04x} at position "
            f"{error.start}); save it as CSV with UTF-8 encoding"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(
            f"{path!r} is not valid CSV ({str(error).strip()}); check that every row has as "
            "many comma-separated fields as the header and that every quote is closed"
        ) from None


def _count(text: str) -> int:
    """argparse type of ``--draws`` and ``--chains``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seed(text: str) -> int:
    """argparse type of ``--seed``: a whole number >= 0 (numpy's seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _check_args(args) -> None:
    """Option checks argparse cannot do, made before any file is read or model fitted."""
    if args.command == "fit" and args.formula is None and (args.y is None or args.group is None):
        raise UsageError("hiermodels fit: give --formula, or both --y and --group")
    if args.command == "pool":
        kinds = {
            "study-level": ("--estimate", args.estimate, "--se", args.se),
            "row-level": ("--y", args.y, "--group", args.group),
        }
        given = [kind for kind, (_, a, _, b) in kinds.items() if a is not None or b is not None]
        if len(given) != 1:
            raise UsageError(
                "hiermodels pool: give either --estimate and --se (study-level: one estimate "
                "per study) or --y and --group (row-level: one row per observation)"
                + (", not both" if given else "")
            )
        first, a, second, b = kinds[given[0]]
        if a is None or b is None:
            have, need = (first, second) if b is None else (second, first)
            raise UsageError(f"hiermodels pool: {have} needs {need} too ({given[0]} data)")
    if args.command == "meta":
        given = [o for o, v in (("--se", args.se), ("--vi", args.vi)) if v is not None]
        if args.measure is None and len(given) != 1:
            raise UsageError(
                "hiermodels meta: give --estimate with exactly one of --se and --vi, or "
                "--measure with the count or summary columns (e.g. --measure RR "
                "--columns ai=tpos bi=tneg ci=cpos di=cneg)"
            )
        if args.measure is not None and (given or args.estimate):
            raise UsageError(
                "hiermodels meta: --measure computes the estimates; drop --estimate/--se/--vi"
            )
        if args.measure is None and not args.estimate:
            raise UsageError("hiermodels meta: --estimate is needed with --se or --vi")
        args.columns = _column_pairs(args.columns)
    if getattr(args, "plot", None):
        _check_plot(args.plot)
    for option in ("save", "out"):
        path = getattr(args, option, None)
        if path:
            _check_output(option, path)


def _check_plot(plot: str) -> None:
    # checked before fitting, so a bad path is not learned only after a long fit
    from hiermodels.results.fitfile import check_writable

    try:
        check_writable(plot, example="plot.png")
    except DataError as error:
        raise UsageError(f"--plot {plot}: {error}") from None
    suffix = Path(plot).suffix.lstrip(".").lower()
    if suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if suffix not in formats:
            raise UsageError(
                f"--plot {plot}: cannot write a .{suffix} file; end the name with one of "
                f"{', '.join('.' + f for f in sorted(formats))}"
            )


def _check_output(option: str, path: str) -> None:
    from hiermodels.results.fitfile import check_writable

    suffixes = {"save": (".nc",), "out": (".csv", ".json")}[option]
    if Path(path).suffix.lower() not in suffixes:
        raise UsageError(f"--{option} {path}: the file name must end in {' or '.join(suffixes)}")
    try:
        check_writable(path, example=f"results{suffixes[0]}")
    except DataError as error:
        raise UsageError(f"--{option} {path}: {error}") from None


def _column_pairs(pairs) -> dict[str, str]:
    """``["ai=tpos", "bi=tneg"]`` -> ``{"ai": "tpos", "bi": "tneg"}`` (metafor's names)."""
    out = {}
    for pair in pairs or ():
        name, sep, column = pair.partition("=")
        if not sep or not name or not column:
            raise UsageError(
                f"--columns {pair}: write each as ARGUMENT=COLUMN, e.g. ai=tpos (metafor's "
                "argument names: ai bi ci di n1i n2i m1i sd1i m2i sd2i ri ni xi mi ti x1i t1i "
                "x2i t2i)"
            )
        out[name] = column
    return out


def _write_tables(path: str | None, tables: dict[str, pd.DataFrame]) -> None:
    """With ``--out results.csv``: each printed table as ``results_<table>.csv`` (or .json,
    one record per row)."""
    if not path:
        return
    target = Path(path)
    for name, table in tables.items():
        file = target.with_name(f"{target.stem}_{name}{target.suffix}")
        if target.suffix.lower() == ".json":
            table.reset_index().to_json(file, orient="records", indent=1, default_handler=str)
        else:
            table.to_csv(file)
        print(f"{name} table written to {file}")


def _sampling(args) -> dict:
    """The sampling options every fitting subcommand takes."""
    return {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "random_seed": args.seed,
        "sampler": args.sampler,
    }


def _add_sampling_arguments(parser, *, what: str = "") -> None:
    parser.add_argument("--draws", type=_count, default=1000, help=f"draws per chain{what}")
    parser.add_argument("--tune", type=_tune, default=1000, help=f"tuning steps per chain{what}")
    parser.add_argument("--chains", type=_count, default=4)
    parser.add_argument(
        "--sampler",
        default=None,
        choices=["nutpie", "pymc", "numpyro", "blackjax"],
        help="NUTS implementation (default nutpie)",
    )
    parser.add_argument("--seed", type=_seed, default=None)


def _tune(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {value}")
    return value


def _demo(args) -> None:
    compare_pooling = _entry("compare_pooling")
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
    data = read_csv(args.file)  # first: a bad file is reported before the slow imports
    fit_hierarchical = _entry("fit_hierarchical")
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
        engine=args.engine,
        **_sampling(args),
    )
    report_fit(result)
    _write_tables(args.out, {"summary": result.summary(), "group_effects": result.group_effects()})
    if args.save:
        print(f"fit saved to {result.save(args.save)}")


def _meta(args) -> None:
    data = read_csv(args.file)  # first: a bad file is reported before the slow imports
    estimate, se, vi = args.estimate, args.se, args.vi
    if args.measure is not None:
        data = _entry("effect_sizes")(data, measure=args.measure, **args.columns)
        estimate, vi = "yi", "vi"
        print(f"effect sizes ({args.measure}) computed as columns yi, vi")
    meta_analysis = _entry("meta_analysis")
    meta = meta_analysis(
        data,
        estimate=estimate,
        se=se,
        vi=vi,
        study=args.study,
        moderators=args.moderators,
        hyperprior=args.hyperprior,
        method=args.method,
        **_sampling(args),
    )
    print(meta)
    tables = {
        "summary": meta.summary(),
        "heterogeneity": meta.heterogeneity(),
        "study_effects": meta.study_effects().set_index("study"),
    }
    _print_table("Posterior (95% intervals):", tables["summary"])
    _print_table("Heterogeneity:", tables["heterogeneity"].T)
    _print_table("Study effects:", tables["study_effects"])
    _write_tables(args.out, tables)
    if args.save:
        print(f"meta-analysis saved to {meta.save(args.save)}")
    if args.plot:
        meta.plot_forest(args.plot)
        print(f"\nforest plot written to {args.plot}")
    for message in meta.diagnostics:
        print(f"\nwarning: {message}")


def _pool(args) -> None:
    data = read_csv(args.file)  # first: a bad file is reported before the slow imports
    compare_pooling = _entry("compare_pooling")
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
        **_sampling(args),
    )
    print(comparison)
    report_pooling(comparison, plot=args.plot)
    _write_tables(
        args.out, {"estimates": comparison.estimates(), "comparison": comparison.compare()}
    )


EPILOG = """\
exit codes:
  0  success
  1  the input cannot be used: a missing, unreadable, empty, binary or malformed CSV
     file, or data hiermodels rejects (missing column, bad standard errors, ...);
     also an internal error in hiermodels (a bug; HIERMODELS_DEBUG=1 shows the traceback)
  2  the command line is wrong: unknown subcommand or option, a bad value
     (--draws -5, --chains 0), or a --plot path that cannot be written

Errors are one line on stderr, "error: ...", saying what to fix.
"""


_HELP = {"epilog": EPILOG, "formatter_class": argparse.RawDescriptionHelpFormatter}


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line ``error: ...`` on stderr (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hiermodels", description="Hierarchical models and Bayesian meta-analysis.", **_HELP
    )
    from hiermodels._version import __version__

    parser.add_argument("--version", action="version", version=f"hiermodels {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", **_HELP, help="no / complete / partial pooling on eight schools")
    demo.add_argument("--plot", default="eight_schools_pooling.png", help="shrinkage plot PNG")
    demo.add_argument("--seed", type=_seed, default=1)
    demo.set_defaults(run=_demo)

    fit = sub.add_parser("fit", **_HELP, help="fit a hierarchical regression to a CSV file")
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
    fit.add_argument(
        "--parameterization",
        default="auto",
        help="auto (from the data, per term), centered or noncentered",
    )
    fit.add_argument("--hyperprior", default="half_cauchy")
    fit.add_argument(
        "--engine",
        default="auto",
        choices=("auto", "full", "marginal"),
        help="auto (default): group effects integrated out exactly for a gaussian outcome "
        "with one or two nested grouping factors, else every group effect sampled (full)",
    )
    _add_sampling_arguments(fit)
    fit.add_argument("--save", default=None, help="save the fit to this .nc file (hm.load)")
    fit.add_argument("--out", default=None, help="write the tables to NAME_<table>.csv|.json")
    fit.set_defaults(run=_fit)

    meta = sub.add_parser("meta", **_HELP, help="random-effects meta-analysis of study estimates")
    meta.add_argument("file")
    meta.add_argument("--estimate", default=None, help="column of study estimates")
    meta.add_argument("--se", default=None, help="column of their standard errors")
    meta.add_argument("--vi", default=None, help="instead of --se: column of their variances")
    meta.add_argument(
        "--measure",
        default=None,
        help="compute the estimates from counts or summaries (metafor's escalc measures: "
        "RR, OR, RD, PETO, SMD, MD, ROM, COR, ZCOR, PR, PLO, IR, IRLN, IRR), with --columns",
    )
    meta.add_argument(
        "--columns",
        nargs="*",
        default=[],
        help="with --measure: ARGUMENT=COLUMN pairs in metafor's names, e.g. ai=tpos bi=tneg "
        "ci=cpos di=cneg",
    )
    meta.add_argument("--study", default=None, help="column of study labels")
    meta.add_argument("--moderators", nargs="*", default=[])
    meta.add_argument("--hyperprior", default="half_cauchy")
    meta.add_argument("--method", default="exact", choices=["exact", "mcmc"])
    _add_sampling_arguments(meta, what=" (mcmc)")
    meta.add_argument("--plot", default=None, help="write the forest plot to this PNG")
    meta.add_argument("--save", default=None, help="save the result to this .nc file")
    meta.add_argument("--out", default=None, help="write the tables to NAME_<table>.csv|.json")
    meta.set_defaults(run=_meta)

    pool = sub.add_parser(
        "pool",
        **_HELP,
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
    _add_sampling_arguments(pool, what=" (row-level)")
    pool.add_argument("--plot", default="pooling.png", help="write the shrinkage plot here")
    pool.add_argument("--out", default=None, help="write the tables to NAME_<table>.csv|.json")
    pool.set_defaults(run=_pool)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed
        return stop.code if isinstance(stop.code, int) else 0
    try:
        _check_args(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    debug = os.environ.get("HIERMODELS_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            # convergence warnings are printed once, after the tables, by report_fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)
    except Exception as error:
        if debug:
            traceback.print_exc()
        print(f"error: {_message(error)}", file=sys.stderr)
        return 1
    return 0


def _message(error: Exception) -> str:
    """The one line for an error while running a command (exit code 1)."""
    if isinstance(error, HierModelsError):
        return str(error)
    if isinstance(error, OSError):  # a file unreadable (permissions) or unwritable (disk full)
        where = f": {error.filename!r}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return (
        f"internal error ({type(error).__name__}: {error}); this is a bug in hiermodels, not "
        "in your input: please report it with the command you ran; rerun with "
        "HIERMODELS_DEBUG=1 for the traceback"
    )


if __name__ == "__main__":
    sys.exit(main())
