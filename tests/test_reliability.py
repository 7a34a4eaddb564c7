"""Nothing lost, nothing mixed (issue 16), through the Python API: resume rules, checkpoint
fingerprints and corruption, metrics of non-finite populations, hyperparameter values, keys."""

import json
import os
import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo.engine import checkpoint

TASK = ne.tasks.function(ne.tasks.rastrigin)
X0 = jnp.full((8,), 2.0)
TINY = dict(popsize=16, max_steps=20, hidden=(4,), eval_episodes=1, checkpoint_every=1, log_every=1)


def snapshot(directory):
    """Every file under ``directory`` and its bytes."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------- #
# 1. A Python-API resume applies the CLI's rule, before writing anything.
# --------------------------------------------------------------------------- #


def test_api_resume_with_changed_settings_is_refused_and_leaves_the_run_intact(tmp_path):
    run = str(tmp_path / "run")
    ne.train(out=run, generations=2, **TINY)
    before = snapshot(run)
    stored = ne.rl.load_config(run)
    changes = [
        (dict(generations=4, env="Acrobot-v1"), r"env \('CartPole-v1' -> 'Acrobot-v1'\)"),
        (dict(popsize=64, hp={"sigma": 0.5}), r"popsize \(16 -> 64\), hp sigma \('unset' -> 0.5\)"),
        (dict(generations=1), "generations 1 is below the 2 generations the run has already done"),
    ]
    for overrides, message in changes:
        with pytest.raises(ValueError, match=message):
            ne.train(config=stored, out=run, resume=True, **overrides)
        assert snapshot(run) == before, overrides  # config.json (and all else) untouched
    # The run still evaluates, and the allowed change continues it.
    ne.rl.evaluate_run(run)
    result = ne.train(out=run, resume=True, generations=3)
    assert result.summary["generations"] == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["generations"] == 3
    with pytest.raises(ValueError, match="resume=True needs out="):
        ne.train(resume=True)


# --------------------------------------------------------------------------- #
# 2. A checkpoint records what produced it and refuses anything else.
# --------------------------------------------------------------------------- #


def test_checkpoint_refuses_a_run_with_other_settings_naming_each_field(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    strategy = ne.strategies.make("openai_es", popsize=16, sigma=0.1)
    state, history = ne.evolve(jax.random.key(0), strategy, TASK, X0, 3, checkpoint_dir=ckpt)
    others = [
        (
            ne.strategies.make("openai_es", popsize=16, sigma=0.5),
            TASK,
            X0,
            "hyperparameter sigma: 0.1 vs 0.5",
        ),
        (ne.strategies.make("openai_es", popsize=32), TASK, X0, "popsize: 16 vs 32"),
        (
            ne.strategies.make("ga", popsize=16),
            TASK,
            X0,
            "strategy: 'openai_es' vs 'ga'; state leaves differ",
        ),
        (strategy, TASK, jnp.full((9,), 2.0), r"x0 leaves differ \(\(root\): float32\[8\] vs float32\[9\]\)"),
        (strategy, ne.tasks.function(ne.tasks.sphere), X0, "task: 'rastrigin' vs 'sphere'"),
        # Built without make: its hyperparameters are unknown, the traced program differs.
        (ne.strategies.openai_es(16, sigma=0.5), TASK, X0, "program: the traced generation differs"),
    ]
    for other, task, x0, message in others:
        with pytest.raises(ValueError, match=f"written by a different run .*{message}"):
            ne.evolve(jax.random.key(0), other, task, x0, 6, checkpoint_dir=ckpt)
    with pytest.raises(ValueError, match=r"key: \[0, 0\] vs \[0, 1\]"):
        ne.evolve(jax.random.key(1), strategy, TASK, X0, 6, checkpoint_dir=ckpt)
    # The same run (a legacy key of the same seed, a strategy built without make) continues.
    same, same_history = ne.evolve(
        jax.random.PRNGKey(0), ne.strategies.openai_es(16, sigma=0.1), TASK, X0, 3, checkpoint_dir=ckpt
    )
    assert_trees_equal(same, state)
    np.testing.assert_array_equal(same_history["best"], history["best"])


def test_fingerprint_differences_and_upgrades():
    from neuroevo.engine import fingerprint

    strategy = ne.strategies.make("openai_es", popsize=16)
    k_init, k_task, k_loop = jax.random.split(jax.random.key(0), 3)
    carry = jax.eval_shape(lambda: (strategy.init(k_init, X0), TASK.init(k_task)))
    step = ne.engine.make_step(strategy, TASK)
    a = fingerprint.fingerprint([0, 0], strategy, TASK, X0, carry, step, k_loop)
    assert json.loads(json.dumps(a)) == a  # stored as JSON as it is
    assert fingerprint.differences(a, a) == []
    b = dict(a, program="sha256:other", versions={"jax": "0.0.1", "neuroevo": a["versions"]["neuroevo"]})
    found = fingerprint.differences(a, b)
    assert found and fingerprint.upgrade_only(found, a, b)
    assert not fingerprint.upgrade_only(found, a, dict(b, versions=a["versions"]))
    assert fingerprint.describe(ne.shaping.centered_ranks) == "neuroevo.shaping.centered_ranks"
    assert fingerprint.describe((1, 2.5, np.float32(0.5), None)) == [1, 2.5, 0.5, None]


# --------------------------------------------------------------------------- #
# 7. A corrupt checkpoint falls back to the previous good one, or fails in one line.
# --------------------------------------------------------------------------- #


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def array_files(step_dir):
    return [os.path.join(r, n) for r, _, names in os.walk(os.path.join(step_dir, "carry")) for n in names]


def test_corrupt_latest_checkpoint_falls_back_and_none_usable_is_one_line(tmp_path):
    strategy = ne.strategies.make("openai_es", popsize=16)
    whole, whole_history = ne.evolve(jax.random.key(2), strategy, TASK, X0, 9, log_every=3)
    base = str(tmp_path / "base")
    ne.evolve(jax.random.key(2), strategy, TASK, X0, 6, log_every=3, checkpoint_dir=base)
    assert sorted(os.listdir(base)) == ["3", "6"]
    for damaged in ("arrays", "meta/metadata", "_CHECKPOINT_METADATA"):
        ckpt = str(tmp_path / damaged.replace("/", "_"))
        shutil.copytree(base, ckpt)
        for path in array_files(f"{ckpt}/6") if damaged == "arrays" else [f"{ckpt}/6/{damaged}"]:
            truncate(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            state, history = ne.evolve(
                jax.random.key(2), strategy, TASK, X0, 9, log_every=3, checkpoint_dir=ckpt
            )
        messages = [str(w.message) for w in caught if issubclass(w.category, checkpoint.CheckpointWarning)]
        assert len(messages) == 1 and f"checkpoint {ckpt}/6 is corrupt" in messages[0], damaged
        assert "resumed from generation 3" in messages[0]
        assert_trees_equal(state, whole)
        for k in whole_history:
            np.testing.assert_array_equal(history[k], whole_history[k])
    # Every step damaged: one line naming each, and nothing removed.
    for step in ("3", "6"):
        for path in array_files(f"{base}/{step}"):
            truncate(path)
    with pytest.raises(ValueError) as error:
        ne.evolve(jax.random.key(2), strategy, TASK, X0, 9, log_every=3, checkpoint_dir=base)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"no usable checkpoint in {base}")
    assert f"{base}/6: carry/" in message and f"{base}/3: carry/" in message
    assert "does not match its checksum" in message
    assert sorted(os.listdir(base)) == ["3", "6"]


def test_a_second_ctrl_c_while_a_checkpoint_is_written_waits_for_it(tmp_path, monkeypatch):
    """Two Ctrl-Cs arrive while generation 2's checkpoint is being written: it is completed
    (and sealed), the run stops there, and resumes bit for bit."""
    import signal

    import orbax.checkpoint as ocp

    strategy = ne.strategies.make("openai_es", popsize=16)
    whole, whole_history = ne.evolve(jax.random.key(3), strategy, TASK, X0, 4, log_every=1)
    save = ocp.CheckpointManager.save

    def interrupted_save(self, step, *args, **kwargs):
        if step == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", interrupted_save)
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        ne.evolve(jax.random.key(3), strategy, TASK, X0, 4, log_every=1, checkpoint_dir=ckpt)
    assert sorted(os.listdir(ckpt)) == ["1", "2"]
    assert checkpoint.verify(os.path.join(ckpt, "2")) is None
    assert os.path.exists(os.path.join(ckpt, "2", checkpoint.CHECKSUMS))
    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    state, history = ne.evolve(jax.random.key(3), strategy, TASK, X0, 4, log_every=1, checkpoint_dir=ckpt)
    assert_trees_equal(state, whole)
    for k in whole_history:
        np.testing.assert_array_equal(history[k], whole_history[k])


def test_checkpoints_are_checksummed_after_writing(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    ne.evolve(jax.random.key(0), ne.strategies.make("ga", popsize=8), TASK, X0, 4, checkpoint_dir=ckpt)
    for step in os.listdir(ckpt):
        table = json.loads(open(os.path.join(ckpt, step, checkpoint.CHECKSUMS)).read())
        assert any(name.startswith("carry/") for name in table) and "meta/metadata" in table
        assert checkpoint.verify(os.path.join(ckpt, step)) is None


# --------------------------------------------------------------------------- #
# 5. The mean of a population without finite members is NaN; non-finite members are counted.
# --------------------------------------------------------------------------- #


def fitness_task(fitness_of):
    def evaluate(key, task_state, solutions):
        n = solutions.shape[0]
        return ne.tasks.Evaluation(fitness=fitness_of(n, -jax.vmap(ne.tasks.sphere)(solutions))), task_state

    return ne.tasks.Task(init=lambda key: (), evaluate=evaluate)


@pytest.mark.parametrize("bad", [jnp.nan, -jnp.inf])
def test_mean_of_a_population_without_finite_members_is_nan(bad):
    task = fitness_task(lambda n, f: jnp.full((n,), bad))
    _, history = ne.evolve(jax.random.key(0), ne.strategies.make("openai_es", popsize=8), task, X0, 3)
    assert np.all(np.isnan(history["mean"])) and np.all(history["nonfinite"] == 8)
    # Half the members non-finite: the mean is over the others.
    half = fitness_task(lambda n, f: jnp.where(jnp.arange(n) % 2 == 0, bad, f))
    _, history = ne.evolve(jax.random.key(0), ne.strategies.make("ga", popsize=8), half, X0, 3)
    assert np.all(history["nonfinite"] == 4) and np.all(np.isfinite(history["mean"]))
    assert np.all(history["mean"] <= history["generation_best"])


# --------------------------------------------------------------------------- #
# 6. Hyperparameter values are checked by make, naming the hyperparameter.
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "name, hp, message",
    [
        ("openai_es", dict(learning_rate="abc"), "'learning_rate' of strategy 'openai_es' must be a number"),
        ("openai_es", dict(sigma="abc"), "'sigma' of strategy 'openai_es' must be a number, got 'abc'"),
        ("openai_es", dict(sigma=-0.1), "'sigma' of strategy 'openai_es' must be positive, got -0.1"),
        ("openai_es", dict(sigma=0), "'sigma' .* must be positive, got 0"),
        ("snes", dict(learning_rate=0.0), "'learning_rate' .* must be positive"),
        ("openai_es", dict(sigma=float("inf")), "'sigma' .* must be finite"),
        ("openai_es", dict(weight_decay=-1.0), "'weight_decay' .* must be non-negative"),
        ("openai_es", dict(mirrored="yes"), "'mirrored' .* must be True or False"),
        ("ga", dict(crossover_rate=1.5), "'crossover_rate' of strategy 'ga' must be in \\[0, 1\\]"),
        ("ga", dict(tournament_size=2.5), "'tournament_size' .* must be an int"),
        ("neat", dict(node_add_prob=-0.1), "'node_add_prob' .* must be in \\[0, 1\\]"),
    ],
)
def test_bad_hyperparameter_values_are_named(name, hp, message):
    with pytest.raises(ValueError, match=message):
        ne.strategies.make(name, popsize=16, **hp)


def test_make_records_its_config_and_good_values_pass():
    strategy = ne.strategies.make("openai_es", popsize=16, sigma=1, learning_rate=np.float32(0.1))
    assert strategy.config["name"] == "openai_es"
    assert strategy.config["hyperparameters"]["sigma"] == 1
    assert strategy.config["hyperparameters"]["weight_decay"] == 0.0  # defaults resolved
    assert ne.strategies.openai_es(16).config is None
    # A schedule and traced values (a sweep's) are not second-guessed.
    ne.strategies.make("openai_es", popsize=16, sigma=lambda g: 0.1)
    jax.vmap(lambda s: ne.strategies.make("openai_es", popsize=16, sigma=s).init(jax.random.key(0), X0))(
        jnp.asarray([0.1, 0.2])
    )


# --------------------------------------------------------------------------- #
# 10. Late or raw errors of the engine.
# --------------------------------------------------------------------------- #


def test_log_every_zero_and_an_evaluate_without_task_state_are_refused():
    strategy = ne.strategies.make("ga", popsize=8)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="log_every must be a positive int"):
            ne.evolve(jax.random.key(0), strategy, TASK, X0, 2, log_every=bad)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int"):
        ne.evolve(jax.random.key(0), strategy, TASK, X0, 2, checkpoint_every=0)
    alone = ne.tasks.Task(init=lambda k: (), evaluate=lambda k, s, x: ne.tasks.Evaluation(jnp.zeros(8)))
    with pytest.raises(ValueError, match=r"must return \(Evaluation, task_state\), got an Evaluation alone"):
        ne.evolve(jax.random.key(0), strategy, alone, X0, 1)


def test_hidden_widths_are_parsed_strictly():
    assert ne.rl.resolve(hidden="32, 8")["hidden"] == (32, 8)
    assert ne.rl.resolve(hidden="")["hidden"] == ()  # documented: no hidden layer
    assert ne.rl.resolve(hidden=[])["hidden"] == ()
    for bad, message in [
        ("32,,8", "empty width"),
        ("32,", "empty width"),
        ("a,b", "layer widths like"),
        ([True], "layer widths like"),
        ("0", "positive widths"),
        (8, "layer widths like"),
    ]:
        with pytest.raises(ValueError, match=message):
            ne.rl.resolve(hidden=bad)
    task = ne.rl.make_task(ne.rl.resolve(hidden="", max_steps=5))
    params = task.init_solution(jax.random.key(0))
    assert [x.shape for x in jax.tree_util.tree_leaves(params)] == [(2,), (4, 2)]  # linear


# --------------------------------------------------------------------------- #
# 11. Every public entry point that takes a key accepts both kinds.
# --------------------------------------------------------------------------- #

KEY_KINDS = [jax.random.key(11), jax.random.PRNGKey(11)]


def test_sweep_with_a_legacy_key_matches_separate_runs():
    make = lambda sigma: ne.strategies.openai_es(8, sigma=sigma)  # noqa: E731
    grid = {"sigma": [0.05, 0.2]}
    typed, legacy = (ne.sweep(k, make, TASK, X0, grid=grid, seeds=3, generations=3) for k in KEY_KINDS)
    for name in typed.history:
        np.testing.assert_array_equal(typed.history[name], legacy.history[name])
    alone, history = ne.evolve(legacy.keys[2], make(0.2), TASK, X0, 3)
    np.testing.assert_allclose(history["best"], legacy.history["best"][1, 2], rtol=1e-6)
    pbt = [
        ne.sweep(k, make, TASK, X0, grid=grid, seeds=1, generations=2, pbt=ne.PBT(interval=1))
        for k in KEY_KINDS
    ]
    np.testing.assert_array_equal(pbt[0].history["best"], pbt[1].history["best"])


def test_engine_entry_points_take_both_key_kinds():
    strategy = ne.strategies.make("openai_es", popsize=8)
    evolved = [ne.evolve(k, strategy, TASK, X0, 3) for k in KEY_KINDS]
    assert_trees_equal(evolved[0], evolved[1])
    ran = [ne.run(k, strategy, TASK, X0, 3) for k in KEY_KINDS]
    assert_trees_equal(ran[0].state, ran[1].state)
    state = strategy.init(jax.random.key(0), X0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    evaluated = [ne.evaluate_population(strategy, TASK, k, state, (), genotypes)[0] for k in KEY_KINDS]
    assert_trees_equal(evaluated[0], evaluated[1])
    for bad in (11, jax.random.split(jax.random.key(0), 2), jnp.zeros(2, jnp.float32)):
        with pytest.raises(ValueError, match="must be .*PRNG key"):
            ne.evolve(bad, strategy, TASK, X0, 1)


def test_tasks_strategies_and_policy_evaluation_take_both_key_kinds():
    task = ne.tasks.gymnax("CartPole-v1", hidden=(4,), max_steps=10)
    params = [task.init_solution(k) for k in KEY_KINDS]
    assert_trees_equal(params[0], params[1])
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), params[0])
    evaluations = [task.evaluate(k, task.init(k), batch)[0] for k in KEY_KINDS]
    assert_trees_equal(evaluations[0], evaluations[1])
    returns = [ne.rl.evaluate_policy(task, task.init(k), params[0], k) for k in KEY_KINDS]
    assert returns[0] == returns[1]
    # Every registered strategy's init/ask/tell traces with either kind (traced, not compiled).
    for name in ne.strategies.names():
        if name.startswith("evosax:") or name == "neat" or ne.strategies.needs_descriptors(name):
            continue  # adapters, graphs (NEAT) and descriptors: covered by ne.evolve's key handling
        objectives = ne.strategies.multi_objective(name)
        hp = {"bounds": (-1.0, 1.0), "n_objectives": 2} if objectives else {}
        strategy = ne.strategies.make(name, popsize=8, **hp)

        def generation(key, strategy=strategy, objectives=objectives):
            state = strategy.init(key, X0)
            genotypes, state = strategy.ask(key, state)
            fitness = -jax.vmap(ne.tasks.sphere)(ne.population(strategy, state, genotypes))
            if objectives:  # two objectives: the sphere and its negation
                fitness = jnp.stack([fitness, -fitness], axis=1)
            return strategy.tell(key, state, genotypes, fitness)

        shapes = [jax.eval_shape(generation, k) for k in KEY_KINDS]
        assert jax.tree_util.tree_structure(shapes[0]) == jax.tree_util.tree_structure(shapes[1]), name
