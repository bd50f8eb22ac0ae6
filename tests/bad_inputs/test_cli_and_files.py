"""Bad files and bad command lines: a one-line message that names the cause, never a traceback.

Two tables. ``CASES``: saving to a bad path and loading a damaged or edited fit file give a
:class:`hiermodels.DataError` (or :class:`SpecError`) naming the file and the field. ``RUNS``:
the ``hiermodels`` command on bad input prints ``error: ...`` and exits 1 (the input cannot be
used) or 2 (the command line is wrong).
"""

import contextlib
import json
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pymc.testing import mock_sample_setup_and_teardown

import hiermodels as hm
from hiermodels import cli

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")

# -- a saved fit, and copies of it damaged one field at a time ------------------------------

_STORE = {}  # "dir": where the files go, "fit": the saved fit, "result": the fitted result


@pytest.fixture(scope="module", autouse=True)
def saved_fit(tmp_path_factory):
    """One small fit (mocked sampler: prior draws, in a second) saved to a netCDF file."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.normal(size=24), "g": np.repeat(list("abcd"), 6)})
    with contextlib.contextmanager(mock_sample_setup_and_teardown)():
        result = hm.fit_hierarchical(data, y="y", group="g", draws=10)
    folder = tmp_path_factory.mktemp("fits")
    _STORE.update(dir=folder, result=result, fit=result.save(folder / "fit.nc"))
    yield
    _STORE.clear()


def _edited_copy(name, edit):
    """A copy of the saved fit, ``edit(tree)`` applied, written to ``<name>.nc``."""
    with xr.open_datatree(_STORE["fit"]) as opened:
        tree = opened.load()
    edit(tree)
    path = _STORE["dir"] / f"{name}.nc"
    tree.to_netcdf(path)
    return path


def _edit_json(attr, change):
    """An edit: ``change(value)`` on the JSON stored in attribute ``attr``."""

    def edit(tree):
        value = json.loads(tree.attrs[attr])
        change(value)
        tree.attrs = {**tree.attrs, attr: json.dumps(value)}

    return edit


def _set_attrs(**changes):
    """An edit: set (or, for None, delete) root attributes."""

    def edit(tree):
        attrs = {**tree.attrs, **changes}
        tree.attrs = {k: v for k, v in attrs.items() if v is not None}

    return edit


def _edit_group(group, change):
    """An edit: replace group ``group`` by ``change(its dataset)``."""

    def edit(tree):
        tree[group] = xr.DataTree(change(tree[group].to_dataset()))

    return edit


def _drop_posterior(tree):
    del tree["posterior"]


def _factor(change):
    return _edit_json("hiermodels_encoding", lambda e: change(e["factors"][0]))


Case = namedtuple("Case", "id frame call error words")
# frame: zero-arg callable returning the DataFrame given to call (or None); call: callable(frame);
# error: a HierModelsError subclass; words: strings the message must contain (case-insensitive)


def edited(name, edit, *words, error=hm.DataError):
    """A row: loading the fit with ``edit`` applied fails naming the file and ``words``."""
    return Case(
        name, None, lambda _: hm.load(_edited_copy(name, edit)), error, (f"{name}.nc", *words)
    )


def _save(where):
    return lambda _: _STORE["result"].save(where())


def _garbage():
    path = _STORE["dir"] / "garbage.nc"
    path.write_bytes(b"not a netcdf file at all")
    return path


def _foreign():
    path = _STORE["dir"] / "foreign.nc"
    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(path)
    return path


CASES = [
    # saving: the real reason, not the netCDF library's "Permission denied"
    Case(
        "save_dir_missing",
        None,
        _save(lambda: _STORE["dir"] / "no_such_dir" / "fit.nc"),
        hm.DataError,
        ("no_such_dir", "does not exist", "mkdir"),
    ),
    Case(
        "save_to_a_directory",
        None,
        _save(lambda: _STORE["dir"]),
        hm.DataError,
        ("is a directory", "give a file name"),
    ),
    Case(
        "save_under_a_file",
        None,
        _save(lambda: _STORE["fit"] / "fit.nc"),
        hm.DataError,
        ("fit.nc", "is a file, not a directory"),
    ),
    # loading: not a fit at all
    Case(
        "load_missing_file",
        None,
        lambda _: hm.load(_STORE["dir"] / "nothing.nc"),
        hm.DataError,
        ("no such file", "nothing.nc"),
    ),
    Case(
        "load_a_directory",
        None,
        lambda _: hm.load(_STORE["dir"]),
        hm.DataError,
        ("is a directory", "result.save"),
    ),
    Case(
        "load_garbage",
        None,
        lambda _: hm.load(_garbage()),
        hm.DataError,
        ("garbage.nc", "not a readable netcdf file"),
    ),
    Case(
        "load_foreign_netcdf",
        None,
        lambda _: hm.load(_foreign()),
        hm.DataError,
        ("foreign.nc", "not a hiermodels fit"),
    ),
    # loading a fit damaged or edited one field at a time: the file and the field are named
    edited(
        "newer_format",
        _set_attrs(hiermodels_format_version=99, hiermodels_version="9.0.0"),
        "file format 99",
        "9.0.0",
        error=hm.SpecError,
    ),
    edited(
        "version_not_a_number",
        _set_attrs(hiermodels_format_version="two"),
        "hiermodels_format_version",
        "integer",
    ),
    edited(
        "priors_attribute_deleted",
        _set_attrs(hiermodels_priors=None),
        "attribute 'hiermodels_priors'",
        "missing",
    ),
    edited(
        "spec_not_json",
        _set_attrs(hiermodels_spec="{not json"),
        "hiermodels_spec",
        "not valid json",
    ),
    edited(
        "spec_field_removed",
        _edit_json("hiermodels_spec", lambda s: s.pop("family")),
        "hiermodels_spec.family",
        "missing",
    ),
    edited(
        "spec_field_wrong_type",
        _edit_json("hiermodels_spec", lambda s: s.update(lkj_eta="two")),
        "hiermodels_spec.lkj_eta",
        "number",
    ),
    edited(
        "spec_group_field_removed",
        _edit_json("hiermodels_spec", lambda s: s["groups"][0].pop("columns")),
        "hiermodels_spec.groups[0].columns",
        "missing",
    ),
    edited(
        "spec_family_unknown",
        _edit_json("hiermodels_spec", lambda s: s.update(family="gaussiann")),
        "damaged",
        "unknown family 'gaussiann'",
    ),
    edited(
        "spec_groups_renamed",
        _edit_json("hiermodels_spec", lambda s: s["groups"][0].update(name="h")),
        "hiermodels_spec.groups",
        "hiermodels_encoding.factors",
    ),
    edited(
        "levels_missing",
        _factor(lambda f: f.pop("levels")),
        "hiermodels_encoding.factors[0].levels",
        "missing",
    ),
    edited(
        "levels_too_few",
        _factor(lambda f: f.update(levels=["a", "b"])),
        "factors[0].levels",
        "group_idx",
    ),
    edited(
        "levels_too_many",
        _factor(lambda f: f.update(levels=["a", "b", "c", "d", "e"])),
        "factors[0].levels",
        "posterior has 4",
    ),
    edited(
        "level_not_a_string",
        _factor(lambda f: f["levels"].__setitem__(1, 7)),
        "factors[0].levels[1]",
        "string",
    ),
    edited(
        "row_labels_wrong_length",
        _edit_json("hiermodels_encoding", lambda e: e.update(row_labels=["0"])),
        "hiermodels_encoding.row_labels",
        "24 rows",
    ),
    edited(
        "prior_family_unknown",
        _edit_json("hiermodels_priors", lambda p: p["sigma"]["prior"].update(family="Weird")),
        "hiermodels_priors.sigma.prior.family",
        "'weird'",
    ),
    edited(
        "prior_parameter_edited",
        _edit_json("hiermodels_priors", lambda p: p["sigma"]["prior"].update(scale="big")),
        "hiermodels_priors.sigma.prior.scale",
        "number",
    ),
    edited(
        "group_idx_wrong_shape",
        _edit_group(
            "hiermodels_data",
            lambda d: d.drop_vars("group_idx").assign(group_idx=("obs", np.zeros(24, int))),
        ),
        "hiermodels_data/group_idx",
        "dims",
    ),
    edited(
        "design_removed",
        _edit_group("hiermodels_data", lambda d: d.drop_vars("X")),
        "hiermodels_data/x",
        "missing",
    ),
    edited("posterior_group_missing", _drop_posterior, "group 'posterior'", "missing"),
    edited(
        "posterior_variable_removed",
        _edit_group("posterior", lambda d: d.drop_vars("sigma")),
        "posterior/sigma",
        "missing",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, bad_input):
    bad_input(case)


def test_the_saved_fit_itself_loads():
    # the damaged copies above fail for their edit, not for something wrong with the original
    back = hm.load(_STORE["fit"])
    pd.testing.assert_frame_equal(back.summary(), _STORE["result"].summary())


# -- the command line -------------------------------------------------------------------------


def _write(tmp, name, content):
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _schools(tmp, **changes):
    data = hm.datasets.load("eight_schools").assign(**changes)
    path = tmp / "schools.csv"
    data.to_csv(path, index=False)
    return str(path)


def _meta(tmp, *extra, **changes):
    return ["meta", _schools(tmp, **changes), "--estimate", "y", "--se", "sigma", *extra]


def _fit(file):
    return ["fit", file, "--y", "y", "--group", "g"]


def _break_meta(tmp, monkeypatch):
    """A bug inside hiermodels, simulated: the library raises a plain Python error."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(cli, "meta_analysis", broken)
    return _meta(tmp)


