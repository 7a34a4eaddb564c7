"""The yardsticks printed after training: gymnax's reference returns and a random policy's return."""

import json

import jax
import pytest

import neuroevo as ne
from neuroevo.rl import reference


def test_random_policy_returns_match_known_values():
    # CartPole: a random policy lasts about 22 steps; MountainCar never reaches the flag (-1 per step).
    cartpole = reference.random_return("CartPole-v1", 64, jax.random.key(0))
    assert 15.0 < cartpole < 30.0
    assert reference.random_return("MountainCar-v0", 4, jax.random.key(0), max_steps=50) == -50.0
    # Deterministic for a key; another key gives another sample.
    assert reference.random_return("CartPole-v1", 64, jax.random.key(0)) == cartpole


def test_reference_table_and_yardsticks():
    assert reference.reference_return("CartPole-v1") == 500.0
    assert reference.reference_return("Pendulum-v1") is None  # gymnax's README lists none
    assert set(reference.REFERENCE) <= set(ne.tasks.env_ids())
    sticks = reference.yardsticks("Pendulum-v1", 2, jax.random.key(1), max_steps=20)
    assert set(sticks) == {"random_return"} and sticks["random_return"] < 0


def test_train_reports_reference_and_random(tmp_path, capsys):
    from neuroevo import cli

    out = tmp_path / "run"
    args = ["train", "--env", "CartPole-v1", "--popsize", "8", "--generations", "2", "--hidden", "4"]
    assert cli.main([*args, "--eval-episodes", "2", "--quiet", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("final evaluation return:") and "(reference 500, random " in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference_return"] == 500.0 and summary["random_return"] == pytest.approx(
        reference.random_return("CartPole-v1", 2, jax.random.fold_in(ne.rl.config.run_keys(0)[2], 1))
    )
