"""Architecture search through the engine and the CLI: ne.tasks.nas with the search strategies,
resume, vmap over seeds, the run directory of `neuroevo nas`."""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import cli, nas_search

DIGITS = ne.nas.digits()
TINY = ne.nas.Dataset(*(a[:64] for a in DIGITS))
SPACE = ne.nas.MLPSpace(max_blocks=2, widths=(3, 6), activations=("relu", "tanh"))
TASK = ne.tasks.nas(SPACE, TINY, steps=2, batch_size=8)
HAS_SPACE = importlib.util.find_spec("neuroevo.space") is not None  # issue 20's discrete genotypes
DISCRETE = pytest.mark.skipif(not HAS_SPACE, reason="needs neuroevo.space (issue 20)")


def strategy_for(name, popsize=4):
    if name == "random":
        return ne.nas.random_search(SPACE, popsize)
    extra = dict(n_objectives=2) if name == "nsga2" else {}
    return ne.strategies.make(name, popsize=popsize, space=SPACE.genotype_space(), **extra)


NAMES = [
    "random",
    pytest.param("regularized_evolution", marks=DISCRETE),
    pytest.param("nsga2", marks=DISCRETE),
]


def task_for(name):
    if name == "nsga2":
        return ne.tasks.nas(SPACE, TINY, steps=2, batch_size=8, objectives=("accuracy", "params"))
    return TASK


@pytest.mark.parametrize("name", NAMES)
def test_search_resumes_bit_for_bit(name, tmp_path):
    """Stopped after 2 generations and resumed in another program: the same candidates and state."""
    strategy = strategy_for(name)
    task = nas_search.recording(task_for(name), 3 * 4, SPACE.n_genes)
    x0 = jnp.asarray(SPACE.smallest())
    full = ne.run(jax.random.key(0), strategy, task, x0, 3)
    ne.run(jax.random.key(0), strategy, task, x0, 2, checkpoint_dir=str(tmp_path))
    resumed = ne.run(jax.random.key(0), strategy, task, x0, 3, checkpoint_dir=str(tmp_path))
    for a, b in zip(
        jax.tree_util.tree_leaves((full.state, full.task_state)),
        jax.tree_util.tree_leaves((resumed.state, resumed.task_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    archive = full.task_state[1]
    assert int(archive.count) == 12 and not np.any(np.isnan(archive.accuracy))
    np.testing.assert_array_equal(
        archive.params, [SPACE.count_params(g, (8, 8, 1)) for g in archive.genotypes]
    )
    assert full.history["accuracy"].shape == (3,)


@pytest.mark.parametrize("name", ["regularized_evolution"])  # the others share the search loop
def test_search_vmaps_over_seeds(name):
    strategy, task = strategy_for(name), task_for(name)
    x0 = jnp.asarray(SPACE.smallest())

    def search(key):
        state = strategy.init(key, x0)

        def step(state, k):
            genotypes, state = strategy.ask(k, state)
            evaluation, _ = task.evaluate(k, (), ne.population(strategy, state, genotypes))
            return strategy.tell(k, state, genotypes, evaluation.fitness), evaluation.metrics["accuracy"]

        return jax.lax.scan(step, state, jax.random.split(key, 2))

    keys = jax.random.split(jax.random.key(1), 3)
    states, accuracy = jax.jit(jax.vmap(search))(keys)
    single, single_accuracy = jax.jit(search)(keys[2])
    np.testing.assert_array_equal(accuracy[2], single_accuracy)
    np.testing.assert_array_equal(states.best_fitness[2], single.best_fitness)
    assert accuracy.shape == (3, 2, 4)


def run_cli(tmp_path, *extra):
    data = tmp_path / "data.npz"
    np.savez(data, x=DIGITS.x_train[:150], y=DIGITS.y_train[:150])
    return cli.main(
        [
            "nas",
            "--space",
            "mlp",
            "--popsize",
            "4",
            "--generations",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--final-steps",
            "3",
            "--data",
            str(data),
            "--quiet",
            *extra,
        ]
    )


@pytest.mark.parametrize("name", ["random", "nsga2"])  # one single- and one multi-objective search
def test_cli_writes_the_run_directory(name, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(tmp_path, "--strategy", name, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "best architecture: dense(" in printed and "test accuracy after retraining" in printed
    for name_ in (
        "config.json",
        "metrics.csv",
        "candidates.csv",
        "front.png",
        "best_architecture.json",
        "best_params.msgpack",
        "summary.txt",
    ):
        assert (out / name_).exists(), name_
    best = json.loads((out / "best_architecture.json").read_text())
    space = ne.nas.MLPSpace()
    genes = np.array(best["genes"], np.int32)
    assert best["params"] == space.count_params(genes, (8, 8, 1))
    assert best["architecture"] == space.architecture(genes).describe()
    rows = (out / "candidates.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 2
    assert best["validation_accuracy"] == pytest.approx(max(float(r.split(",")[2]) for r in rows[1:]))
    # The same command again continues the finished run (nothing left to train); other settings refuse.
    assert run_cli(tmp_path, "--strategy", name, "--out", str(out)) == 0
    assert run_cli(tmp_path, "--strategy", name, "--out", str(out), "--generations", "3") == 2
    assert "holds a run started with other settings (generations=2)" in capsys.readouterr().err


def test_cli_bad_input(tmp_path, capsys):
    assert run_cli(tmp_path, "--strategy", "random", "--max-params", "5000") == 2
    assert "early exit" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert cli.main(["nas", "--data", str(tmp_path / "bad.npz"), "--quiet"]) == 2
    assert "cannot be read" in capsys.readouterr().err
    np.savez(tmp_path / "xy.npz", images=np.zeros((4, 8, 8)))
    assert cli.main(["nas", "--data", str(tmp_path / "xy.npz"), "--quiet"]) == 2
    assert "arrays named x and y" in capsys.readouterr().err
    np.savez(tmp_path / "flat.npz", x=np.zeros((40, 64)), y=np.zeros(40, np.int32))
    assert cli.main(["nas", "--space", "cnn", "--data", str(tmp_path / "flat.npz"), "--quiet"]) == 2
    assert "(height, width, channels)" in capsys.readouterr().err


@DISCRETE
def test_cli_early_exit(tmp_path, capsys):
    assert run_cli(tmp_path, "--strategy", "regularized_evolution", "--max-params", "10") == 2
    assert "no candidate can meet max_params=10" in capsys.readouterr().err
    result = nas_search.search(
        "mlp",
        "regularized_evolution",
        data=TINY,
        popsize=4,
        generations=1,
        steps=2,
        batch_size=8,
        final_steps=2,
        max_params=2000,
    )
    assert result.candidates["params"].max() <= 2000  # the first generation is the initial population
