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


def load_params(path: str, like: Any) -> Any:
    """Parameters saved by a run, restored into the structure of ``like``."""
    from flax import serialization

    with open(path, "rb") as f:
        return serialization.from_state_dict(like, serialization.msgpack_restore(f.read()))


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


class _MetricsWriter:
    """Appends one row per generation to metrics.jsonl and metrics.csv.

    On resume, rows past the checkpoint's generation (written before the run was
    killed) are dropped, so the files end up as an uninterrupted run's.
    """

    def __init__(self, out: str, keep_until: int):
        self.jsonl = os.path.join(out, "metrics.jsonl")
        self.csv = os.path.join(out, "metrics.csv")
        self.rows = []
        if os.path.exists(self.jsonl):
            with open(self.jsonl) as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        break
                    if row["generation"] > keep_until:
                        break
                    self.rows.append(row)
        self.columns = list(self.rows[0]) if self.rows else None
        with open(self.jsonl, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        with open(self.csv, "w", newline="") as f:
            if self.columns:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(self.rows)

    @property
    def env_steps_total(self) -> float:
        return self.rows[-1].get("env_steps_total", 0.0) if self.rows else 0.0

    def __call__(self, generation: int, state: Any, metrics: dict) -> None:
        n = len(metrics["best"])
        new = []
        total = self.env_steps_total
        for i in range(n):
            row = {"generation": generation - n + i + 1}
            row.update({k: float(v[i]) for k, v in metrics.items()})
            if "env_steps" in row:
                total += row["env_steps"]
                row["env_steps_total"] = total
            new.append(row)
        if self.columns is None:
            self.columns = list(new[0])
            with open(self.csv, "w", newline="") as f:
                csv.DictWriter(f, self.columns).writeheader()
        with open(self.jsonl, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerows(new)
        self.rows.extend(new)


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
        with open(path) as f:
            saved = json.load(f)
        state = type(state)(**{k: jnp.asarray(saved[k], jnp.float32) for k in state._asdict()})
    return state


def load_config(run_dir: str) -> dict[str, Any]:
    """The resolved config a run directory was trained with."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} is not a run directory (config.json is missing)")
    with open(path) as f:
        return resolve(None, **json.load(f))


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
    return config, task, _load_task_state(run_dir, task), load_params(params_path, like)
