"""Where a campaign's dimensions compile and run: in threads of this process, or in processes
of their own (one per dimension, on a Linux CPU), and with which XLA compile options.

On a CPU a campaign program runs mostly on one core, and tracing holds Python's lock:
separate processes compile and run the dimensions side by side on every core. One
worker (:mod:`neuroevo.bench.worker`) forks a process per dimension; the worker is
forked from this process when it has not started a JAX backend (no JAX thread to
fork: no interpreter start and no second JAX import, about 0.6 s), else it is a new
interpreter that imports JAX. The largest dimension (the longest run) keeps the normal
priority; the others yield to it (``nice``), so that it is not the last to finish.
With as many processes as cores, each starts XLA with one thread (its spare threads
would only spin) and compiles one LLVM module.

In threads (a GPU, or ``processes=False``) every dimension compiles at once (XLA
compiles on several cores) and each runs as soon as it is compiled, one after the
other (concurrent executions of XLA CPU programs can deadlock), the smallest first.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.extend.backend

from neuroevo.bench import program
from neuroevo.bench.coco_files import import_pyplot

# XLA's CPU backend spends most of a campaign program's compilation in LLVM on its
# many small fusions; its older (non-MLIR) fusion emitters at LLVM optimisation
# level 1 compile it about twice as fast, for a run a few percent slower.
CPU_COMPILE_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}
# one LLVM module instead of several compiled in parallel: about 5% less CPU time on one thread
ONE_THREAD_COMPILE_OPTIONS = {**CPU_COMPILE_OPTIONS, "xla_cpu_parallel_codegen_split_count": 1}
# JAX settings a worker process takes from its parent
WORKER_CONFIG = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs", "jax_platforms")
NICE = 5  # the priority the smaller dimensions' processes yield to the largest


def compile_options(cpu: bool, one_thread: bool = False) -> dict:
    """The XLA compile options of a campaign program: the CPU's (above), none elsewhere."""
    if not cpu:
        return {}
    return dict(ONE_THREAD_COMPILE_OPTIONS if one_thread else CPU_COMPILE_OPTIONS)


def backend_started() -> bool:
    """Whether this process has started a JAX backend (which has threads: no fork then).

    Every device, array and compilation goes through ``jax.extend.backend.get_backend``,
    which caches what it returns: an empty cache means no backend yet. Without that cache
    (another JAX version), the answer is yes, the safe one.
    """
    info = getattr(jax.extend.backend.get_backend, "cache_info", None)
    return True if info is None else info().currsize > 0


def cpu_backend() -> bool:
    """Whether JAX's default backend is (or will be) the CPU, without starting a backend
    when none is started yet (so that the campaign's worker can still be forked): no
    ``jax_platforms`` but the CPU, or no accelerator plugin installed."""
    if backend_started():
        return jax.default_backend() == "cpu"
    platforms = jax.config.jax_platforms
    if platforms:
        return all(p.strip() == "cpu" for p in platforms.split(","))
    return not _accelerator_installed()


def _accelerator_installed() -> bool:
    """A JAX plugin (found by JAX as a ``jax_plugins`` module or entry point) or libtpu."""
    import importlib.metadata
    import importlib.util
    import pkgutil

    if importlib.util.find_spec("libtpu") is not None:
        return True
    if list(importlib.metadata.entry_points(group="jax_plugins")):
        return True
    try:
        import jax_plugins
    except ImportError:
        return False
    return any(True for _ in pkgutil.iter_modules(jax_plugins.__path__))


def in_threads(jobs: dict[int, program.Job], progress, finished) -> dict:
    """Every dimension's program compiled at once in threads, each run as soon as it is compiled,
    one after the other, the smallest dimension first (it compiles first)."""
    options = compile_options(jax.default_backend() == "cpu")

    def prepare(dim):
        with jax.enable_x64(True):
            return program.prepare(jobs[dim], options)

    order = sorted(jobs)
    out = {}
    with jax.enable_x64(True), ThreadPoolExecutor(max_workers=len(order)) as pool:
        runners = {dim: pool.submit(prepare, dim) for dim in order}
        for dim in order:
            out[dim] = runners[dim].result()(progress)
            if finished is not None:
                finished(out[dim])
    return out


class _Forked:
    """The campaign's worker forked from this process (JAX imported, no backend started)."""

    def __init__(self, batch, tmp, err):
        from neuroevo.bench import worker

        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the worker: its own process group (killed as one), then serve
            code = 1
            try:
                os.setsid()
                os.close(read)
                code = worker.serve(batch, tmp, write, err.fileno())
            finally:
                os._exit(code)
        os.close(write)
        self.stdout = os.fdopen(read, "rb")
        self.code = None

    def poll(self):
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self):
        if self.code is None:
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.code


def in_processes(jobs: dict[int, program.Job], progress, finished) -> dict:
    """Each dimension in its own process, all at once (see the module docstring)."""
    import pickle
    import signal
    import subprocess
    import sys
    import tempfile
    import threading

    config = {k: getattr(jax.config, k) for k in WORKER_CONFIG if getattr(jax.config, k, None) is not None}
    order = sorted(jobs, reverse=True)
    one_thread = len(jobs) >= len(os.sched_getaffinity(0))
    options = compile_options(True, one_thread)
    batch = [
        {"job": jobs[dim], "config": config, "nice": 0 if rank == 0 else NICE, "one_thread": one_thread,
         "compile_options": options}
        for rank, dim in enumerate(order)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "stderr"), "wb") as err:  # a file, not a pipe: it cannot fill up
            if not backend_started():
                p = _Forked(batch, tmp, err)
            else:
                package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                path = os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))
                p = subprocess.Popen(
                    [sys.executable, "-m", "neuroevo.bench.worker", tmp],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    env=dict(os.environ, PYTHONPATH=path), start_new_session=True,
                )  # fmt: skip
                p.stdin.write(pickle.dumps(batch))
                p.stdin.close()
        if finished is not None:  # the first plot's import, while the dimensions compile
            threading.Thread(target=import_pyplot, daemon=True).start()
        try:
            out = {}
            with p.stdout:
                for line in p.stdout:
                    fields = line.split()
                    if len(fields) == 6 and fields[0] == b"progress":
                        progress(*map(int, fields[1:]))
                    elif len(fields) == 2 and fields[0] == b"done":
                        dim = int(fields[1])
                        with open(os.path.join(tmp, f"d{dim}.pkl"), "rb") as f:
                            out[dim] = pickle.load(f)
                        if finished is not None:
                            finished(out[dim])
            code = p.wait()
        finally:
            if p.poll() is None:  # an error or Ctrl-C here: stop the worker and its children
                os.killpg(p.pid, signal.SIGKILL)  # its own process group
                p.wait()
        if code != 0:
            with open(os.path.join(tmp, "stderr"), errors="replace") as f:
                tail = "\n".join(f.read().strip().splitlines()[-30:])
            raise RuntimeError(f"bbob campaign: a dimension's process failed:\n{tail}")
    return out
