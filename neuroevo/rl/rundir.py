"""The run directory: parameters, metric files, the learning curve, and reading a run back.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl``
and ``metrics.csv`` (one row per generation), ``learning_curve.png``,
``checkpoints/`` (orbax, atomic), ``final_params.msgpack`` and
``best_params.msgpack`` (flax serialisation), ``obs_stats.json`` (observation
statistics, when normalised) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

from neuroevo.rl.config import make_task, resolve


def _save_params(path: str, params: Any) -> None:
    from flax import serialization

    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(serialization.msgpack_serialize(serialization.to_state_dict(params)))
    os.replace(tmp, path)


def load_params(path: str, like: Any, check_shapes: bool = True) -> Any:
    """Parameters saved by a run, restored into the structure of ``like``.

    Raises ``ValueError`` naming the file if it is truncated, not a params file,
    or (``check_shapes``) holds parameters of another shape.
    """
    import jax
    import numpy as np
    from flax import serialization

    name = os.path.basename(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        params = serialization.from_state_dict(like, serialization.msgpack_restore(raw))
    except Exception as e:  # msgpack raises several kinds on a damaged file
        raise ValueError(f"{name} is truncated or not a params file ({path}: {e})") from None
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(like), strict=True):
        if check_shapes and np.shape(a) != np.shape(b):
            raise ValueError(
                f"{name} holds parameters of shape {np.shape(a)} where this run's policy has {np.shape(b)} "
                f"({path}): it is not this run's params file"
            )
    return params


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _columns(rows: list[dict]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


class _MetricsWriter:
    """Appends one row per generation to metrics.jsonl and metrics.csv.

    A resumed run's rows are read, but the files are only rewritten once the
    restore has worked: at the first block (or at :meth:`finish`), rows past the
    generation the run continued from (written before it was killed) are
    dropped, so the files end up as an uninterrupted run's. Rewrites are atomic.
    """

    def __init__(self, out: str, resume: bool = False):
        self.jsonl = os.path.join(out, "metrics.jsonl")
        self.csv = os.path.join(out, "metrics.csv")
        self.rows = []
        self.columns = None
        self._trimmed = False
        if resume and os.path.exists(self.jsonl):
            with open(self.jsonl) as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        break
                    self.rows.append(row)

    def trim(self, generation: int) -> None:
        """Keep the rows up to ``generation`` and rewrite both files from them."""
        self.rows = [r for r in self.rows if r["generation"] <= generation]
        self.columns = _columns(self.rows) or None
        with open(self.jsonl + ".tmp", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        os.replace(self.jsonl + ".tmp", self.jsonl)
        self._write_csv()
        self._trimmed = True

    def _write_csv(self) -> None:
        with open(self.csv + ".tmp", "w", newline="") as f:
            if self.columns:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(self.rows)
        os.replace(self.csv + ".tmp", self.csv)

    def finish(self, generation: int) -> None:
        """The run ended at ``generation``: the files hold exactly its rows."""
        if not self._trimmed or (self.rows and self.rows[-1]["generation"] > generation):
            self.trim(generation)

    @property
    def env_steps_total(self) -> float:
        return self.rows[-1].get("env_steps_total", 0.0) if self.rows else 0.0

    def __call__(self, generation: int, state: Any, metrics: dict) -> None:
        n = len(metrics["best"])
        if not self._trimmed:  # the first block of this process: the restore worked
            self.trim(generation - n)
        new = []
        total = self.env_steps_total
        for i in range(n):
            row = {"generation": generation - n + i + 1}
            row.update({k: float(v[i]) for k, v in metrics.items()})
            if "env_steps" in row:
                total += row["env_steps"]
                row["env_steps_total"] = total
            new.append(row)
        with open(self.jsonl, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        self.rows.extend(new)
        if self.columns is None or set(_columns(new)) - set(self.columns):
            self.columns = _columns(self.rows)
            self._write_csv()
        else:
            with open(self.csv, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerows(new)


def plot_learning_curve(rows: list[dict], path: str, title: str = "") -> None:
    """best / generation-best / mean fitness per generation (and env steps on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, style in (
        ("best", "best so far", "-"),
        ("generation_best", "generation best", ":"),
        ("mean", "population mean", "--"),
    ):
        if rows and key in rows[0]:
            ax.plot(gens, [r[key] for r in rows], style, label=label)
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if rows and "env_steps_total" in rows[-1]:
        total = rows[-1]["env_steps_total"]
        ax.set_title(f"{title}  ({total:,.0f} env steps)".strip())
    else:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _save_obs_stats(path: str, task_state: Any) -> None:
    """The observation statistics a saved policy was trained with (for ``eval``)."""
    import numpy as np

    if hasattr(task_state, "_asdict"):
        _write_json(path, {k: np.asarray(v).tolist() for k, v in task_state._asdict().items()})


def _load_task_state(run_dir: str, task: Any) -> Any:
    import jax
    import jax.numpy as jnp

    state = task.init(jax.random.key(0))
    path = os.path.join(run_dir, "obs_stats.json")
    if hasattr(state, "_asdict") and os.path.exists(path):
        try:
            with open(path) as f:
                saved = json.load(f)
            state = type(state)(**{k: jnp.asarray(saved[k], jnp.float32) for k in state._asdict()})
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"obs_stats.json is truncated or not this run's statistics ({path}: {e})"
            ) from None
    return state


def load_config(run_dir: str) -> dict[str, Any]:
    """The resolved config a run directory was trained with."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} is not a run directory (config.json is missing)")
    try:
        with open(path) as f:
            stored = json.load(f)
    except ValueError as e:
        raise ValueError(f"config.json is truncated or not a run config ({path}: {e})") from None
    if not isinstance(stored, dict):
        raise ValueError(f"config.json is not a run config ({path}: a table of settings was expected)")
    return resolve(None, **stored)


def load_run(run_dir: str, which: str = "final") -> tuple[dict, Any, Any, Any]:
    """``(config, task, task_state, params)`` of a finished run's ``final`` or ``best`` policy."""
    import jax

    if which not in ("final", "best"):
        raise ValueError(f"unknown policy {which!r}; valid: 'final', 'best'")
    config = load_config(run_dir)
    params_path = os.path.join(run_dir, f"{which}_params.msgpack")
    if not os.path.exists(params_path):
        raise ValueError(f"{params_path} is missing: the run has not finished (resume it first)")
    task = make_task(config)
    like = task.init_solution(jax.random.key(0))
    # A NEAT network's tables have the strategy's capacity (max_nodes, max_conns), not the template's.
    check_shapes = config["strategy"] != "neat"
    return config, task, _load_task_state(run_dir, task), load_params(params_path, like, check_shapes)
