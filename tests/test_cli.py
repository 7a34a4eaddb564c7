"""The training tool: outputs, config files, evaluation, resume after SIGKILL, and errors."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from neuroevo import cli, rl

TINY = ["--popsize", "16", "--max-steps", "40", "--hidden", "8", "--eval-episodes", "2", "--quiet"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_train_writes_every_output_and_eval_reproduces_it(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["train", "--generations", "3", *TINY, "--out", str(out), "--hp", "sigma=0.1"])
    assert rc == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("final evaluation return:")
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == "CartPole-v1" and config["hp"] == {"sigma": 0.1} and config["hidden"] == [8]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert {"best", "mean", "return", "env_steps", "env_steps_total"} <= set(rows[0])
    # env_steps is the generation's total over the population (16 members, <= 40 steps each).
    assert 16 <= rows[0]["env_steps"] <= 16 * 40
    assert rows[-1]["env_steps_total"] == sum(r["env_steps"] for r in rows)
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].split(",")[0] == "generation" and len(csv_lines) == 4
    assert read(out / "learning_curve.png")[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 3 and 0 < summary["final_eval_return"] <= 40
    assert summary["env_steps"] == rows[-1]["env_steps_total"]
    # `neuroevo eval` with the run's defaults reproduces the summary, for both policies.
    assert rl.evaluate_run(str(out)) == pytest.approx(summary["final_eval_return"])
    assert rl.evaluate_run(str(out), which="best") == pytest.approx(summary["best_eval_return"])
    gif = tmp_path / "rollout.gif"
    assert cli.main(["eval", str(out), "--episodes", "3", "--gif", str(gif)]) == 0
    assert read(gif)[:6] == b"GIF89a"
    # A second train into the same directory would mix two runs: refused.
    assert cli.main(["train", "--generations", "1", *TINY, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_config_files_and_precedence(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('env = "Acrobot-v1"\npopsize = 8\nhidden = [4]\n[hp]\nsigma = 0.3\n')
    config = rl.resolve(str(toml), popsize=12, hp={"learning_rate": 0.1})
    assert config["env"] == "Acrobot-v1" and config["popsize"] == 12 and config["hidden"] == (4,)
    assert config["hp"] == {"sigma": 0.3, "learning_rate": 0.1}
    yaml = tmp_path / "run.yaml"
    yaml.write_text("env: Pendulum-v1\nnormalize_obs: true\nhidden: 16,16\n")
    config = rl.resolve(str(yaml))
    assert config["normalize_obs"] is True and config["hidden"] == (16, 16)
    bad = tmp_path / "bad.toml"
    bad.write_text("popsise = 8\n")
    with pytest.raises(ValueError, match="unknown config key 'popsise'; valid keys: env, strategy, popsize"):
        rl.resolve(str(bad))
    # A preset turns normalisation on for Pendulum; a flag turns it off again.
    parsed = cli.build_parser().parse_args(["train", "--env", "Pendulum-v1", "--no-normalize-obs"])
    assert rl.resolve(None, env="Pendulum-v1")["normalize_obs"] is True
    assert rl.resolve(None, **cli._overrides(parsed))["normalize_obs"] is False
    with pytest.raises(ValueError, match="'popsize' must be int"):
        rl.resolve(None, popsize="many")
    with pytest.raises(ValueError, match="config file .*missing.toml' does not exist"):
        rl.resolve(str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="unknown format '.ini'"):
        rl.resolve(str(tmp_path / "run.ini"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "Nope-v0"], "unknown gymnax env id 'Nope-v0'"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--hp", "sigmaa=1"], "unknown hyperparameter"),
        (["--network", "cnn"], "network 'cnn' needs image observations (H, W, C); CartPole-v1"),
        (["--resume", "/nonexistent/run"], "/nonexistent/run is not a run directory"),
        (["--resume", "/x", "--popsize", "8"], "only --generations may change, got --popsize"),
    ],
)
def test_bad_input_is_reported_before_compiling(args, message, capsys, tmp_path):
    assert cli.main(["train", "--quiet", "--out", str(tmp_path / "r"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_strategies_lists_the_registry(capsys):
    cli.main(["strategies"])
    out = capsys.readouterr().out
    assert "openai_es:" in out and "ga:" in out


def _start_and_stop(args, out, sig):
    """Start a training run in a subprocess and send it ``sig`` once its second checkpoint exists."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuroevo.cli", *args, "--out", str(out)], env=env, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while not (out / "checkpoints" / "6").is_dir():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate()
    assert not (out / "summary.json").exists(), "the run finished before it was stopped"
    return proc.returncode, err.decode()


def test_resume_after_sigkill_or_ctrl_c_is_bit_for_bit(tmp_path):
    """Stop a run (SIGKILL or Ctrl-C) after a checkpoint, resume it: the files of an uninterrupted run."""
    args = ["train", "--generations", "30", "--checkpoint-every", "3", "--seed", "3", *TINY]
    args += ["--normalize-obs"]  # the task state (observation statistics) must resume too
    whole = tmp_path / "whole"
    assert cli.main([*args, "--out", str(whole)]) == 0

    killed, interrupted = tmp_path / "killed", tmp_path / "interrupted"
    rc, _ = _start_and_stop(args, killed, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    rc, err = _start_and_stop(args, interrupted, signal.SIGINT)
    assert rc == 130 and f"neuroevo train --resume {interrupted}" in err
    for run in (killed, interrupted):
        assert cli.main(["train", "--resume", str(run), "--quiet"]) == 0
        names = [
            "final_params.msgpack",
            "best_params.msgpack",
            "metrics.jsonl",
            "metrics.csv",
            "obs_stats.json",
        ]
        for name in names:
            assert read(run / name) == read(whole / name), (run.name, name)
        a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, run))
        for key in ("final_eval_return", "best_eval_return", "generations", "env_steps", "best_fitness"):
            assert a[key] == b[key], (run.name, key)
