"""Nothing lost, nothing mixed (issue 16), through the command line: flags, output paths, corrupt
run files, resume rules and corrupt checkpoints. Bad input exits with status 2 and one line,
before anything compiles or is written."""

import json
import os
import shutil

import pytest

from neuroevo import cli
from neuroevo.engine import loop

TINY = ["--popsize", "16", "--max-steps", "20", "--hidden", "4", "--eval-episodes", "1", "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 4-generation run with checkpoints at 2 and 4 (copy it before changing it)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    args = ["train", "--generations", "4", "--checkpoint-every", "2", *TINY, "--out", str(out)]
    assert cli.main(args) == 0
    return out


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "copy")
    return tmp_path / "copy"


def error_of(capsys, argv):
    """Run the CLI on ``argv``; it must exit 2 with one ``error:`` line, which is returned."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def no_compilation(monkeypatch):
    """Fail the test if a run loop starts (the check must come before compiling)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the run loop started: the error came too late")

    monkeypatch.setattr(loop, "run", refuse)


# --------------------------------------------------------------------------- #
# 3. Repeated --hp flags merge; a name given twice is an error.
# --------------------------------------------------------------------------- #


def test_repeated_hp_flags_are_merged():
    args = cli.build_parser().parse_args(["train", "--hp", "sigma=0.5", "--hp", "learning_rate=0.01"])
    assert cli._overrides(args)["hp"] == {"sigma": 0.5, "learning_rate": 0.01}
    args = cli.build_parser().parse_args(
        ["train", "--hp", "sigma=0.5", "mirrored=False", "--hp", "dense=None"]
    )
    assert cli._overrides(args)["hp"] == {"sigma": 0.5, "mirrored": False, "dense": None}
    bench = cli.build_parser().parse_args(
        ["bench", "bbob", "--out", "x", "--hp", "sigma=1", "--hp", "popsize=8"]
    )
    assert cli._parse_hp(bench.hp) == {"sigma": 1, "popsize": 8}


def test_a_hyperparameter_given_twice_is_an_error(capsys, tmp_path, monkeypatch):
    no_compilation(monkeypatch)
    out = tmp_path / "r"
    err = error_of(capsys, ["train", *TINY, "--out", str(out), "--hp", "sigma=0.5", "--hp", "sigma=0.1"])
    assert "--hp sigma is given twice" in err
    assert not out.exists()


# --------------------------------------------------------------------------- #
# 6. Bad hyperparameter values: named, before compiling and before anything is written.
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "hp, message",
    [
        (
            "learning_rate=abc",
            "hyperparameter 'learning_rate' of strategy 'openai_es' must be a number, got 'abc'",
        ),
        ("sigma=abc", "hyperparameter 'sigma' of strategy 'openai_es' must be a number, got 'abc'"),
        ("sigma=-0.1", "hyperparameter 'sigma' of strategy 'openai_es' must be positive, got -0.1"),
        ("learning_rate=0", "hyperparameter 'learning_rate' of strategy 'openai_es' must be positive, got 0"),
        ("optimizer=adam", "strategy 'openai_es' with hyperparameters {'optimizer': 'adam'} cannot run"),
    ],
)
def test_bad_hyperparameter_values_fail_before_compiling(hp, message, capsys, tmp_path, monkeypatch):
    no_compilation(monkeypatch)
    out = tmp_path / "r"
    assert message in error_of(capsys, ["train", *TINY, "--out", str(out), "--hp", hp])
    assert not out.exists()


