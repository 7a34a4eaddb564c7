"""Fuzzing ``neuroevo train`` (issue 16): random flags drawn from a grammar of valid and invalid
settings. Every config with an invalid setting exits with status 2 and one error line before
anything compiles (the run loop never starts) and leaves no directory; a config of valid settings
either runs (a generation of a tiny population) or is refused the same way (some valid settings
do not combine, e.g. an odd population for mirrored sampling) — it never crashes."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroevo import cli
from neuroevo.engine import loop

VALID = {
    "--env": ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0"],
    "--strategy": ["openai_es", "ga", "snes", "pgpe", "ars"],
    "--popsize": ["4", "6", "8"],
    "--seed": ["0", "1", "7"],
    "--episodes": ["1", "2"],
    "--hidden": ["4", "4,4", "", "3, 5"],
    "--chunk-size": ["2", "4", "8"],
    "--log-every": ["1", "2"],
    "--checkpoint-every": ["1", "3"],
    "--normalize-obs": None,
    "--no-normalize-obs": None,
    "--hp": ["sigma=0.05", "sigma=0.3", "learning_rate=0.01", "weight_decay=0.0"],
    # A config file (written by run_cli from the text after "toml:").
    "--config": ["toml:episodes = 1", "toml:hidden = [3]\n[hp]\nsigma = 0.2", "toml:seed = 5"],
}
INVALID = [
    ["--env", "Nope-v0"],
    ["--env", ""],
    ["--strategy", "nope"],
    ["--popsize", "0"],
    ["--popsize", "-3"],
    ["--popsize", "many"],
    ["--generations", "0"],
    ["--generations", "1.5"],
    ["--episodes", "0"],
    ["--eval-episodes", "-1"],
    ["--max-steps", "0"],
    ["--log-every", "0"],
    ["--chunk-size", "0"],
    ["--checkpoint-every", "0"],
    ["--seed", "abc"],
    ["--hidden", "4,,4"],
    ["--hidden", "a,b"],
    ["--hidden", "0"],
    ["--network", "cnn"],
    ["--network", "bogus"],
    ["--hp", "sigma=abc"],
    ["--hp", "sigma=-1"],
    ["--hp", "sigma=0"],
    ["--hp", "sigma=nan"],
    ["--hp", "learning_rate=abc"],
    ["--hp", "learning_rate=-0.1"],
    ["--hp", "nope=1"],
    ["--hp", "sigma"],
    ["--hp", "sigma=0.1", "--hp", "sigma=0.2"],
    ["--hp", "optimizer=adam"],
    ["--config", "/nonexistent/run.toml"],
    ["--config", "toml:popsise = 8"],
    ["--config", "toml:env = 5"],
    ["--config", "toml:hidden = [4, 0]"],
    ["--config", "toml:[hp]\nsigma = 'abc'"],
    ["--config", "toml:generations = "],
    ["--popsise", "8"],
    ["--sigma", "0.1"],
    ["--out", "/proc/neuroevo-fuzz"],
    ["--resume", "/nonexistent/run"],
]


@st.composite
def train_argv(draw, invalid: bool) -> list[str]:
    """Tiny base settings, up to five valid settings, then (``invalid``) one or two invalid ones
    (flags and config-file keys: unknown names, values of the wrong kind or range)."""
    argv = ["train", "--generations", "1", "--max-steps", "5", "--eval-episodes", "1", "--popsize", "4"]
    for flag in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=5, unique=True)):
        values = VALID[flag]
        argv += [flag] if values is None else [flag, draw(st.sampled_from(values))]
    if invalid:
        for setting in draw(st.lists(st.sampled_from(INVALID), min_size=1, max_size=2)):
            argv += setting
    return argv


class Compiled(BaseException):
    """The run loop started (not an Exception, so nothing converts it into a refusal)."""


def run_cli(argv: list[str]) -> tuple[int, str, bool]:
    """``(exit status, stderr, whether the output directory exists)`` of ``neuroevo train``."""
    work = tempfile.mkdtemp(prefix="neuroevo-fuzz-")
    out = os.path.join(work, "run")
    argv = [*argv[:1], "--out", out, "--quiet", *argv[1:]]  # a later --out (invalid) wins
    for i, value in enumerate(argv):
        if value.startswith("toml:"):
            argv[i] = os.path.join(work, f"config{i}.toml")
            with open(argv[i], "w") as f:
                f.write(value[len("toml:") :] + "\n")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = cli.main(argv)
            except SystemExit as e:  # argparse: a malformed flag value
                rc = e.code
        finished = os.path.exists(os.path.join(out, "summary.json"))
        return rc, err.getvalue(), os.path.exists(out), finished
    finally:
        shutil.rmtree(work, ignore_errors=True)


def assert_refused(argv, rc, err, exists):
    assert rc == 2, (argv, err)
    assert not exists, (argv, err)
    if err.startswith("error: "):  # ours (argparse prints its usage instead)
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(train_argv(invalid=True))
def test_invalid_configs_are_refused_before_compiling(argv):
    with mock.patch.object(loop, "run", side_effect=Compiled):
        rc, err, exists, _ = run_cli(argv)
    assert_refused(argv, rc, err, exists)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(train_argv(invalid=False))
def test_valid_configs_run_or_are_refused_cleanly(argv):
    rc, err, exists, finished = run_cli(argv)
    assert rc in (0, 2), (argv, err)
    if rc == 2:  # valid settings that do not combine
        assert_refused(argv, rc, err, exists)
    else:
        assert finished, argv
