"""The 24 noiseless BBOB functions in JAX, instance for instance the same as COCO's ``bbob`` suite.

``function(fid, dimension, instance)`` builds the instance's data on the host
(NumPy float64, with COCO's legacy generator) and returns a :class:`BBOBFunction`:
``f(x)`` for ``x`` of shape ``(..., dimension)`` returns shape ``(...)`` in the
dtype of ``x``; ``f.raw(x)`` (alias ``f.delta``) is ``f(x) - f.fopt`` computed
without ever adding ``fopt``, and rewritten where COCO's formula cancels near
the optimum (Rastrigin's ``d - sum cos``, Katsuura's ``prod - 1``, Gallagher's
``10 - max``, Weierstrass' ``sum - f0``, Griewank-Rosenbrock, Rosenbrock's
``z - 1``, Schwefel's constant), so that float32 runs can reach 1e-8.
``x - xopt`` is taken as ``(x - hi) - lo`` with ``xopt = hi + lo`` split in the
working dtype, so a float32 point next to the optimum is measured from the true
(float64) optimum. In float32, f16, f19 and f23 (sin/cos of 3^11 y, of Rosenbrock
values up to ~1e6, and terms of 2^32 y) carry the rotated point as a ``hi + lo``
pair (Ozaki-split float32 matrix products summed with two-sums, ``_matvec_dd``)
and reduce their phases exactly, which keeps them within 1e-4 of float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.bbob import legacy_rng as rng

NAMES = {
    1: "sphere",
    2: "separable ellipsoid",
    3: "Rastrigin",
    4: "Bueche-Rastrigin",
    5: "linear slope",
    6: "attractive sector",
    7: "step ellipsoid",
    8: "Rosenbrock",
    9: "rotated Rosenbrock",
    10: "ellipsoid",
    11: "discus",
    12: "bent cigar",
    13: "sharp ridge",
    14: "different powers",
    15: "rotated Rastrigin",
    16: "Weierstrass",
    17: "Schaffers F7",
    18: "ill-conditioned Schaffers F7",
    19: "Griewank-Rosenbrock",
    20: "Schwefel",
    21: "Gallagher 101 peaks",
    22: "Gallagher 21 peaks",
    23: "Katsuura",
    24: "Lunacek bi-Rastrigin",
}

# ---------------------------------------------------------------------------
# elementwise transformations (jnp, dtype of their input)


def _osz(x):
    """T_osz, written as ``x * exp(0.049 (sin(c1 t) + sin(c2 t)))``, t = 10 log|x|.

    COCO computes ``exp(t + ...) ** 0.1``, which underflows for |x| < 1e-31; the
    values agree elsewhere.
    """
    ax = jnp.abs(x)
    t = 10.0 * jnp.log(jnp.where(ax > 0, ax, 1.0))
    pos = x > 0
    # the coefficients chosen before the sines (two sines per element, not four)
    wiggle = jnp.sin(jnp.where(pos, 1.0, 0.55) * t) + jnp.sin(jnp.where(pos, 0.79, 0.31) * t)
    return x * jnp.exp(0.049 * wiggle)


def _asy(x, beta, e):
    """T_asy^beta: ``x ** (1 + beta e_i sqrt(x))`` where x > 0."""
    pos = x > 0
    xp = jnp.where(pos, x, 1.0)
    return jnp.where(pos, xp ** (1.0 + beta * e * jnp.sqrt(xp)), x)


def _pen(x, bound=5.0):
    """sum(max(0, |x| - bound)**2) over the last axis."""
    return jnp.sum(jnp.square(jnp.maximum(jnp.abs(x) - bound, 0.0)), axis=-1)


def _rastrigin(y):
    """10 (d - sum cos 2 pi y) + sum y**2, as 20 sum sin**2(pi y) + sum y**2 (no cancellation)."""
    return jnp.sum(20.0 * jnp.square(jnp.sin(jnp.pi * y)) + jnp.square(y), axis=-1)


def _rosenbrock_shifted(y):
    """Rosenbrock at z = y + 1, written in y so that it has no cancellation at z = 1."""
    a, b = y[..., :-1], y[..., 1:]
    return 100.0 * jnp.square(a * a + 2.0 * a - b) + a * a


def _split(y, bits):
    """``y`` as exact parts, each with at most ``bits`` significant bits (masking the significand)."""
    info = jnp.finfo(y.dtype)
    uint = jnp.uint32 if info.bits == 32 else jnp.uint64
    drop = info.nmant + 1 - bits  # low significand bits to clear
    mask = ~np.array((1 << drop) - 1, dtype=uint)
    parts, rest = [], y
    for _ in range(-(-(info.nmant + 1) // bits)):
        hi = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(rest, uint) & mask, y.dtype)
        parts.append(hi)
        rest = rest - hi  # exact: the cleared low bits
    return parts


def _frac_3k(y):
    """``3**k y mod 1`` in [-1/2, 1/2] for k = 0..11, shape ``y.shape + (12,)``, without rounding the product.

    ``y`` is split into parts whose products with ``3**k <= 3**11 < 2**18`` are
    exact, each reduced mod 1 exactly: the phase is as precise as ``y`` itself,
    where ``3**k y`` rounded in the working dtype (and ``pi`` times it) would lose
    up to 18 bits (f16's sin(pi 3^11 y)).
    """
    b = jnp.asarray(3.0 ** np.arange(12), dtype=y.dtype)
    bits = max(jnp.finfo(y.dtype).nmant + 1 - 18, 1)
    r = jnp.zeros(y.shape + (12,), y.dtype)
    for part in _split(y, bits):
        t = part[..., None] * b
        r = r + (t - jnp.round(t))
    return r - jnp.round(r)


def _two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth), elementwise."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _exact_sum(terms):
    """Sum of a list of same-shape arrays as ``hi + lo``, to about twice the working precision
    (a pairwise tree of two-sums; the rounding errors are added plainly)."""
    lo = None
    while len(terms) > 1:
        pairs = [_two_sum(a, b) for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        errs = [e for _, e in pairs]
        terms = [h for h, _ in pairs] + terms[len(pairs) * 2 :]
        err = sum(errs[1:], errs[0])
        lo = err if lo is None else lo + err
    return (terms[0], jnp.zeros_like(terms[0])) if lo is None else _two_sum(terms[0], lo)


def _slice_bits(d):
    """Significant bits per slice so that a length-``d`` dot product of slices is exact in float32."""
    return (24 - math.ceil(math.log2(d))) // 2


def _slice_count(d):
    return math.ceil(46 / _slice_bits(d))  # slices down to ~2^-46 of the largest entry


def _host_slices(m):
    """``m`` (float64) as a sum of slices ``(S, d, d)``: each row of a slice is a multiple of one power
    of 2 with at most ``_slice_bits(d) + 1`` significant bits (exact in float32)."""
    d = m.shape[-1]
    bits, rest, out = _slice_bits(d), np.asarray(m, dtype=np.float64), []
    for _ in range(_slice_count(d)):
        e = np.frexp(np.max(np.abs(rest), axis=-1, keepdims=True))[1]
        unit = np.ldexp(1.0, e - bits)
        out.append(np.round(rest / unit) * unit)
        rest = rest - out[-1]
    return np.stack(out)


def _slices(v, bits, count):
    """``v`` as ``count`` slices over the last axis (each a multiple of one power of 2, ``bits + 1``
    significant bits) plus the rest; every step is exact."""
    out, rest = [], v
    for _ in range(count):
        e = jnp.frexp(jnp.max(jnp.abs(rest), axis=-1, keepdims=True))[1]
        unit = jnp.ldexp(jnp.ones((), v.dtype), jnp.maximum(e - bits, -120))
        out.append(jnp.round(rest / unit) * unit)
        rest = rest - out[-1]
    return out, rest


def _matvec_dd(m, m_slices, z, z_lo):
    """``m (z + z_lo)`` as ``hi + lo`` (double-word accuracy), from float32 matrix products only.

    Ozaki's scheme: ``m`` (sliced on the host) and ``z`` are split into slices whose
    products sum exactly in float32 (``2 bits + log2 d <= 24``); the slice products
    that matter (about 20 matmuls) are added with two-sums.
    """
    count = m_slices.shape[0]
    zs, rest = _slices(z, _slice_bits(z.shape[-1]), count)
    terms = [_matvec(m_slices[a], zs[b]) for a in range(count) for b in range(count - a)]
    terms.append(_matvec(m, rest + z_lo))
    return _exact_sum(terms)


def _shift_dd(x, c):
    """``x - (hi + lo)`` (the optimum, split) as ``hi + lo``."""
    z_hi, z_lo = _two_sum(x, -c["hi"])
    return _two_sum(z_hi, z_lo - c["lo"])


def _mul_dd(terms_a, terms_b):
    """Exact partial products of two lists of parts, summed as ``hi + lo``."""
    return _exact_sum([a * b for a in terms_a for b in terms_b])


def _square_dd(h, h_lo):
    """``(h + h_lo)**2`` as ``hi + lo``."""
    half = (jnp.finfo(h.dtype).nmant + 2) // 2
    parts = _split(h, half)
    sq_hi, sq_lo = _mul_dd(parts, parts)
    return _two_sum(sq_hi, sq_lo + 2.0 * h * h_lo)


def _rosenbrock_shifted_dd(y, y_lo):
    """``_rosenbrock_shifted`` of ``y + y_lo`` as ``hi + lo`` (per pair of coordinates)."""
    a, a_lo, b, b_lo = y[..., :-1], y_lo[..., :-1], y[..., 1:], y_lo[..., 1:]
    a2, a2_lo = _square_dd(a, a_lo)
    q, q_lo = _exact_sum([a2, 2.0 * a, -b, a2_lo + 2.0 * a_lo - b_lo])
    # 10 q exactly: 10 has 3 significant bits, the parts of q at most nmant - 2
    q10, q10_lo = _exact_sum([10.0 * p for p in _split(q, jnp.finfo(q.dtype).nmant - 2)])
    q10_lo = q10_lo + 10.0 * q_lo
    big, big_lo = _square_dd(q10, q10_lo)
    return _exact_sum([big, a2, big_lo + a2_lo])


@cache
def _pi_parts(dtype_name, bits=4, count=12):
    """pi as ``count`` numbers of ``bits`` significant bits each (their products with n < 2^20 exact)."""
    parts, rest = [], math.pi
    for _ in range(count):
        m, e = math.frexp(rest)
        part = math.floor(m * 2**bits) / 2**bits * 2.0**e
        parts.append(part)
        rest -= part
    return np.asarray(parts, dtype=dtype_name)


def _sin2_dd(h, h_lo):
    """``sin(h + h_lo)**2`` for a double-word argument, reduced mod pi without rounding ``n pi``."""
    n = jnp.round(h / jnp.asarray(math.pi, h.dtype))
    r = h
    for p in _pi_parts(np.dtype(h.dtype).name):
        r = r - n * p
    return jnp.square(jnp.sin(r + h_lo))


def _matvec(m, z):
    """``m z`` over the last axis, in full precision (no TF32/bf16 passes on accelerators)."""
    return jnp.matmul(z, m.T, precision=jax.lax.Precision.HIGHEST)


# ---------------------------------------------------------------------------
# per-function instance data (host, float64) and evaluation (jnp)


@dataclass
class _Spec:
    xopt: np.ndarray  # reported optimum (COCO's best_parameter)
    consts: dict  # float64 arrays, cast to the working dtype at call time
    raw: Callable  # (x, z, c) -> f - fopt; z = x - c["center"] computed precisely
    center: np.ndarray | None = None  # the point z is measured from (default xopt)
    extra: dict = field(default_factory=dict)


def _exps(d):
    return np.arange(d) / (d - 1.0)


def _lam(alpha, d):
    """Diagonal of Lambda^alpha: alpha ** (0.5 i / (d - 1))."""
    return np.sqrt(alpha) ** _exps(d)


def _two_rot(seed, d, diag):
    """rot1 . diag(diag) . rot2 with rot1 from seed + 1e6 and rot2 from seed, as COCO builds it."""
    rot1 = rng.rotation(seed + 1000000, d)
    rot2 = rng.rotation(seed, d)
    return rot1, rot2, (rot1 * diag) @ rot2


def _f1(d, seed):
    return _Spec(rng.xopt(seed, d), {}, lambda x, z, c: jnp.sum(z * z, axis=-1))


def _f2(d, seed):
    return _Spec(
        rng.xopt(seed, d),
        {"w": 1e6 ** _exps(d)},
        lambda x, z, c: jnp.sum(c["w"] * jnp.square(_osz(z)), axis=-1),
    )


def _f3(d, seed):
    def raw(x, z, c):
        return _rastrigin(c["lam"] * _asy(_osz(z), 0.2, c["e"]))

    return _Spec(rng.xopt(seed, d), {"lam": _lam(10.0, d), "e": _exps(d)}, raw)


def _f4(d, seed):
    xo = rng.xopt(seed, d)
    xo[::2] = np.abs(xo[::2])
    even = (np.arange(d) % 2 == 0).astype(np.float64)

    def raw(x, z, c):
        y = _osz(z)
        y = y * c["lam"] * jnp.where((y > 0) & (c["even"] > 0), 10.0, 1.0)
        return _rastrigin(y) + 100.0 * _pen(x)

    return _Spec(xo, {"lam": _lam(10.0, d), "even": even}, raw)


def _f5(d, seed):
    sign = np.where(rng.xopt(seed, d) > 0, 1.0, -1.0)
    xo = 5.0 * sign

    def raw(x, z, c):
        # beyond the optimum's face the slope is flat: z_i = xopt_i where xopt_i x_i >= 25
        gap = jnp.where(c["xo"] * x < 25.0, -z, 0.0)  # xopt_i - z_i
        return jnp.sum(c["s"] * gap, axis=-1)

    return _Spec(xo, {"s": sign * 10.0 ** _exps(d), "xo": xo}, raw)


def _f6(d, seed):
    xo = rng.xopt(seed, d)
    _, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = _matvec(c["m"], z)
        s = jnp.sum(jnp.where(c["xo"] * y > 0, 1e4, 1.0) * y * y, axis=-1)
        return _osz(s) ** 0.9

    return _Spec(xo, {"m": m, "xo": xo}, raw)


def _f7(d, seed, pen=1.0):
    """Step ellipsoid; ``pen`` scales its boundary penalty (0 in the noisy suite's f113-f115)."""
    rot1 = rng.rotation(seed + 1000000, d)
    rot2 = rng.rotation(seed, d)

    def raw(x, z, c):
        zh = _matvec(c["q"], z)
        zt = jnp.where(jnp.abs(zh) > 0.5, jnp.round(zh), jnp.round(10.0 * zh) / 10.0)
        y = _matvec(c["r"], zt)
        core = jnp.maximum(1e-4 * jnp.abs(zh[..., 0]), jnp.sum(c["w"] * y * y, axis=-1))
        return 0.1 * core + pen * _pen(x)

    return _Spec(
        rng.xopt(seed, d), {"q": rot2 * _lam(10.0, d)[:, None], "r": rot1, "w": 100.0 ** _exps(d)}, raw
    )


def _rosen_factor(d):
    return max(1.0, math.sqrt(d) / 8.0)


def _f8(d, seed):
    def raw(x, z, c):
        return jnp.sum(_rosenbrock_shifted(c["k"] * z), axis=-1)

    return _Spec(0.75 * rng.xopt(seed, d), {"k": np.float64(_rosen_factor(d))}, raw)


def _f9(d, seed):
    rot = rng.rotation(seed, d)
    k = _rosen_factor(d)
    xo = rot.sum(axis=0) / (2.0 * k)  # where k R x + 0.5 = 1

    def raw(x, z, c):
        return jnp.sum(_rosenbrock_shifted(_matvec(c["m"], z)), axis=-1)

    return _Spec(xo, {"m": k * rot}, raw)


def _f10(d, seed, cond=1e6):
    """Ellipsoid of conditioning ``cond`` (1e4 in the noisy suite's f116-f118)."""

    def raw(x, z, c):
        return jnp.sum(c["w"] * jnp.square(_osz(_matvec(c["r"], z))), axis=-1)

    return _Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "w": cond ** _exps(d)}, raw)


