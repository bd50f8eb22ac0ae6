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
