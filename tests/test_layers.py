"""The package's imports run down the flow only (STYLE.md, Layers; issue 12).

Every module of ``hiermodels`` has a place in FLOW, lowest first: it may import only modules
placed before it, so there is no import that runs back up and no circle. A new module must be
given its place here. Function-level imports count too (a lazy import is still an arrow).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hiermodels"

FLOW = [
    # names and errors every stage shares
    "_version",
    "_blas",
    "errors",
    "names",
    # packages whose __init__ only documents them (importing a submodule passes through it)
    "builders",
    "engines",
    "results",
    "meta",
    "pooling",
    # pure numerics: numpy and scipy only
    "numerics",
    "numerics.diagnostics",
    "numerics.linear",
    "numerics.unrolled",
    "numerics.pooling",
    "numerics.effect_sizes",
    "numerics.heterogeneity",
    "numerics.estimators",
    "numerics.inference",
    "numerics.influence",
    "numerics.tau_marginal",
    "numerics.tau_quadrature",
    "numerics.exact",
    "numerics.bias",
    "numerics.pet_peese",
    "numerics.bayes_extras",
    "numerics.multilevel",
    "numerics.multilevel_exact",
    "numerics.robust",
    "numerics.sbc",
    # what the user can ask for (no PyMC)
    "progress",
    "sampling",
    "frames",
    "priors",
    "families",
    "formula",
    "datasets",
    "plots",
    "plots_meta",
    "plots_scatter",
    "plots_posterior",
    "spec",
    "meta.spec",
    # validated, encoded data and the priors resolved from it (no PyMC)
    "columns",
    "data",
    "defaults",
    "parameterization",
    "lazy_partitions",  # what dask workers run on each partition (numpy and pandas)
    "lazy",  # a dask DataFrame's sums for the marginal engine (no PyMC)
    "meta.data",
    "meta.effect_sizes",
    # builders: the only place that creates PyMC variables
    "builders.effects",
    "builders.likelihoods",
    "builders.hierarchical",
    "builders.marginal_stats",  # the sums and the likelihood on them (numpy or PyTensor)
    "builders.marginal",
    "builders.marginal_nested",
    "meta.builder",
    "meta.multilevel_builder",
    # engines: the only place that samples or integrates
    "engines.nutpie_support",  # importing nutpie, its start points, side functions without C
    "engines.diskcache",  # nutpie's compiled callbacks on disk, under engines.compiled
    "engines.compiled",
    "engines.mcmc",  # samples through engines.compiled (nutpie, compiled models reused)
    "engines.marginal",
    "meta.engines",
    "meta.multilevel_engines",
    "meta.mcmc",
    "meta.multilevel_mcmc",
    # results
    "results.draws",
    "results.idata",
    "results.prediction",
    "results.fitfile",
    "results.loo",
    "results.hierarchical",
    "meta.inference",
    "meta.sensitivity",
    "meta.subgroups",
    "meta.bias",
    "meta.bayes",
    "meta.figures",
    "meta.fitfile",
    "meta.tables",
    "meta.result",
    "meta.multilevel",
    # entry points
    "meta.multilevel_api",
    "meta.api",
    "lazy_fit",  # fit a dask DataFrame from its sums (issue 17)
    "models",
    "files",
    "pooling.comparison",
    "pooling.studies",
    "pooling.rows",
    "pooling.api",
    "comparison",
    "calibration_tasks",  # hm.calibrate's refits and where they run
    "calibration",
    "cli",
    "",  # the package root
]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(name, path):
    """The hiermodels modules that ``name`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
                targets = [f"hiermodels.{module}".rstrip(".")]
            else:
                targets = [node.module]
            # "from hiermodels.x import y" may name a submodule y; "from hiermodels import y"
            # imports y, not the package root
            submodules = [f"{targets[0]}.{a.name}" for a in node.names]
            targets = submodules if targets[0] == "hiermodels" else [*targets, *submodules]
        else:
            continue
        for target in targets:
            if target and (target == "hiermodels" or target.startswith("hiermodels.")):
                module = target.removeprefix("hiermodels").lstrip(".")
                if module in FLOW:
                    found.add(module)
    found.discard(name)
    return found


def test_every_module_has_a_place_in_the_flow():
    missing = [name for name, _ in _modules() if name not in FLOW]
    assert not missing, f"give these modules a place in FLOW: {missing}"


def test_imports_run_down_the_flow_only():
    back = []
    for name, path in _modules():
        for target in _imports(name, path):
            if FLOW.index(target) > FLOW.index(name):
                back.append(f"{name or 'hiermodels'} imports {target}, which is above it")
    assert not back, "\n".join(back)


def test_the_check_can_fail(tmp_path):
    """The walker sees a function-level import (so the test above can fail)."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from hiermodels.cli import main\n")
    assert _imports("data", path) == {"cli"}


@pytest.mark.parametrize(
    "module",
    [
        "hiermodels",
        "hiermodels.numerics.exact",
        "hiermodels.meta.engines",
        "hiermodels.meta.multilevel_api",
        "hiermodels.data",
    ],
)
def test_lower_layers_import_without_pymc_or_matplotlib(module):
    code = (
        f"import sys, {module}; "
        "heavy = [m for m in ('pymc', 'pytensor', 'matplotlib', 'arviz') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"