def _f11(d, seed):
    w = np.ones(d)
    w[0] = 1e6

    def raw(x, z, c):
        return jnp.sum(c["w"] * jnp.square(_osz(_matvec(c["r"], z))), axis=-1)

    return _Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "w": w}, raw)


def _f12(d, seed):
    w = np.full(d, 1e6)
    w[0] = 1.0

    def raw(x, z, c):
        y = _matvec(c["r"], _asy(_matvec(c["r"], z), 0.5, c["e"]))
        return jnp.sum(c["w"] * y * y, axis=-1)

    return _Spec(
        rng.xopt(seed + 1000000, d), {"r": rng.rotation(seed + 1000000, d), "w": w, "e": _exps(d)}, raw
    )


def _f13(d, seed):
    _, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = _matvec(c["m"], z)
        return y[..., 0] ** 2 + 100.0 * jnp.sqrt(jnp.sum(y[..., 1:] ** 2, axis=-1))

    return _Spec(rng.xopt(seed, d), {"m": m}, raw)


def _f14(d, seed):
    def raw(x, z, c):
        y = jnp.abs(_matvec(c["r"], z))
        return jnp.sqrt(jnp.sum(y ** c["p"], axis=-1))

    return _Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "p": 2.0 + 4.0 * _exps(d)}, raw)


