"""``neuroevo bench moo`` / ``ne.bench.moo_run``: the front, the indicators per generation, the plot."""

import csv
import re

import numpy as np
import pytest

import neuroevo as ne
from neuroevo import cli, moo


def rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_cli_writes_front_history_and_png(tmp_path, capsys):
    out = tmp_path / "zdt1"
    args = ["bench", "moo", "--problem", "zdt1", "--n-var", "6", "--popsize", "12", "--generations", "4"]
    assert cli.main([*args, "--hp", "mutation_eta=10.0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nsga2 on zdt1" in printed and "hypervolume" in printed and "IGD" in printed
    front = rows(out / "front.csv")
    assert front[0] == ["f1", "f2"] + [f"x{i}" for i in range(1, 7)]
    f = np.array(front[1:], float)[:, :2]
    assert len(f) >= 1 and np.all(np.asarray(moo.non_dominated_ranks(-f)) == 0)  # a non-dominated set
    np.testing.assert_allclose(f[:, 0], np.array(front[1:], float)[:, 2])  # ZDT1: f1 = x1
    history = rows(out / "history.csv")
    assert history[0] == ["generation", "hypervolume", "igd", "front_size"] and len(history) == 5
    final = [float(v) for v in history[-1][1:3]]
    inside = f[np.all(f < 1.1, axis=1)]  # points beyond the reference point add nothing
    expected = float(moo.hypervolume(-inside, [-1.1, -1.1])) if len(inside) else 0.0
    assert final[0] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert final[1] == pytest.approx(float(moo.igd(f, -ne.tasks.zdt1(6).info["pareto_front"]())), rel=1e-4)
    assert (out / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Another run into the same directory is refused before any work; nothing is overwritten.
    before = (out / "front.csv").read_bytes()
    assert cli.main([*args, "--seed", "1", "--out", str(out)]) == 2
    assert "already holds front.csv, history.csv, front.png" in capsys.readouterr().err
    assert (out / "front.csv").read_bytes() == before


def test_many_objectives_without_hypervolume(tmp_path):
    result = ne.bench.moo_run(
        "dtlz2", "nsga3", popsize=12, generations=2, n_objectives=4, n_var=6, out=str(tmp_path)
    )
    assert result.front.shape[1] == 4 and "hypervolume" not in result.history
    assert rows(tmp_path / "history.csv")[0] == ["generation", "igd", "front_size"]
    assert (tmp_path / "front.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--problem", "zdt5"], "unknown problem 'zdt5'"),
        (["--strategy", "ga"], "not a multi-objective strategy"),
        (["--hp", "crossover_rate=2.0"], r"'crossover_rate' of strategy 'nsga2' must be in \[0, 1\]"),
        (["--generations", "0"], "generations must be a positive int"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["bench", "moo", *args, "--out", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()
