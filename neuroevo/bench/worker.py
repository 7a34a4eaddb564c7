"""The dimensions of a BBOB campaign in processes of their own (``bbob_campaign(processes=True)``).

Forked by :mod:`neuroevo.bench.parallel`, or run as ``python -m neuroevo.bench.worker DIR``
with a pickled list of jobs on stdin (each a :class:`~neuroevo.bench.program.Job`, the
parent's JAX settings, the XLA compile options, a niceness).
It imports JAX once and forks one process per job before any JAX backend exists
(so no JAX thread is forked); each starts its own backend, compiles and runs its
dimension, prints ``progress <dim> <generation> <done> <problems> <evaluations>``
lines on stdout and pickles its :class:`~neuroevo.bench.results.DimensionResult` to
``DIR/d<dim>.pkl``; ``done <dim>`` follows when that process has exited. Exits
non-zero if any job failed (its traceback on stderr).
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def _single_threaded_backend() -> None:
    """Start JAX's CPU backend with one worker thread, then let the process use every core.

    XLA sizes its CPU thread pools by the cores the process may use when the backend
    starts. A campaign program gains little from a second thread (a generation is
    hundreds of small kernels), and the idle worker threads spin: with every core
    busy with the other dimensions' processes, one thread per process does the same
    work in about three quarters of the CPU time (8.7 s of CPU instead of 11.3 s for
    d = 10 alone, 4% more wall time).
    """
    import jax

    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        jax.devices()
    finally:  # every thread, the ones the backend started included
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cores)
            except OSError:
                pass


def _run(job: dict, out_dir: str, emit) -> None:
    import jax

    if job.get("nice"):
        os.nice(job["nice"])
    for name, value in job["config"].items():
        jax.config.update(name, value)
    jax.config.update("jax_enable_x64", True)
    from neuroevo.bench import program

    if job.get("one_thread"):
        _single_threaded_backend()

    def progress(dim, gen, done, total, evals):
        emit(f"progress {dim} {gen} {done} {total} {evals}")

    dim = job["job"].dimension
    result = program.prepare(job["job"], job["compile_options"])(progress)
    with open(os.path.join(out_dir, f"d{dim}.pkl"), "wb") as f:
        pickle.dump(result, f)


def serve(jobs: list, out_dir: str, out_fd: int, err_fd: int) -> int:
    """Fork a process per job, wait for them all; lines go to ``out_fd``, tracebacks to ``err_fd``.
    Returns the exit status: 0, or 1 if a job failed."""
    out = os.fdopen(os.dup(out_fd), "w", buffering=1)
    err = os.fdopen(os.dup(err_fd), "w", buffering=1)

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    children = {}
    for job in jobs:
        pid = os.fork()
        if pid == 0:  # the child: run the job, never return into this loop
            code = 0
            try:
                _run(job, out_dir, emit)
            except BaseException:
                traceback.print_exc(file=err)
                code = 1
            finally:
                out.flush()
                err.flush()
                os._exit(code)
        children[pid] = job["job"].dimension
    failed = []
    for _ in range(len(children)):
        pid, status = os.wait()
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(children[pid])
        else:
            emit(f"done {children[pid]}")
    if failed:
        err.write(f"dimension(s) {sorted(failed)} failed\n")
    err.flush()
    return 1 if failed else 0


def main() -> None:
    jobs = pickle.load(sys.stdin.buffer)
    import jax  # noqa: F401  (imported once, before forking; no backend is started here)

    from neuroevo.bench import program  # noqa: F401

    sys.exit(serve(jobs, sys.argv[1], sys.stdout.fileno(), sys.stderr.fileno()))


if __name__ == "__main__":
    main()