def _f15(d, seed):
    rot1, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = _asy(_osz(_matvec(c["r"], z)), 0.2, c["e"])
        return _rastrigin(_matvec(c["m"], y))

    return _Spec(rng.xopt(seed, d), {"r": rot1, "m": m, "e": _exps(d)}, raw)


def _f16(d, seed):
    rot1, _, m = _two_rot(seed, d, _lam(0.01, d))
    k = np.arange(12)

    def raw(x, z, c):
        if jnp.finfo(x.dtype).bits < 64:
            # phases 3^11 y: carry the rotations as hi + lo (T_osz's own rounding remains)
            u, u_lo = _matvec_dd(c["r"], c["r_slices"], *_shift_dd(x, c))
            y, y_lo = _matvec_dd(c["m"], c["m_slices"], _osz(u + u_lo), jnp.zeros_like(u))
        else:
            y, y_lo = _matvec(c["m"], _osz(_matvec(c["r"], z))), jnp.zeros_like(z)
        # cos(2 pi 3^k (y + 1/2)) - cos(pi 3^k) = 2 sin^2(pi 3^k y) since 3^k is odd
        phase = _frac_3k(y) + y_lo[..., None] * c["b"]
        s = jnp.sum(c["a2"] * jnp.square(jnp.sin(jnp.pi * phase)), axis=(-2, -1))
        return 10.0 * (s / d) ** 3 + (10.0 / d) * _pen(x)

    consts = {"r": rot1, "m": m, "a2": 2.0 * 0.5**k, "b": 3.0**k}
    consts |= {"r_slices": _host_slices(rot1), "m_slices": _host_slices(m)}
    return _Spec(rng.xopt(seed, d), consts, raw)


