import pytest

from hiermodels.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


def test_fit_command_prints_summary(mock_pymc_sample, tmp_path, capsys, radon):
    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    code = main(
        [
            "fit",
            str(path),
            "--y",
            "log_radon",
            "--group",
            "county",
            "--predictors",
            "floor",
            "--draws",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Population-level parameters" in out
    assert "Intercept|county_sigma" in out


def test_fit_command_takes_a_formula_with_crossed_factors(mock_pymc_sample, tmp_path, capsys):
    sleep = __import__("hiermodels").datasets.load("sleepstudy")
    sleep = sleep.assign(block=(sleep["days"] // 5).astype(str))
    path = tmp_path / "sleep.csv"
    sleep.to_csv(path, index=False)
    formula = "reaction ~ days + (1 | subject) + (1 | block)"
    code = main(["fit", str(path), "--formula", formula, "--draws", "20"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Intercept|subject_sigma" in out and "Intercept|block_sigma" in out
    assert "Varying intercepts by subject" in out and "Varying intercepts by block" in out


def test_bad_input_gives_message_not_traceback(tmp_path, capsys, radon):
    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    code = main(["fit", str(path), "--y", "radon", "--group", "county"])
    assert code == 1  # data the library rejects: 1; a wrong command line: 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "column(s) 'radon' not in the data" in err


def test_help_documents_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "1  the input cannot be used" in out and "2  the command line is wrong" in out


def test_meta_command_prints_tables_and_writes_plot(tmp_path, capsys):
    import hiermodels as hm

    path = tmp_path / "schools.csv"
    hm.datasets.load("eight_schools").to_csv(path, index=False)
    png = tmp_path / "forest.png"
    code = main(
        [
            "meta",
            str(path),
            "--estimate",
            "y",
            "--se",
            "sigma",
            "--study",
            "school",
            "--plot",
            str(png),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Heterogeneity:" in out and "REML" in out and "theta_new" in out
    assert png.stat().st_size > 10_000


def test_demo_compares_pooling_on_eight_schools(tmp_path, capsys):
    png = tmp_path / "schools.png"
    assert main(["demo", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "no pooling / complete pooling / partial pooling" in out
    assert "7.686" in out  # the complete-pooling estimate of BDA3 §5.5
    assert "Best out-of-sample prediction" in out
    assert f"shrinkage plot written to {png}" in out
    assert png.stat().st_size > 10_000


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_pool_command_row_level(mock_pymc_sample, tmp_path, capsys, radon):
    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    png = tmp_path / "pool.png"
    args = ["pool", str(path), "--y", "log_radon", "--group", "county", "--predictors", "floor"]
    assert main([*args, "--draws", "20", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "6 least and 6 most precise groups" in out
    assert "Out-of-sample comparison" in out
    assert png.exists()


def test_pool_command_needs_one_kind_of_data(tmp_path, capsys, radon):
    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    assert main(["pool", str(path), "--y", "log_radon"]) == 2
    assert "--y needs --group too" in capsys.readouterr().err
    assert main(["pool", str(path), "--y", "log_radon", "--group", "county", "--se", "x"]) == 2
    assert "not both" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("hiermodels ")


def test_fit_saves_and_writes_tables(mock_pymc_sample, tmp_path, capsys, radon):
    import json

    import pandas as pd

    import hiermodels as hm

    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    saved, out = tmp_path / "fit.nc", tmp_path / "radon.csv"
    code = main(
        ["fit", str(path), "--formula", "log_radon ~ floor + (1 | county)", "--draws", "20",
         "--tune", "0", "--chains", "1", "--sampler", "pymc", "--save", str(saved),
         "--out", str(tmp_path / "tables.json")]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    back = hm.load(saved)
    assert back.summary().index.tolist()[:2] == ["Intercept", "floor"]
    records = json.loads((tmp_path / "tables_summary.json").read_text())
    assert records[0]["parameter"] == "Intercept"
    effects = json.loads((tmp_path / "tables_group_effects.json").read_text())
    assert len(effects) == radon["county"].nunique()
    code = main(
        ["fit", str(path), "--formula", "log_radon ~ floor + (1 | county)", "--draws", "20",
         "--out", str(out.with_name("t.csv"))]
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(tmp_path / "t_summary.csv", index_col=0)
    assert "floor" in table.index and "mean" in table.columns
    # which engine ran is said (pm.sample replaced here: the full engine); one that does not
    # apply is a usage error, not a traceback
    assert "engine: full" in capsys.readouterr().out
    code = main(
        ["fit", str(path), "--formula", "log_radon ~ (1 | county) + (1 | floor)",
         "--draws", "20", "--engine", "marginal"]
    )  # fmt: skip
    assert code == 1 and "engine='marginal' does not apply" in capsys.readouterr().err


def test_meta_with_variances_and_from_counts(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    import hiermodels as hm

    bcg = hm.datasets.load("bcg")
    counts = tmp_path / "bcg.csv"
    bcg.to_csv(counts, index=False)
    code = main(
        ["meta", str(counts), "--measure", "RR", "--columns", "ai=tpos", "bi=tneg", "ci=cpos",
         "di=cneg", "--study", "trial", "--out", str(tmp_path / "bcg.csv")]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    het = pd.read_csv(tmp_path / "bcg_heterogeneity.csv", index_col=0)
    assert het.loc["REML", "tau2"] == pytest.approx(0.3132, abs=5e-5)  # metafor, dat.bcg
    # the same with variances given
    es = hm.effect_sizes(bcg, measure="RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    es.to_csv(tmp_path / "es.csv", index=False)
    code = main(
        ["meta", str(tmp_path / "es.csv"), "--estimate", "yi", "--vi", "vi", "--study",
         "trial", "--out", str(tmp_path / "vi.csv")]
    )  # fmt: skip
    assert code == 0
    het_vi = pd.read_csv(tmp_path / "vi_heterogeneity.csv", index_col=0)
    np.testing.assert_allclose(het_vi["tau2"], het["tau2"])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["meta", "x.csv", "--estimate", "y"], "exactly one of --se and --vi"),
        (["meta", "x.csv", "--estimate", "y", "--se", "s", "--vi", "v"], "exactly one"),
        (["meta", "x.csv", "--measure", "RR", "--columns", "ai"], "ARGUMENT=COLUMN"),
        (["meta", "x.csv", "--measure", "RR", "--estimate", "y"], "drop --estimate"),
        (["fit", "x.csv", "--y", "a", "--group", "g", "--save", "fit.txt"], "must end in .nc"),
        (["fit", "x.csv", "--y", "a", "--group", "g", "--out", "t.xlsx"], ".csv or .json"),
        (["fit", "x.csv", "--y", "a", "--group", "g", "--tune", "-1"], "--tune"),
        (["fit", "x.csv", "--y", "a", "--group", "g", "--sampler", "stan"], "--sampler"),
    ],
)
def test_new_options_refuse_bad_values_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_meta_save_round_trip(tmp_path, capsys):
    import pandas as pd

    import hiermodels as hm

    path = tmp_path / "schools.csv"
    hm.datasets.load("eight_schools").to_csv(path, index=False)
    saved = tmp_path / "schools.nc"
    args = ["meta", str(path), "--estimate", "y", "--se", "sigma", "--study", "school"]
    assert main([*args, "--save", str(saved)]) == 0, capsys.readouterr().err
    back = hm.load(saved)
    fresh = hm.meta_analysis(
        hm.datasets.load("eight_schools"), estimate="y", se="sigma", study="school"
    )
    pd.testing.assert_frame_equal(back.heterogeneity(), fresh.heterogeneity())
