"""The text task: corpus checks, the loss, eggroll's fast path on a transformer, and the CLI."""

import json
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import cli

SMALL = dict(seq_len=8, batch_size=2, val_batch=2, width=8, layers=1, heads=2)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    return str(path)


def test_default_corpus_is_the_stdlib_in_a_fixed_order():
    files = ne.tasks.text_module.default_corpus_files()
    assert files == sorted(files) and all(f.endswith(".py") for f in files)
    data = ne.tasks.text_module.read_corpus(None, max_mib=0.25)
    assert len(data) == 2**18 and data == ne.tasks.text_module.read_corpus(None, max_mib=0.25)
    with open(files[0], "rb") as f:
        assert data.startswith(f.read()[:1000])


def test_bad_corpus_is_refused_before_compiling(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ne.tasks.text(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        ne.tasks.text(str(empty))
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not text"):
        ne.tasks.text(str(binary))
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème ".encode("latin-1") * 20)
    with pytest.raises(ValueError, match="not UTF-8"):
        ne.tasks.text(str(latin))
    short = tmp_path / "short.txt"
    short.write_text("abc")
    with pytest.raises(ValueError, match="too short"):
        ne.tasks.text(str(short), seq_len=8)
    with pytest.raises(ValueError, match="unknown split"):
        ne.tasks.text(str(short), split="test")
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        ne.tasks.text(str(short), model="lstm")


def test_loss_metrics_and_validation(corpus):
    task = ne.tasks.text(corpus, **SMALL)
    info = task.info
    assert info["vocab"] == len(set("the quick brown fox jumps over the lazy dog. "))
    assert 0 < info["unigram_entropy_bits"] < math.log2(info["vocab"])
    x0 = task.init_solution(jax.random.key(0))
    # A model with every parameter zero predicts the uniform distribution: loss log(vocab).
    zero = jax.tree_util.tree_map(jnp.zeros_like, x0)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x0_like(x)]), zero)
    evaluate = jax.jit(task.evaluate)
    evaluation, _ = evaluate(jax.random.key(1), (), batch)
    np.testing.assert_allclose(evaluation.metrics["loss"][0], math.log(info["vocab"]), rtol=1e-5)
    np.testing.assert_allclose(evaluation.fitness, -evaluation.metrics["loss"])
    np.testing.assert_allclose(evaluation.metrics["bits_per_char"], evaluation.metrics["loss"] / math.log(2))
    assert set(evaluation.metrics) == {"loss", "bits_per_char", "val_loss", "val_bits_per_char"}
    # Batches follow the key; validation windows are fixed.
    other, _ = evaluate(jax.random.key(2), (), batch)
    np.testing.assert_array_equal(other.metrics["val_loss"], evaluation.metrics["val_loss"])
    valid = ne.tasks.text(corpus, split="validation", **SMALL)
    a, _ = jax.jit(valid.evaluate)(jax.random.key(1), (), batch)
    b, _ = jax.jit(valid.evaluate)(jax.random.key(2), (), batch)
    np.testing.assert_array_equal(a.fitness, b.fitness)


def x0_like(x):
    return x + 0.1


@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_eggroll_fast_path(corpus, model):
    task = ne.tasks.text(corpus, model=model, **SMALL)
    strategy = ne.strategies.make("eggroll", popsize=8, rank=2, sigma=0.2)
    state = strategy.init(jax.random.key(0), task.init_solution(jax.random.key(0)))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    key = jax.random.key(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every matrix (embeddings, GRU gates, attention, MLP) is intercepted
        fast, _ = jax.jit(lambda s, g: task.evaluate(key, (), ne.strategy.members(strategy, s, g)))(
            state, genotypes
        )
    slow, _ = jax.jit(lambda s, g: task.evaluate(key, (), ne.population(strategy, s, g)))(state, genotypes)
    for name in fast.metrics:
        np.testing.assert_allclose(fast.metrics[name], slow.metrics[name], rtol=1e-4)


def test_cli_trains_on_a_text_file(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    flags = ["--strategy", "eggroll", "--popsize", "8", "--generations", "2", "--hidden", "8"]
    flags += ["--max-steps", "8", "--episodes", "2", "--eval-episodes", "3", "--quiet"]
    assert cli.main(["train", "--env", f"text:{corpus}", *flags, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("final validation loss:")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_eval_bits_per_char"] == pytest.approx(-summary["final_eval_return"] / math.log(2))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "val_loss", "bits_per_char"} <= set(rows[0]) and len(rows) == 2
    assert ne.rl.evaluate_run(str(out)) == pytest.approx(summary["final_eval_return"], rel=1e-5)
    missing = tmp_path / "nope"
    assert cli.main(["train", "--env", f"text:{tmp_path / 'no.txt'}", *flags, "--out", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err and not os.path.exists(missing)
    uneven = ["--hidden", "8,16", "--generations", "1", "--quiet", "--out", str(missing)]
    assert cli.main(["train", "--env", "text", "--strategy", "eggroll", *uneven]) == 2
    assert "all equal" in capsys.readouterr().err
