"""One dimension of a BBOB campaign in its own process (``bbob_campaign(processes=True)``).

Run as ``python -m neuroevo.bench._bbob_worker RESULT_PATH`` with the pickled
arguments of ``bbob._prepare`` and the parent's JAX settings on stdin. It prints
``progress <dim> <generation> <done> <problems> <evaluations>`` lines on stdout
and pickles the :class:`~neuroevo.bench.bbob.DimensionResult` to ``RESULT_PATH``.
"""

from __future__ import annotations

import os
import pickle
import sys


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


def main() -> None:
    job = pickle.load(sys.stdin.buffer)
    if job.get("nice"):
        os.nice(job["nice"])
    import jax

    for name, value in job["config"].items():
        jax.config.update(name, value)
    jax.config.update("jax_enable_x64", True)
    if job.get("one_thread"):
        _single_threaded_backend()
    from neuroevo.bench import bbob

    def progress(dim, gen, done, total, evals):
        print(f"progress {dim} {gen} {done} {total} {evals}", flush=True)

    result = bbob._prepare(*job["args"])(progress)
    with open(sys.argv[1], "wb") as f:
        pickle.dump(result, f)


if __name__ == "__main__":
    main()