def _schaffers(cond, pen=10.0):
    """Schaffers F7 of conditioning ``cond``; ``pen`` scales the penalty (0 in f122-f124)."""

    def build(d, seed):
        rot1 = rng.rotation(seed + 1000000, d)
        rot2 = rng.rotation(seed, d)

        def raw(x, z, c):
            y = _matvec(c["m"], _asy(_matvec(c["r"], z), 0.5, c["e"]))
            t = y[..., :-1] ** 2 + y[..., 1:] ** 2
            s = t**0.25 * (1.0 + jnp.square(jnp.sin(50.0 * t**0.1)))
            return jnp.square(jnp.sum(s, axis=-1) / (d - 1.0)) + pen * _pen(x)

        return _Spec(rng.xopt(seed, d), {"r": rot1, "m": _lam(cond, d)[:, None] * rot2, "e": _exps(d)}, raw)

    return build


def _f19(d, seed, fac=10.0):
    """Griewank-Rosenbrock ``fac + fac mean(s / 4000 - cos s)`` (``fac`` is 1 in f125-f127)."""
    rot = rng.rotation(seed, d)
    k = _rosen_factor(d)
    xo = rot.sum(axis=0) / (2.0 * k)  # where k R x + 0.5 = 1

    def raw(x, z, c):
        # fac + fac mean(s / 4000 - cos s) = fac mean(s / 4000 + 2 sin^2(s / 2))
        if jnp.finfo(x.dtype).bits < 64:
            # cos of Rosenbrock values up to ~1e6: carry y and s as hi + lo, reduce s / 2 mod pi
            y, y_lo = _matvec_dd(c["m"], c["m_slices"], *_shift_dd(x, c))
            s, s_lo = _rosenbrock_shifted_dd(y, y_lo)
            sin2 = _sin2_dd(0.5 * s, 0.5 * s_lo)
        else:
            s = _rosenbrock_shifted(_matvec(c["m"], z))
            sin2 = jnp.square(jnp.sin(0.5 * s))
        return fac * jnp.mean(s / 4000.0 + 2.0 * sin2, axis=-1)

    return _Spec(xo, {"m": k * rot, "m_slices": _host_slices(k * rot)}, raw)


