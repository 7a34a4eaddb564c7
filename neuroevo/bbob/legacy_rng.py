"""BBOB's legacy instance generator (the 2009 random numbers every COCO ``bbob`` instance is built from).

Host-side NumPy float64, computed once per problem: the uniform generator (a
Park-Miller minimal-standard generator behind a 32-slot shuffle table), its
Box-Muller Gaussians, the Gram-Schmidt rotations, the optimum ``xopt`` and the
offset ``fopt``. Written from the published algorithm (COCO's
``suite_bbob_legacy_code.c``) so the numbers agree with COCO's bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

_M = 2147483647  # 2**31 - 1
_A, _Q, _R = 16807, 127773, 2836


def _step(seed: int) -> int:
    hi = seed // _Q  # seed is positive here, so floor division is the C cast
    seed = _A * (seed - hi * _Q) - _R * hi
    return seed + _M if seed < 0 else seed


def unif(n: int, seed: int) -> np.ndarray:
    """``n`` uniform numbers in (0, 1] from ``seed`` (COCO's ``bbob2009_unif``)."""
    seed = max(abs(int(seed)), 1)
    table = [0] * 32
    for i in range(39, -1, -1):
        seed = _step(seed)
        if i < 32:
            table[i] = seed
    current = table[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        seed = _step(seed)
        j = current // 67108865
        current = table[j]
        table[j] = seed
        out[i] = current / 2.147483647e9
    out[out == 0.0] = 1e-99
    return out


def gauss(n: int, seed: int) -> np.ndarray:
    """``n`` standard normal numbers (Box-Muller on ``unif(2 n, seed)``)."""
    u = unif(2 * n, seed)
    g = np.sqrt(-2.0 * np.log(u[:n])) * np.cos(2.0 * math.pi * u[n:])
    g[g == 0.0] = 1e-99
    return g


def rotation(seed: int, dim: int) -> np.ndarray:
    """A ``dim`` x ``dim`` orthogonal matrix: Gram-Schmidt on the columns of a Gaussian matrix."""
    b = gauss(dim * dim, seed).reshape(dim, dim).T.copy()  # b[i, j] = g[j * dim + i]
    for i in range(dim):
        col = b[:, i]
        for j in range(i):
            col -= np.dot(col, b[:, j]) * b[:, j]
        col /= math.sqrt(np.dot(col, col))
    return b


def xopt(seed: int, dim: int) -> np.ndarray:
    """The usual optimum: uniform on a 1e-4 grid of [-4, 4), never exactly 0."""
    x = 8.0 * np.floor(1e4 * unif(dim, seed)) / 1e4 - 4.0
    x[x == 0.0] = -1e-5
    return x


_FOPT_SEED = {4: 3, 18: 17}


def fopt(function: int, instance: int) -> float:
    """The objective offset: a rounded Cauchy-like number in [-1000, 1000].

    Its seed is the function number except f4 (uses f3's) and f18 (uses f17's).
    """
    seed = _FOPT_SEED.get(function, function) + 10000 * instance
    g1 = gauss(1, seed)[0]
    g2 = gauss(1, seed + 1)[0]
    return float(min(1000.0, max(-1000.0, math.floor(100.0 * 100.0 * g1 / g2 + 0.5) / 100.0)))
