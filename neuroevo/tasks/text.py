"""Character-level next-token prediction: a supervised task for large networks.

The data is a text file (any UTF-8 text); by default, the Python standard
library's own source files, which exist on every machine with no download:
the top-level ``*.py`` files of ``sysconfig.get_paths()["stdlib"]`` in sorted
name order, concatenated (a newline between files) up to ``max_mib`` MiB. (The
default corpus is therefore fixed for a given Python version, and differs a
little between versions.) Tokens are the corpus's distinct bytes (ASCII text:
its characters), at most 256. The last ``validation_fraction`` of the corpus
is held out.

The model (``model=``) is small and written with flax layers that
``population_apply`` intercepts, so ``eggroll`` evaluates a population of them
as one batched forward pass:

- ``"gru"`` (the default, :class:`GRULanguageModel`): a token embedding
  (``nn.Embed``), ``layers`` GRUs (``nn.RNN(nn.GRUCell)``, whose gates are
  ``nn.Dense``) and a ``nn.Dense`` read-out. A recurrent model, as in the
  paper's language-model experiments: one character at a time, where every
  member of a dense population re-reads its own weights at every step.
- ``"transformer"`` (:class:`Transformer`): token and position embeddings,
  pre-norm blocks of causal multi-head self-attention
  (``nn.MultiHeadDotProductAttention``, whose projections are
  ``nn.DenseGeneral``) and a GELU MLP, a final norm and a read-out.

Each generation every member sees the same ``batch_size`` windows of
``seq_len + 1`` characters drawn from the training split with the
generation's key (common random numbers); fitness is minus the mean
cross-entropy (nats per character) of predicting each next character. Metrics
(per member): ``loss``, ``bits_per_char``, and on a fixed validation batch
(``val_batch`` windows spread over the held-out split) ``val_loss`` and
``val_bits_per_char``. ``split="validation"`` makes the fitness itself the loss
on ``batch_size`` fixed validation windows (a final evaluation).
"""

from __future__ import annotations

import glob
import math
import os
import sysconfig
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.strategy import as_members, static_int
from neuroevo.tasks.base import Evaluation, Task

DEFAULT_MIB = 2.0


class Transformer(nn.Module):
    """A small causal transformer over token ids ``(..., T)``, returning logits ``(..., T, vocab)``."""

    vocab: int
    seq_len: int
    width: int = 64
    layers: int = 2
    heads: int = 4

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        length = tokens.shape[-1]
        x = nn.Embed(self.vocab, self.width, name="embed")(tokens)
        x = x + nn.Embed(self.seq_len, self.width, name="position")(jnp.arange(length))
        mask = nn.make_causal_mask(tokens)
        for _ in range(self.layers):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, h, mask=mask)
            h = nn.LayerNorm()(x)
            x = x + nn.Dense(self.width)(nn.gelu(nn.Dense(4 * self.width)(h)))
        return nn.Dense(self.vocab)(nn.LayerNorm()(x))


class GRULanguageModel(nn.Module):
    """A character-level GRU over token ids ``(..., T)``, returning logits ``(..., T, vocab)``."""

    vocab: int
    width: int = 128
    layers: int = 1

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = nn.Embed(self.vocab, self.width, name="embed")(tokens)
        lead = x.shape[:-2]
        x = x.reshape((-1,) + x.shape[-2:])  # nn.RNN wants one batch axis
        for _ in range(self.layers):
            x = nn.RNN(nn.GRUCell(self.width))(x)
        return nn.Dense(self.vocab)(x).reshape(lead + x.shape[-2:-1] + (self.vocab,))


MODELS = ("gru", "transformer")


def default_corpus_files() -> list[str]:
    """The default corpus's files: the standard library's top-level ``*.py``, sorted by name."""
    return sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))