_SCHWEFEL_X0 = 420.96874637  # 100 * 2 |xopt|, where COCO puts each inner coordinate's optimum
_SCHWEFEL_C = 418.9828872724339


def _schwefel_h(v):
    return v * np.sin(np.sqrt(np.abs(v)))


@cache
def _schwefel_taylor():
    """Taylor coefficients c_1..c_12 of h(x0 + e) - h(x0), h(v) = v sin sqrt|v| (Cauchy integral, float64)."""
    r, n = 50.0, 256
    w = np.exp(2j * np.pi * np.arange(n) / n)
    vals = (_SCHWEFEL_X0 + r * w) * np.sin(np.sqrt(_SCHWEFEL_X0 + r * w))
    coef = np.fft.fft(vals)[:13].real / n / r ** np.arange(13)
    return coef[1:]


def _f20(d, seed):
    sign = np.where(rng.unif(d, seed) < 0.5, -1.0, 1.0)
    center = sign * 0.5 * 4.2096874637  # the xopt COCO's transformations use
    xo = sign * 0.5 * 4.2096874633  # COCO's best_parameter
    taylor = _schwefel_taylor()
    const = _SCHWEFEL_C - float(_schwefel_h(_SCHWEFEL_X0))

    def raw(x, z, c):
        q = c["sign"] * z  # s x - |xopt|
        q_prev = jnp.concatenate([jnp.zeros_like(q[..., :1]), q[..., :-1]], axis=-1)
        e = 100.0 * c["lam"] * (2.0 * q + 0.5 * q_prev)  # inner coordinate minus x0
        v = _SCHWEFEL_X0 + e
        # h(x0) - h(x0 + e), without cancellation: a Taylor series for small e, else exact differences
        poly = c["taylor"][-1]
        for coef in c["taylor"][-2::-1]:
            poly = coef + e * poly
        series = -e * poly
        u0 = math.sqrt(_SCHWEFEL_X0)
        u = jnp.sqrt(jnp.abs(v))
        du = e / (u + u0)
        exact_pos = -(e * jnp.sin(u) + 2.0 * _SCHWEFEL_X0 * jnp.cos(u0 + 0.5 * du) * jnp.sin(0.5 * du))
        exact_neg = _schwefel_h(_SCHWEFEL_X0) - v * jnp.sin(u)
        diff = jnp.where(jnp.abs(e) < 1.0, series, jnp.where(v >= 0, exact_pos, exact_neg))
        return 0.01 * (_pen(v, 500.0) + c["const"] + jnp.mean(diff, axis=-1))

    return _Spec(
        xo,
        {"sign": sign, "lam": _lam(10.0, d), "taylor": taylor, "const": np.float64(const)},
        raw,
        center=center,
    )