def test_a_failed_start_leaves_nothing_that_blocks_the_rerun(capsys, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise ValueError("simulated failure while compiling")

    monkeypatch.setattr(loop, "run", crash)
    out = tmp_path / "r"
    assert "simulated failure" in error_of(capsys, ["train", *TINY, "--out", str(out)])
    assert not out.exists()
    out.mkdir()  # an empty directory given by the user stays, empty
    error_of(capsys, ["train", *TINY, "--out", str(out)])
    assert out.is_dir() and not os.listdir(out)


# --------------------------------------------------------------------------- #
# 8. Output paths are checked before any work.
# --------------------------------------------------------------------------- #


def test_output_paths_are_checked_before_any_work(capsys, tmp_path, monkeypatch, finished_run):
    no_compilation(monkeypatch)
    from neuroevo.bench import bbob

    monkeypatch.setattr(bbob, "bbob_campaign", lambda **kw: pytest.fail("the campaign ran"))
    assert "--out /proc/x: cannot write in /proc" in error_of(capsys, ["train", *TINY, "--out", "/proc/x"])
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    assert f"--out {a_file} is a file" in error_of(capsys, ["train", *TINY, "--out", str(a_file)])
    assert f"{a_file} is a file" in error_of(capsys, ["train", *TINY, "--out", str(a_file / "sub")])
    # A directory of the user's files that is not a run is refused, and left as it was.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("my summary")
    err = error_of(capsys, ["train", *TINY, "--out", str(mine)])
    assert "is a non-empty directory that is not a neuroevo run" in err
    assert os.listdir(mine) == ["summary.json"] and (mine / "summary.json").read_text() == "my summary"
    err = error_of(capsys, ["eval", str(finished_run), "--gif", str(tmp_path / "missing" / "x.gif")])
    assert (
        f"--gif {tmp_path / 'missing' / 'x.gif'}: the directory {tmp_path / 'missing'} does not exist" in err
    )
    err = error_of(capsys, ["bench", "bbob", "--dimensions", "2", "--instances", "1", "--out", "/proc/x"])
    assert "--out /proc/x: cannot write in /proc" in err
    err = error_of(capsys, ["bench", "bbob", "--budget-multiplier", "inf", "--out", str(tmp_path / "b")])
    assert "--budget-multiplier must be a positive finite number, got inf" in err
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("popsize = 8\n[grid]\nsigma = [0.1]\n")
    assert "--out /proc/x: cannot write" in error_of(capsys, ["sweep", str(sweep), "--out", "/proc/x"])


# --------------------------------------------------------------------------- #
# 9. eval on a corrupt run file names the file.
# --------------------------------------------------------------------------- #


def test_eval_of_a_corrupt_run_file_names_it(capsys, tmp_path, finished_run):
    run = copy_of(finished_run, tmp_path)
    params = run / "final_params.msgpack"
    data = params.read_bytes()
    params.write_bytes(data[: len(data) // 2])
    err = error_of(capsys, ["eval", str(run)])
    assert "final_params.msgpack is truncated or not a params file" in err
    params.write_bytes(b"not msgpack at all")
    assert "final_params.msgpack is truncated or not a params file" in error_of(capsys, ["eval", str(run)])
    shutil.copy(finished_run / "final_params.msgpack", params)
    config = run / "config.json"
    config.write_text(config.read_text()[:20])
    assert "config.json is truncated or not a run config" in error_of(capsys, ["eval", str(run)])


# --------------------------------------------------------------------------- #
# 10. Resume rules, and settings refused with a clear line.
# --------------------------------------------------------------------------- #


def test_resume_below_the_generations_run_is_an_error(capsys, tmp_path, monkeypatch, finished_run):
    no_compilation(monkeypatch)
    run = copy_of(finished_run, tmp_path)
    config = (run / "config.json").read_bytes()
    err = error_of(capsys, ["train", "--resume", str(run), "--generations", "3", "--quiet"])
    assert "generations 3 is below the 4 generations the run has already done" in err
    assert (run / "config.json").read_bytes() == config


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "32,,8"], "config key 'hidden' has an empty width in '32,,8'"),
        (["--log-every", "0"], "config key 'log_every' must be >= 1"),
        (["--popsize", "0"], "config key 'popsize' must be >= 1"),
    ],
)
def test_bad_settings_fail_before_compiling(args, message, capsys, tmp_path, monkeypatch):
    no_compilation(monkeypatch)
    assert message in error_of(capsys, ["train", *TINY, "--out", str(tmp_path / "r"), *args])
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- #
# 7. A corrupt newest checkpoint: fall back with a warning, or fail in one line; metrics kept.
# --------------------------------------------------------------------------- #


def truncate_arrays(step_dir):
    for root, _, names in os.walk(step_dir / "carry"):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)


def test_corrupt_checkpoints_on_resume(capsys, tmp_path, finished_run):
    run = copy_of(finished_run, tmp_path)
    (run / "summary.json").unlink()
    metrics = (run / "metrics.jsonl").read_bytes()
    # Every checkpoint damaged: one line naming them; metrics.jsonl is not trimmed.
    broken = copy_of(run, tmp_path / "broken")
    for step in ("2", "4"):
        truncate_arrays(broken / "checkpoints" / step)
    err = error_of(capsys, ["train", "--resume", str(broken), "--quiet"])
    assert f"no usable checkpoint in {broken / 'checkpoints'}" in err and "checkpoints/4: carry/" in err
    assert (broken / "metrics.jsonl").read_bytes() == metrics
    # The newest damaged: a one-line warning naming it, and the files of the whole run.
    truncate_arrays(run / "checkpoints" / "4")
    assert cli.main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"warning: checkpoint {run / 'checkpoints' / '4'} is corrupt" in err and "Traceback" not in err
    for name in ("metrics.jsonl", "metrics.csv", "final_params.msgpack", "best_params.msgpack"):
        assert (run / name).read_bytes() == (finished_run / name).read_bytes(), name
    summary = json.loads((run / "summary.json").read_text())
    assert (
        summary["final_eval_return"]
        == json.loads((finished_run / "summary.json").read_text())["final_eval_return"]
    )
