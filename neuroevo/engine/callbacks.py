"""Loggers as run-loop callbacks: TensorBoard and Weights & Biases (``ne.callbacks``).

Each logger is a callable with the engine's callback signature
``fn(generation, state, block_metrics)``: ``ne.evolve`` calls it after every
compiled block with that block's per-generation metrics, and the logger writes
one row per generation, at step = the generation number (1 for the first
generation, as in a run directory's ``metrics.jsonl``)::

    with ne.callbacks.TensorBoard("runs/x/tensorboard") as tb:
        ne.evolve(key, strategy, task, x0, 100, callbacks=[tb])

**Resume.** A resumed run (``checkpoint_dir=`` or ``neuroevo train --resume``)
repeats, bit for bit, the generations logged after its last checkpoint. A
logger therefore skips the generations its log already holds when the run it
continues starts past generation 1, so the log of an interrupted and resumed
run holds each generation once, as an uninterrupted run's does.

The loggers are optional extras, imported when a logger is built:
``pip install 'neuroevo[tensorboard]'`` (the ``tensorboardX`` writer and
TensorBoard itself) and ``pip install 'neuroevo[wandb]'``. Only process 0 of a
multi-process run calls callbacks.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

LOGGERS = ("tensorboard", "wandb")


def _require(module: str, extra: str, what: str):
    """Import ``module`` or raise an ``ImportError`` naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{what} needs the '{extra}' extra ({module} is not installed): pip install 'neuroevo[{extra}]'"
        ) from e


