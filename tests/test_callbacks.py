"""Loggers (ne.callbacks, --log): every history metric per generation, read back from the
TensorBoard event files and the offline wandb run files; a resumed run logs each generation once."""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import cli
from neuroevo.engine import callbacks as loggers

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

GENERATIONS = 8


def problem():
    task = ne.tasks.function(ne.tasks.sphere)
    return ne.strategies.make("openai_es", popsize=8, sigma=0.1), task, jnp.ones(3)


class Killed(Exception):
    pass


def kill_after(generation):
    def callback(done, state, metrics):
        if done >= generation:
            raise Killed

    return callback


@functools.cache
def uninterrupted_history():
    strategy, task, x0 = problem()
    return ne.evolve(jax.random.key(0), strategy, task, x0, GENERATIONS, log_every=2)[1]


def interrupted_then_resumed(tmp_path, make_logger):
    """Gens 1-6 logged, the checkpoint at 4, killed; resumed to 8 with a new logger."""
    strategy, task, x0 = problem()
    kwargs = dict(log_every=2, checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=4)
    first = make_logger(resume=False)
    with pytest.raises(Killed):
        ne.evolve(
            jax.random.key(0), strategy, task, x0, GENERATIONS, callbacks=[first, kill_after(6)], **kwargs
        )
    first.close()
    with make_logger(resume=True) as second:
        _, history = ne.evolve(
            jax.random.key(0), strategy, task, x0, GENERATIONS, callbacks=[second], **kwargs
        )
    return history


def assert_logged_once(scalars, history):
    """``scalars``: {metric: [(step, value), ...]} as written on disk."""
    assert set(scalars) == set(history)
    for name, values in history.items():
        steps = [step for step, _ in scalars[name]]
        assert steps == list(range(1, GENERATIONS + 1)), name
        np.testing.assert_array_equal(np.float32([v for _, v in scalars[name]]), values, err_msg=name)


def test_tensorboard_logs_every_metric_per_generation(tmp_path):
    strategy, task, x0 = problem()
    with ne.callbacks.TensorBoard(tmp_path / "tb") as tb:
        _, history = ne.evolve(
            jax.random.key(0), strategy, task, x0, GENERATIONS, log_every=3, callbacks=[tb]
        )
    assert {"best", "generation_best", "mean", "value"} <= set(history)
    assert_logged_once(loggers.tensorboard_scalars(tmp_path / "tb", purge=False), history)


def test_tensorboard_resume_writes_no_step_twice(tmp_path):
    history = interrupted_then_resumed(tmp_path, lambda resume: ne.callbacks.TensorBoard(tmp_path / "tb"))
    np.testing.assert_array_equal(history["best"], uninterrupted_history()["best"])
    # On disk (no purging by the reader): each generation once, the uninterrupted run's values.
    assert_logged_once(loggers.tensorboard_scalars(tmp_path / "tb", purge=False), uninterrupted_history())


def test_tensorboard_fresh_run_in_an_old_logdir_hides_the_old_run(tmp_path):
    for offset in (0.0, 10.0):  # two runs of 4 generations, in blocks of 2, into one logdir
        with ne.callbacks.TensorBoard(tmp_path / "tb") as tb:
            for done in (2, 4):
                tb(done, None, {"mean": np.float32([done - 1, done]) + offset})
    shown = loggers.tensorboard_scalars(tmp_path / "tb")  # as TensorBoard shows it
    assert shown["mean"] == [(1, 11.0), (2, 12.0), (3, 13.0), (4, 14.0)]
    assert len(loggers.tensorboard_scalars(tmp_path / "tb", purge=False)["mean"]) == 8


def test_wandb_offline_logs_every_metric_and_resumes_without_duplicates(tmp_path):
    def make(resume):
        return ne.callbacks.WandB("neuroevo-test", dir=str(tmp_path), resume=resume, config={"sigma": 0.1})

    interrupted_then_resumed(tmp_path, make)
    run_dirs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2 and len({d.name.rsplit("-", 1)[1] for d in run_dirs}) == 1  # one id
    rows = loggers.wandb_history(str(tmp_path))
    scalars = {}
    for row in rows:
        for name, value in row.items():
            if not name.startswith("_"):
                scalars.setdefault(name, []).append((row["_step"], value))
    assert_logged_once(scalars, uninterrupted_history())


