"""The command line: outputs, final line, and errors before any compile."""

import json

import pytest

from neuroevo import cli


def test_train_writes_config_metrics_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(
        [
            "train",
            "--generations",
            "3",
            "--popsize",
            "16",
            "--max-steps",
            "50",
            "--hidden",
            "8",
            "--eval-episodes",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--hp",
            "sigma=0.1",
        ]
    )
    assert rc == 0
    assert "final evaluation return:" in capsys.readouterr().out.strip().splitlines()[-1]
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == "CartPole-v1" and config["strategy"] == "openai_es"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert {"best", "mean", "return", "env_steps"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 3 and 0 < summary["final_eval_return"] <= 50


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "Nope-v0"], "unknown gymnax env id 'Nope-v0'"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--hp", "sigmaa=1"], "unknown hyperparameter"),
    ],
)
def test_bad_names_are_reported(args, message, capsys):
    assert cli.main(["train", "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


def test_strategies_lists_the_registry(capsys):
    cli.main(["strategies"])
    out = capsys.readouterr().out
    assert "openai_es:" in out and "ga:" in out