def _unwritable_plot(tmp, monkeypatch):
    # the plot path is checked before fitting: the fit must not even start
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the plot path")

    monkeypatch.setattr(cli, "compare_pooling", no_fit)
    return ["pool", _schools(tmp), "--estimate", "y", "--se", "sigma", "--plot", str(tmp)]


Run = namedtuple("Run", "id argv code words")
# argv: callable(tmp_path, monkeypatch) -> the command line; code: the exit code;
# words: strings stderr must contain (case-insensitive)
RUNS = [
    Run("missing_file", lambda t, m: _fit(str(t / "nothing.csv")), 1, ["no such file"]),
    Run("empty_file", lambda t, m: _fit(_write(t, "e.csv", "")), 1, ["e.csv", "is empty"]),
    Run("blank_file", lambda t, m: _fit(_write(t, "b.csv", "\n \n")), 1, ["is empty"]),
    Run(
        "binary_file",
        lambda t, m: _fit(_write(t, "x.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")),
        1,
        ["binary", "export it as csv"],
    ),
    Run(
        "not_utf8",
        lambda t, m: _fit(_write(t, "l.csv", b"caf\xe9,g\n1,a\n")),
        1,
        ["not utf-8", "0xe9"],
    ),
    Run("directory", lambda t, m: _fit(str(t)), 1, ["is a directory"]),
    Run(
        "bad_csv",
        lambda t, m: _fit(_write(t, "q.csv", 'y,g\n1,"a\n2,b\n')),
        1,
        ["not valid csv", "quote"],
    ),
    Run(
        "missing_column",
        lambda t, m: _fit(_write(t, "ok.csv", "y,h\n1,a\n2,b\n")),
        1,
        ["'g'", "not in the data"],
    ),
    Run("no_rows", lambda t, m: _fit(_write(t, "h.csv", "y,g\n")), 1, ["empty"]),
    Run(
        "meta_se_not_numeric",
        lambda t, m: _meta(t, sigma=["a", *range(1, 8)]),
        1,
        ["'sigma'", "not numeric"],
    ),
    Run(
        "meta_se_not_positive",
        lambda t, m: _meta(t, sigma=[0.0, *range(1, 8)]),
        1,
        ["'sigma'", "positive"],
    ),
    Run(
        "meta_unknown_column",
        lambda t, m: ["meta", _schools(t), "--estimate", "y", "--se", "se"],
        1,
        ["'se'"],
    ),
    Run(
        "negative_draws",
        lambda t, m: [*_fit(_schools(t)), "--draws", "-5"],
        2,
        ["--draws", "at least 1", "-5"],
    ),
    Run("zero_chains", lambda t, m: [*_fit(_schools(t)), "--chains", "0"], 2, ["--chains"]),
    Run(
        "draws_not_a_number",
        lambda t, m: [*_fit(_schools(t)), "--draws", "many"],
        2,
        ["--draws", "'many'", "whole number"],
    ),
    Run("negative_seed", lambda t, m: _meta(t, "--seed", "-1"), 2, ["--seed", "0 or more"]),
    Run("plot_is_a_directory", _unwritable_plot, 2, ["--plot", "is a directory"]),
    Run(
        "plot_dir_missing",
        lambda t, m: _meta(t, "--plot", str(t / "nodir" / "f.png")),
        2,
        ["nodir", "does not exist"],
    ),
    Run(
        "plot_under_a_file",
        lambda t, m: _meta(t, "--plot", str(t / "schools.csv" / "f.png")),
        2,
        ["not a directory"],
    ),
    Run(
        "plot_unknown_format",
        lambda t, m: _meta(t, "--plot", str(t / "f.docx")),
        2,
        [".docx", ".png"],
    ),
    Run("unknown_subcommand", lambda t, m: ["frobnicate"], 2, ["invalid choice", "'fit'"]),
    Run("no_subcommand", lambda t, m: [], 2, ["required", "--help"]),
    Run("unknown_option", lambda t, m: [*_meta(t), "--colour"], 2, ["--colour"]),
    Run(
        "fit_without_group",
        lambda t, m: ["fit", _schools(t), "--y", "y"],
        2,
        ["--formula", "--group"],
    ),
    Run(
        "pool_half_study_level",
        lambda t, m: ["pool", _schools(t), "--estimate", "y"],
        2,
        ["--estimate needs --se"],
    ),
    Run(
        "pool_both_kinds",
        lambda t, m: ["pool", _schools(t), "--estimate", "y", "--se", "sigma", "--y", "y"],
        2,
        ["not both"],
    ),
    Run(
        "internal_error",
        _break_meta,
        1,
        ["bug in hiermodels", "report", "HIERMODELS_DEBUG=1", "ZeroDivisionError"],
    ),
]


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
def test_cli_bad_input(run, tmp_path, monkeypatch, capsys, mock_pymc_sample):
    monkeypatch.delenv("HIERMODELS_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)  # a default plot or a stray file lands in tmp_path
    argv = run.argv(tmp_path, monkeypatch)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == run.code, err
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith("error: ") and err.count("\n") == 1, err
    missing = [w for w in run.words if w.lower() not in err.lower()]
    assert not missing, f"stderr lacks {missing}: {err}"


def test_debug_env_shows_the_traceback(tmp_path, monkeypatch, capsys):
    argv = _break_meta(tmp_path, monkeypatch)
    monkeypatch.setenv("HIERMODELS_DEBUG", "1")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: simulated bug" in err
    assert err.rstrip().splitlines()[-1].startswith("error: internal error")


def test_a_write_that_fails_late_is_one_line(tmp_path, monkeypatch, capsys):
    # the path passed the check, then the disk filled up while the plot was written
    def disk_full(self, path=None, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(hm.MetaAnalysisResult, "plot_forest", disk_full)
    monkeypatch.delenv("HIERMODELS_DEBUG", raising=False)
    assert cli.main(_meta(tmp_path, "--plot", str(tmp_path / "f.png"))) == 1
    err = capsys.readouterr().err
    assert err == f"error: No space left on device: {str(tmp_path / 'f.png')!r}\n"