def _gallagher(peaks, pen=1.0):
    """Gallagher's ``peaks`` peaks; ``pen`` scales the penalty (0 in f128-f130)."""

    def build(d, seed):
        if peaks == 101:
            b, cc, cond0 = 10.0, 5.0, math.sqrt(1000.0)
        else:
            b, cc, cond0 = 9.8, 4.9, 1000.0
        rot = rng.rotation(seed, d)
        order = np.argsort(rng.unif(peaks - 1, seed), kind="stable")
        cond = np.concatenate([[cond0], 1000.0 ** (order / (peaks - 2.0))])
        heights = np.concatenate([[10.0], 1.1 + 8.0 * np.arange(peaks - 1) / (peaks - 2.0)])
        scales = np.empty((peaks, d))
        for i in range(peaks):
            perm = np.argsort(rng.unif(d, seed + 1000 * i), kind="stable")
            scales[i] = cond[i] ** (perm / (d - 1.0) - 0.5)
        u = rng.unif(d * peaks, seed).reshape(peaks, d)
        y = b * u - cc
        y[0] *= 0.8
        xo = y[0].copy()
        local = y @ rot.T  # (peaks, d): R y_i
        offset = xo @ rot.T - local  # R xopt - R y_i, exactly 0 for the global peak
        offset[0] = 0.0

        def raw(x, z, c):
            t = _matvec(c["r"], z)[..., None, :] + c["off"]  # R x - R y_i, (..., peaks, d)
            q = jnp.sum(c["scales"] * t * t, axis=-1) * (-0.5 / d)
            # 10 - max_i h_i exp(q_i) = min_i (10 - h_i exp(q_i)); for the global peak -10 expm1(q_0)
            gaps = jnp.concatenate(
                [-10.0 * jnp.expm1(q[..., :1]), 10.0 - c["heights"][1:] * jnp.exp(q[..., 1:])], axis=-1
            )
            g = jnp.maximum(jnp.min(gaps, axis=-1), 0.0)
            return jnp.square(_osz(g)) + pen * _pen(x)

        return _Spec(xo, {"r": rot, "off": offset, "scales": scales, "heights": heights}, raw)

    return build


