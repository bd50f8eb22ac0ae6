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
