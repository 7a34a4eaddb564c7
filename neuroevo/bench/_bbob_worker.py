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


def main() -> None:
    job = pickle.load(sys.stdin.buffer)
    if job.get("nice"):
        os.nice(job["nice"])
    import jax

    for name, value in job["config"].items():
        jax.config.update(name, value)
    jax.config.update("jax_enable_x64", True)
    from neuroevo.bench import bbob

    def progress(dim, gen, done, total, evals):
        print(f"progress {dim} {gen} {done} {total} {evals}", flush=True)

    result = bbob._prepare(*job["args"])(progress)
    with open(sys.argv[1], "wb") as f:
        pickle.dump(result, f)


if __name__ == "__main__":
    main()