def rows(generation: int, metrics: Mapping[str, Any]) -> list[tuple[int, dict[str, float]]]:
    """A block's metrics as ``(step, {name: value})`` rows; the block ends at ``generation``."""
    columns = {name: np.asarray(values, np.float64).reshape(-1) for name, values in metrics.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    first = generation - n + 1
    return [(first + i, {name: float(v[i]) for name, v in columns.items()}) for i in range(n)]


class _Logger:
    """Shared by the loggers: rows, skipping what the log already holds, closing."""

    _opened = False
    _last = 0  # the last step the log already holds (skipped on resume)

    def __call__(self, generation: int, state: Any, metrics: Mapping[str, Any]) -> None:
        new = rows(generation, metrics)
        if not new:
            return
        if not self._opened:
            self._opened = True
            self._last = self._open(first=new[0][0])
        for step, values in new:
            if step > self._last:
                self._write(step, values)
        self._flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


class TensorBoard(_Logger):
    """Write every history metric per generation to a TensorBoard event file in ``logdir``.

    Each metric is a scalar named after it (``best``, ``mean``, ``return`` ...)
    at step = generation. On resume (the first block starts past generation 1)
    the generations already in ``logdir``'s event files are not written again;
    a fresh run (starting at generation 1) in a directory that holds an older
    log marks it purged at step 1 (TensorBoard then shows the new run only):
    give each run its own directory.

    Args:
      logdir: the directory of the event files (created if missing).
      flush_secs: how often the writer flushes by itself; each block is flushed anyway.

    Raises:
      ImportError: when the ``tensorboard`` extra is not installed.
    """

    def __init__(self, logdir: str, *, flush_secs: int = 30):
        if not isinstance(logdir, (str, os.PathLike)) or not str(logdir):
            raise ValueError(f"logdir must be a directory path, got {logdir!r}")
        self._tensorboardx = _require("tensorboardX", "tensorboard", "ne.callbacks.TensorBoard")
        _require("tensorboard", "tensorboard", "ne.callbacks.TensorBoard")  # reads the log back on resume
        self.logdir = os.fspath(logdir)
        self.flush_secs = flush_secs
        self._writer = None

    def _open(self, first: int) -> int:
        last = max(tensorboard_steps(self.logdir).values(), default=0) if first > 1 else 0
        purge = 1 if first == 1 and glob.glob(os.path.join(self.logdir, "events.out.tfevents.*")) else None
        # The writer names its file after the second it opens it; a suffix in nanoseconds keeps two
        # writers of one second apart (else the second overwrites the first) and in time order.
        self._writer = self._tensorboardx.SummaryWriter(
            self.logdir, purge_step=purge, flush_secs=self.flush_secs, filename_suffix=f".{time.time_ns()}"
        )
        return last

    def _write(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(name, value, global_step=step)

    def _flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (a later call opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._opened = False


def tensorboard_scalars(logdir: str, purge: bool = True) -> dict[str, list[tuple[int, float]]]:
    """The scalars of ``logdir``'s event files: ``{tag: [(step, value), ...]}`` in file order.

    ``purge=True`` reads them as TensorBoard shows them (events a restarted writer
    marked purged are dropped); ``purge=False`` returns every event on disk.
    Needs the ``tensorboard`` extra.
    """
    module = _require(
        "tensorboard.backend.event_processing.event_accumulator", "tensorboard", "reading event files"
    )
    accumulator = module.EventAccumulator(
        os.fspath(logdir), size_guidance={module.SCALARS: 0}, purge_orphaned_data=purge
    )
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def tensorboard_steps(logdir: str) -> dict[str, int]:
    """The last step of each scalar in ``logdir``'s event files (none: an empty dict)."""
    if not glob.glob(os.path.join(os.fspath(logdir), "events.out.tfevents.*")):
        return {}
    return {tag: max(step for step, _ in events) for tag, events in tensorboard_scalars(logdir).items()}


MODES = ("offline", "online", "disabled")


class WandB(_Logger):
    """Log every history metric per generation to a Weights & Biases run.

    The default ``mode="offline"`` needs no network or account: the run is
    written under ``<dir>/wandb/offline-run-<date>-<id>/`` and can be uploaded
    later with ``wandb sync``. History rows have ``_step`` = generation.

    Args:
      project: the W&B project.
      dir: the directory wandb writes its ``wandb/`` folder in.
      mode: ``"offline"``, ``"online"`` or ``"disabled"``.
      name: the run's display name.
      id: the run id; default a new one, or with ``resume=True`` the id of the
        newest run under ``dir``. An id names one run: a second run with the
        same id continues it.
      resume: continue the newest run under ``dir`` (its id): generations its
        offline files (or, online, the server) already hold are not logged again.
      config: the run's config (hyperparameters), shown and searchable in W&B.
      group: a group name (e.g. a sweep's).
      **init: other keyword arguments of ``wandb.init``.

    Raises:
      ImportError: when the ``wandb`` extra is not installed.
      ValueError: an unknown ``mode``, or ``resume=True`` with no run under ``dir``.
    """

    def __init__(
        self,
        project: str = "neuroevo",
        *,
        dir: str = ".",
        mode: str = "offline",
        name: str | None = None,
        id: str | None = None,
        resume: bool = False,
        config: Mapping[str, Any] | None = None,
        group: str | None = None,
        **init: Any,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._wandb = _require("wandb", "wandb", "ne.callbacks.WandB")
        self.dir = os.fspath(dir)
        if id is None and resume:
            id = latest_wandb_id(self.dir)
            if id is None:
                raise ValueError(f"resume=True: no wandb run under {self.dir}/wandb to continue")
        self.id = id or secrets.token_hex(4)
        self._resume = resume or id is not None
        self._settings = init.pop("settings", None)
        self._init = dict(
            project=project, mode=mode, name=name, group=group, config=dict(config or {}), **init
        )
        self.run = None

    def _open(self, first: int) -> int:
        os.makedirs(self.dir, exist_ok=True)
        wandb = self._wandb
        settings = self._settings or wandb.Settings(
            console="off", silent=True, disable_git=True, x_disable_stats=True
        )
        self.run = wandb.init(
            dir=self.dir,
            id=self.id,
            resume="allow" if self._resume else None,
            settings=settings,
            reinit="create_new",
            **self._init,
        )
        if first == 1:
            return 0
        logged = [row["_step"] for row in wandb_history(self.dir, self.id) if "_step" in row]
        return max([*logged, int(getattr(self.run, "starting_step", 0) or 0) - 1, 0])

    def _write(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def _flush(self) -> None:
        pass

    def close(self, timeout: float = 60.0) -> None:
        """Finish the run; offline, wait (up to ``timeout`` s) until its file is complete.

        wandb's service writes the run file after ``finish`` returns; waiting for
        its exit record means the file can be read back (or synced) at once.
        """
        if self.run is not None:
            path = getattr(self.run.settings, "sync_file", None)
            self.run.finish()
            if self._init["mode"] == "offline" and path:
                _wait_for_exit(path, timeout)
            self.run = None
        self._opened = False


def _wait_for_exit(path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and any(r.WhichOneof("record_type") == "exit" for r in wandb_records(path)):
            return
        time.sleep(0.05)


def _wandb_run_dirs(directory: str, id: str | None = None) -> list[str]:
    """wandb's run folders under ``directory/wandb`` (of run ``id``), oldest first."""
    pattern = os.path.join(os.fspath(directory), "wandb", f"*run-*-{id or '*'}")
    return sorted((d for d in glob.glob(pattern) if os.path.isdir(d)), key=os.path.basename)


def latest_wandb_id(directory: str) -> str | None:
    """The id of the newest wandb run under ``directory/wandb``, or None."""
    runs = _wandb_run_dirs(directory)
    return os.path.basename(runs[-1]).rsplit("-", 1)[-1] if runs else None


_BLOCK = 32768  # wandb's .wandb files are LevelDB logs (32 KiB blocks) after a 7-byte header


def wandb_records(path: str) -> Iterable[Any]:
    """The records (``wandb.proto.wandb_internal_pb2.Record``) of one ``.wandb`` file.

    A record cut short (a killed process) ends the file. Needs the ``wandb`` extra.
    """
    proto = _require("wandb.proto.wandb_internal_pb2", "wandb", "reading wandb runs")
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a wandb run file (no :W&B header)")
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        if len(chunk) < length:
            return
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # FULL/FIRST start, MIDDLE/LAST go on
        if kind in (1, 4):
            record = proto.Record()
            record.ParseFromString(pending)
            yield record


def wandb_history(directory: str, id: str | None = None) -> list[dict[str, Any]]:
    """The history rows of the wandb runs under ``directory/wandb`` (of run ``id``), oldest first.

    Reads the runs' ``.wandb`` files, so offline runs can be checked without
    syncing them. Each row maps metric names to values, with ``_step``.
    """
    out = []
    for run_dir in _wandb_run_dirs(directory, id):
        for path in sorted(glob.glob(os.path.join(run_dir, "*.wandb"))):
            for record in wandb_records(path):
                if record.WhichOneof("record_type") == "history":
                    out.append(
                        {
                            item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item
                        }
                    )
    return out


# --------------------------------------------------------------------------- #
# Names, as the command line gives them, and whole histories (sweeps).
# --------------------------------------------------------------------------- #


def parse_log(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Logger names from ``"tensorboard,wandb"`` or a list of such strings; unknown names raise."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    names = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in LOGGERS:
                raise ValueError(f"unknown logger {name!r}; valid: {', '.join(LOGGERS)}")
            if name not in names:
                names.append(name)
    return tuple(names)


def check(names: Sequence[str]) -> None:
    """Raise ``ImportError`` naming the extra when a logger of ``names`` is not installed."""
    modules = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb",)}
    for name in parse_log(names):
        for module in modules[name]:
            _require(module, name, f"--log {name}")


def make(
    name: str,
    out: str,
    *,
    run_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    resume: bool = False,
    group: str | None = None,
) -> TensorBoard | WandB:
    """The logger ``name`` writing under ``out``: ``out/tensorboard/`` or ``out/wandb/``.

    wandb's project and mode come from ``WANDB_PROJECT`` (default ``neuroevo``)
    and ``WANDB_MODE`` (default ``offline``).
    """
    if name == "tensorboard":
        return TensorBoard(os.path.join(out, "tensorboard"))
    if name == "wandb":
        return WandB(
            os.environ.get("WANDB_PROJECT", "neuroevo"),
            dir=out,
            mode=os.environ.get("WANDB_MODE", "offline"),
            name=run_name,
            resume=resume,
            config=config,
            group=group,
        )
    raise ValueError(f"unknown logger {name!r}; valid: {', '.join(LOGGERS)}")


def log_history(logger: Any, history: Mapping[str, Any]) -> None:
    """Hand a whole per-generation ``history`` to ``logger`` as one block, then close it."""
    with logger:
        generations = len(next(iter(history.values()))) if history else 0
        logger(generations, None, history)


def log_sweep(result: Any, out: str, names: Sequence[str], group: str = "sweep") -> None:
    """Log a finished sweep: one run per config x seed, named ``<config>, seed=<s>``.

    TensorBoard: ``out/tensorboard/<run>/``, so TensorBoard overlays the runs;
    wandb: one run per config x seed under ``out/wandb/`` in the group ``group``,
    its config the hyperparameter values and the seed.
    """
    for c, config in enumerate(result.configs):
        for s in range(len(result.keys)):
            label = ", ".join(f"{k}={v:.4g}" for k, v in config.items()) + f", seed={s}"
            history = {name: values[c, s] for name, values in result.history.items()}
            for name in names:
                if name == "tensorboard":
                    folder = label.replace(", ", "_").replace("=", "-")
                    logger = TensorBoard(os.path.join(out, "tensorboard", folder))
                else:
                    logger = make(name, out, run_name=label, config=dict(config, seed=s), group=group)
                log_history(logger, history)