def read_corpus(corpus: str | None = None, max_mib: float = DEFAULT_MIB) -> bytes:
    """The corpus's bytes (at most ``max_mib`` MiB); ``ValueError`` if it is missing, empty or not text."""
    if not max_mib > 0:
        raise ValueError(f"max_mib must be positive, got {max_mib!r}")
    limit = int(max_mib * 2**20)
    if corpus is None:
        files = default_corpus_files()
        if not files:
            raise ValueError(f"no Python source files in {sysconfig.get_paths()['stdlib']!r}: pass corpus=")
        parts, size = [], 0
        for path in files:
            with open(path, "rb") as f:
                parts.append(f.read() + b"\n")
            size += len(parts[-1])
            if size >= limit:
                break
        data, name = b"".join(parts)[:limit], "the default corpus"
    else:
        if not isinstance(corpus, str | os.PathLike) or not os.path.isfile(corpus):
            raise ValueError(f"text corpus {corpus!r} does not exist (give the path of a text file)")
        with open(corpus, "rb") as f:
            data = f.read(limit)
        name = f"text corpus {os.fspath(corpus)!r}"
    if not data:
        raise ValueError(f"{name} is empty")
    if b"\x00" in data:
        raise ValueError(f"{name} is not text (it holds NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 4:  # a character cut at the size limit is fine
            raise ValueError(f"{name} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    return data


def unigram_entropy_bits(ids: np.ndarray, vocab: int) -> float:
    """The entropy (bits per character) of the corpus's character frequencies."""
    p = np.bincount(ids, minlength=vocab) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def text(
    corpus: str | None = None,
    *,
    seq_len: int = 64,
    batch_size: int = 1,
    val_batch: int = 1,
    model: str = "gru",
    width: int = 128,
    layers: int = 1,
    heads: int = 4,
    max_mib: float = DEFAULT_MIB,
    validation_fraction: float = 0.1,
    split: str = "train",
) -> Task:
    """Character-level language modelling (see the module docstring).

    Args:
      corpus: path of a UTF-8 text file; None: the Python standard library's sources.
      seq_len: characters predicted per window (the model's context).
      batch_size: windows per member per generation (the same for every member).
      val_batch: fixed validation windows scored every generation (``val_loss``).
      model: ``"gru"`` or ``"transformer"`` (see the module docstring).
      width, layers: the model's width and depth; heads: the transformer's attention heads.
      max_mib: read at most this many MiB of the corpus.
      validation_fraction: the held-out tail of the corpus.
      split: ``"train"`` (fitness on random training windows) or ``"validation"``
        (fitness on ``batch_size`` fixed validation windows).
    """
    for name, value in [
        ("seq_len", seq_len),
        ("batch_size", batch_size),
        ("width", width),
        ("layers", layers),
    ]:
        static_int(name, value, 1)
    static_int("val_batch", val_batch, 0)
    static_int("heads", heads, 1)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(map(repr, MODELS))}")
    if model == "transformer" and width % heads:
        raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
    if split not in ("train", "validation"):
        raise ValueError(f"unknown split {split!r}; valid: 'train', 'validation'")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    data = np.frombuffer(read_corpus(corpus, max_mib), np.uint8)
    alphabet = np.unique(data)
    lookup = np.zeros(256, np.int32)
    lookup[alphabet] = np.arange(len(alphabet), dtype=np.int32)
    ids = lookup[data]
    window = seq_len + 1
    n_val = max(int(len(ids) * validation_fraction), window)
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    if len(train_ids) < window:
        raise ValueError(
            f"the corpus has {len(ids)} characters: too short for seq_len={seq_len} with "
            f"{n_val} held out for validation (use a longer corpus or a shorter seq_len)"
        )
    vocab = len(alphabet)
    if model == "gru":
        network = GRULanguageModel(vocab=vocab, width=width, layers=layers)
    else:
        network = Transformer(vocab=vocab, seq_len=seq_len, width=width, layers=layers, heads=heads)
    train_tokens = train_ids.astype(np.uint8 if vocab <= 256 else np.int32)

    def fixed_windows(count: int) -> np.ndarray:
        """``count`` windows spread evenly over the validation split (the same every time)."""
        starts = np.linspace(0, len(val_ids) - window, count).astype(np.int64)
        return np.stack([val_ids[s : s + window] for s in starts] or [np.zeros(window)]).astype(np.int32)[
            :count
        ]

    def sample(key: jax.Array, count: int) -> jax.Array:
        """``count`` random training windows ``(count, seq_len + 1)`` of token ids."""
        starts = jax.random.randint(key, (count,), 0, len(train_tokens) - window + 1)
        table = jnp.asarray(train_tokens)
        return jax.vmap(lambda s: jax.lax.dynamic_slice(table, (s,), (window,)))(starts).astype(jnp.int32)

    def loss(params: Any, tokens: jax.Array) -> jax.Array:
        """Mean cross-entropy (nats per character) of next-character prediction on ``(..., T + 1)`` ids."""
        logits = network.apply(params, tokens[..., :-1])
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, tokens[..., 1:, None], axis=-1))

    val_windows = fixed_windows(batch_size if split == "validation" else val_batch)

    def evaluate(key, task_state, solutions):
        members = as_members(solutions)
        n = members.size
        each = lambda x: jnp.broadcast_to(x, (n,) + x.shape)  # noqa: E731
        if split == "validation":
            values = members.apply(loss, each(jnp.asarray(val_windows)))
            metrics = {"val_loss": values, "val_bits_per_char": values / math.log(2)}
            return Evaluation(fitness=-values, metrics=metrics), task_state
        values = members.apply(loss, each(sample(key, batch_size)))
        metrics = {"loss": values, "bits_per_char": values / math.log(2)}
        if val_batch:
            held_out = members.apply(loss, each(jnp.asarray(val_windows)))
            metrics.update(val_loss=held_out, val_bits_per_char=held_out / math.log(2))
        return Evaluation(fitness=-values, metrics=metrics), task_state

    def init_solution(key: jax.Array) -> Any:
        return network.init(key, jnp.zeros((seq_len,), jnp.int32))

    info = {
        "name": "text",
        "corpus": "stdlib" if corpus is None else os.fspath(corpus),
        "characters": int(len(ids)),
        "vocab": vocab,
        "alphabet": bytes(alphabet.tolist()),
        "unigram_entropy_bits": unigram_entropy_bits(ids, vocab),
        "model": network,
        "apply": network.apply,
        "loss": loss,
        "sample": sample,
        "validation_windows": lambda count: fixed_windows(count),
        "members": True,  # evaluates through Members.apply: eggroll's fast path
    }
    return Task(init=lambda key: (), evaluate=evaluate, init_solution=init_solution, info=info)
