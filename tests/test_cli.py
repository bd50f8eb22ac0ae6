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


def test_bad_input_gives_message_not_traceback(tmp_path, capsys, radon):
    path = tmp_path / "radon.csv"
    radon.to_csv(path, index=False)
    code = main(["fit", str(path), "--y", "radon", "--group", "county"])
    assert code == 2
    assert "column(s) 'radon' not in the data" in capsys.readouterr().err


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