def _f23(d, seed):
    _, _, m = _two_rot(seed, d, _lam(100.0, d))
    two_j = 2.0 ** np.arange(1, 33)

    def raw(x, z, c):
        if jnp.finfo(x.dtype).bits < 64:
            # its terms resolve y to 2^-32, finer than a float32 y: carry y as hi + lo
            y, y_lo = _matvec_dd(c["m"], c["m_slices"], *_shift_dd(x, c))
        else:
            y, y_lo = _matvec(c["m"], z), jnp.zeros_like(z)
        v = y[..., None] * c["two_j"]  # exact: a power of 2
        w = (v - jnp.round(v)) + y_lo[..., None] * c["two_j"]
        t = jnp.sum(jnp.abs(w - jnp.round(w)) / c["two_j"], axis=-1)
        log_prod = jnp.sum(jnp.log1p(c["i1"] * t), axis=-1)
        return 10.0 / d**2 * jnp.expm1(10.0 / d**1.2 * log_prod) + _pen(x)

    consts = {"m": m, "two_j": two_j, "i1": np.arange(1.0, d + 1.0)}
    return _Spec(rng.xopt(seed, d), consts | {"m_slices": _host_slices(m)}, raw)


def _f24(d, seed):
    mu0 = 2.5
    s = 1.0 - 0.5 / (math.sqrt(d + 20.0) - 4.1)
    mu1 = -math.sqrt((mu0 * mu0 - 1.0) / s)
    sign = np.where(rng.gauss(d, seed) < 0, -1.0, 1.0)
    _, _, m = _two_rot(seed, d, _lam(100.0, d))

    def raw(x, z, c):
        h = 2.0 * c["sign"] * z  # x_hat - mu0
        sum1 = jnp.sum(h * h, axis=-1)
        sum2 = jnp.sum(jnp.square(h + (mu0 - mu1)), axis=-1)
        y = _matvec(c["m"], h)
        return (
            jnp.minimum(sum1, d + s * sum2)
            + 10.0 * jnp.sum(2.0 * jnp.square(jnp.sin(jnp.pi * y)), axis=-1)
            + 1e4 * _pen(x)
        )

    return _Spec(0.5 * mu0 * sign, {"sign": sign, "m": m}, raw)


_BUILDERS = {
    1: _f1, 2: _f2, 3: _f3, 4: _f4, 5: _f5, 6: _f6, 7: _f7, 8: _f8, 9: _f9, 10: _f10, 11: _f11, 12: _f12,
    13: _f13, 14: _f14, 15: _f15, 16: _f16, 17: _schaffers(10.0), 18: _schaffers(1000.0), 19: _f19,
    20: _f20, 21: _gallagher(101), 22: _gallagher(21), 23: _f23, 24: _f24,
}  # fmt: skip


def seed_of(fid: int, instance: int) -> int:
    """The seed of a function instance: ``fid + 10000 instance``, except f4 (f3's) and f18 (f17's)."""
    return {4: 3, 18: 17}.get(fid, fid) + 10000 * instance


# ---------------------------------------------------------------------------
# public