def test_train_and_resume_log_under_the_run_directory(tmp_path):
    out = tmp_path / "run"
    tiny = ["--popsize", "8", "--max-steps", "20", "--hidden", "4", "--eval-episodes", "1", "--quiet"]
    common = [*tiny, "--log-every", "2", "--checkpoint-every", "2"]
    assert (
        cli.main(["train", "--generations", "4", *common, "--out", str(out), "--log", "tensorboard,wandb"])
        == 0
    )
    # Resumed without --log: the run keeps its loggers.
    assert cli.main(["train", "--resume", str(out), "--generations", "6"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    history = {
        k: np.float32([r[k] for r in rows]) for k in rows[0] if k not in ("generation", "env_steps_total")
    }
    scalars = loggers.tensorboard_scalars(out / "tensorboard", purge=False)
    assert set(scalars) == set(history)
    for name, values in history.items():
        assert [s for s, _ in scalars[name]] == list(range(1, 7))
        np.testing.assert_array_equal(np.float32([v for _, v in scalars[name]]), values, err_msg=name)
    logged = loggers.wandb_history(str(out))
    assert [r["_step"] for r in logged] == list(range(1, 7))
    np.testing.assert_array_equal(np.float32([r["return"] for r in logged]), history["return"])


def test_sweep_logs_one_run_per_config_and_seed(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        'env = "CartPole-v1"\npopsize = 8\ngenerations = 3\nmax_steps = 20\nhidden = [4]\nseeds = 2\n'
        "[grid]\nsigma = [0.05, 0.1]\n"
    )
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--log", "tensorboard", "--log", "wandb"]) == 0
    runs = sorted(p.name for p in (out / "tensorboard").iterdir())
    assert runs == ["sigma-0.05_seed-0", "sigma-0.05_seed-1", "sigma-0.1_seed-0", "sigma-0.1_seed-1"]
    best = [float(line.split(",")[2]) for line in (out / "sweep.csv").read_text().splitlines()[1:]]
    for run, final_best in zip(runs, best, strict=True):
        scalars = loggers.tensorboard_scalars(out / "tensorboard" / run, purge=False)
        assert [s for s, _ in scalars["best"]] == [1, 2, 3]
        assert scalars["best"][-1][1] == pytest.approx(final_best)
    assert len(list((out / "wandb").glob("offline-run-*"))) == 4
    steps = [r["_step"] for r in loggers.wandb_history(str(out))]
    assert sorted(steps) == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]


def test_bad_logger_names_and_missing_extras_are_clear(tmp_path, capsys, monkeypatch):
    with pytest.raises(ValueError, match="unknown logger 'tensorbord'; valid: tensorboard, wandb"):
        loggers.parse_log("wandb,tensorbord")
    assert loggers.parse_log(["tensorboard", "wandb,tensorboard"]) == ("tensorboard", "wandb")
    out = tmp_path / "run"
    assert cli.main(["train", "--generations", "1", "--quiet", "--out", str(out), "--log", "mlflow"]) == 2
    assert "unknown logger 'mlflow'" in capsys.readouterr().err and not out.exists()
    with pytest.raises(ValueError, match="give out="):
        ne.train(generations=1, log="tensorboard")
    with pytest.raises(ValueError, match="mode must be one of"):
        ne.callbacks.WandB(mode="offline-ish")
    with pytest.raises(ValueError, match="no wandb run under"):
        ne.callbacks.WandB(dir=str(tmp_path), resume=True)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'neuroevo\[tensorboard\]'"):
        ne.callbacks.TensorBoard(tmp_path / "tb")
    assert (
        cli.main(["train", "--generations", "1", "--quiet", "--out", str(out), "--log", "tensorboard"]) == 2
    )
    assert "neuroevo[tensorboard]" in capsys.readouterr().err and not out.exists()