class BBOBFunction:
    """One BBOB problem ``f(fid, dimension, instance)``: batched, jit- and vmap-able.

    ``f(x)``: COCO's value; ``f.raw(x)`` / ``f.delta(x)``: ``f(x) - fopt`` computed
    without cancellation. ``x`` has shape ``(..., dimension)``; the result has the
    leading shape and the dtype of ``x``. Attributes: ``fid``, ``dimension``,
    ``instance``, ``xopt`` (float64 NumPy), ``fopt`` (float), ``name``.
    """

    def __init__(self, fid: int, dimension: int, instance: int):
        _check(fid, dimension, instance, NOISELESS_FIDS)
        spec = _BUILDERS[int(fid)](int(dimension), seed_of(fid, instance))
        self._setup(fid, dimension, instance, NAMES[int(fid)], rng.fopt(fid, instance), spec, int(fid))

    @classmethod
    def _from_spec(cls, fid, dimension, instance, name, fopt, spec, cache_key):
        """A function from given instance data (the noisy suite's noise-free cores)."""
        self = cls.__new__(cls)
        self._setup(fid, dimension, instance, name, fopt, spec, cache_key)
        return self

    def _setup(self, fid, dimension, instance, name, fopt, spec, cache_key):
        self.fid, self.dimension, self.instance = int(fid), int(dimension), int(instance)
        self.name = name
        self.fopt = float(fopt)
        self.xopt = np.asarray(spec.xopt, dtype=np.float64)
        self.xopt.setflags(write=False)
        self._spec = spec
        self._center = self.xopt if spec.center is None else np.asarray(spec.center, dtype=np.float64)
        self._cast: dict = {}
        self._cache_key = cache_key

    def __repr__(self) -> str:
        return f"BBOBFunction(f{self.fid} {self.name}, dimension={self.dimension}, instance={self.instance})"

    def _consts(self, dtype):
        key = np.dtype(dtype).name
        if key not in self._cast:
            hi = self._center.astype(dtype)
            lo = (self._center - hi.astype(np.float64)).astype(dtype)
            consts = {k: np.asarray(v).astype(dtype) for k, v in self._spec.consts.items()}
            consts["hi"], consts["lo"] = hi, lo
            self._cast[key] = consts
        return self._cast[key]

    def _prepare(self, x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        if x.ndim == 0 or x.shape[-1] != self.dimension:
            raise ValueError(
                f"bbob f{self.fid}: x must have shape (..., {self.dimension}), got {tuple(x.shape)}"
            )
        return x

    def raw(self, x) -> jnp.ndarray:
        """``f(x) - fopt`` without adding ``fopt`` (no cancellation): the precision target."""
        x = self._prepare(x)
        return _compiled(self._cache_key, self.dimension, self._spec.raw)(x, self._consts(x.dtype))

    delta = raw

    def __call__(self, x) -> jnp.ndarray:
        x = self._prepare(x)
        return self.raw(x) + jnp.asarray(self.fopt, dtype=x.dtype)


_COMPILED: dict = {}


def _compiled(cache_key, dimension, raw):
    """One jitted evaluator per (function, dimension): an instance's data are its arguments,
    so every instance of a function and dimension shares one compiled program."""
    key = (cache_key, dimension)
    if key not in _COMPILED:

        def evaluate(x, c):
            z = (x - c["hi"]) - c["lo"]
            return raw(x, z, c).astype(x.dtype)

        _COMPILED[key] = jax.jit(evaluate)
    return _COMPILED[key]


NOISELESS_FIDS = range(1, 25)
NOISY_FIDS = range(101, 131)
ALL_FIDS = (*NOISELESS_FIDS, *NOISY_FIDS)
_FID_TEXT = {
    NOISELESS_FIDS: "1..24",
    NOISY_FIDS: "101..130 (the noisy suite)",
    ALL_FIDS: "1..24 (noiseless) or 101..130 (noisy)",
}


def _check(fid, dimension, instance, fids=ALL_FIDS):
    if not (isinstance(fid, int | np.integer) and int(fid) in fids):
        raise ValueError(f"bbob: fid must be an integer in {_FID_TEXT[fids]}, got {fid!r}")
    if not (isinstance(dimension, int | np.integer) and dimension >= 2):
        raise ValueError(f"bbob: dimension must be an integer >= 2, got {dimension!r}")
    if not (isinstance(instance, int | np.integer) and instance >= 1):
        raise ValueError(f"bbob: instance must be an integer >= 1, got {instance!r}")


def function(fid: int, dimension: int, instance: int) -> BBOBFunction:
    """Noiseless BBOB function ``fid`` (1-24) in ``dimension`` (>= 2), function instance ``instance`` (>= 1).

    The instance number is COCO's function instance (the one in its seeds), the
    same as ``cocoex.BareProblem("bbob", fid, dimension, instance)``.
    ``neuroevo.bbob.function`` also takes the noisy suite's 101-130.
    """
    return BBOBFunction(fid, dimension, instance)
