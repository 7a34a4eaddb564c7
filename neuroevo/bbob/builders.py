"""Instance data (host, NumPy float64, with COCO's legacy generator) and evaluation (jnp) of the
24 noiseless BBOB functions: one builder per function, ``builder(dimension, seed) -> Spec``.

``Spec.raw(x, z, c)`` is ``f - fopt`` with ``z = x - center`` computed precisely and ``c``
the instance's constants cast to the working dtype; the noisy suite builds its cores with
the same builders (``neuroevo.bbob.noisy``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import jax.numpy as jnp
import numpy as np

from neuroevo.bbob import legacy_rng as rng
from neuroevo.bbob.double_word import (
    frac_3k,
    host_slices,
    matvec_dd,
    rosenbrock_shifted_dd,
    shift_dd,
    sin2_dd,
)
from neuroevo.bbob.transforms import asy, box_penalty, matvec, osz, rastrigin, rosenbrock_shifted


@dataclass
class Spec:
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


def f1(d, seed):
    return Spec(rng.xopt(seed, d), {}, lambda x, z, c: jnp.sum(z * z, axis=-1))


def f2(d, seed):
    return Spec(
        rng.xopt(seed, d),
        {"w": 1e6 ** _exps(d)},
        lambda x, z, c: jnp.sum(c["w"] * jnp.square(osz(z)), axis=-1),
    )


def f3(d, seed):
    def raw(x, z, c):
        return rastrigin(c["lam"] * asy(osz(z), 0.2, c["e"]))

    return Spec(rng.xopt(seed, d), {"lam": _lam(10.0, d), "e": _exps(d)}, raw)


def f4(d, seed):
    xo = rng.xopt(seed, d)
    xo[::2] = np.abs(xo[::2])
    even = (np.arange(d) % 2 == 0).astype(np.float64)

    def raw(x, z, c):
        y = osz(z)
        y = y * c["lam"] * jnp.where((y > 0) & (c["even"] > 0), 10.0, 1.0)
        return rastrigin(y) + 100.0 * box_penalty(x)

    return Spec(xo, {"lam": _lam(10.0, d), "even": even}, raw)


def f5(d, seed):
    sign = np.where(rng.xopt(seed, d) > 0, 1.0, -1.0)
    xo = 5.0 * sign

    def raw(x, z, c):
        # beyond the optimum's face the slope is flat: z_i = xopt_i where xopt_i x_i >= 25
        gap = jnp.where(c["xo"] * x < 25.0, -z, 0.0)  # xopt_i - z_i
        return jnp.sum(c["s"] * gap, axis=-1)

    return Spec(xo, {"s": sign * 10.0 ** _exps(d), "xo": xo}, raw)


def f6(d, seed):
    xo = rng.xopt(seed, d)
    _, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = matvec(c["m"], z)
        s = jnp.sum(jnp.where(c["xo"] * y > 0, 1e4, 1.0) * y * y, axis=-1)
        return osz(s) ** 0.9

    return Spec(xo, {"m": m, "xo": xo}, raw)


def f7(d, seed, pen=1.0):
    """Step ellipsoid; ``pen`` scales its boundary penalty (0 in the noisy suite's f113-f115)."""
    rot1 = rng.rotation(seed + 1000000, d)
    rot2 = rng.rotation(seed, d)

    def raw(x, z, c):
        zh = matvec(c["q"], z)
        zt = jnp.where(jnp.abs(zh) > 0.5, jnp.round(zh), jnp.round(10.0 * zh) / 10.0)
        y = matvec(c["r"], zt)
        core = jnp.maximum(1e-4 * jnp.abs(zh[..., 0]), jnp.sum(c["w"] * y * y, axis=-1))
        return 0.1 * core + pen * box_penalty(x)

    return Spec(
        rng.xopt(seed, d), {"q": rot2 * _lam(10.0, d)[:, None], "r": rot1, "w": 100.0 ** _exps(d)}, raw
    )


def _rosen_factor(d):
    return max(1.0, math.sqrt(d) / 8.0)


def f8(d, seed):
    def raw(x, z, c):
        return jnp.sum(rosenbrock_shifted(c["k"] * z), axis=-1)

    return Spec(0.75 * rng.xopt(seed, d), {"k": np.float64(_rosen_factor(d))}, raw)


def f9(d, seed):
    rot = rng.rotation(seed, d)
    k = _rosen_factor(d)
    xo = rot.sum(axis=0) / (2.0 * k)  # where k R x + 0.5 = 1

    def raw(x, z, c):
        return jnp.sum(rosenbrock_shifted(matvec(c["m"], z)), axis=-1)

    return Spec(xo, {"m": k * rot}, raw)


def f10(d, seed, cond=1e6):
    """Ellipsoid of conditioning ``cond`` (1e4 in the noisy suite's f116-f118)."""

    def raw(x, z, c):
        return jnp.sum(c["w"] * jnp.square(osz(matvec(c["r"], z))), axis=-1)

    return Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "w": cond ** _exps(d)}, raw)


def f11(d, seed):
    w = np.ones(d)
    w[0] = 1e6

    def raw(x, z, c):
        return jnp.sum(c["w"] * jnp.square(osz(matvec(c["r"], z))), axis=-1)

    return Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "w": w}, raw)


def f12(d, seed):
    w = np.full(d, 1e6)
    w[0] = 1.0

    def raw(x, z, c):
        y = matvec(c["r"], asy(matvec(c["r"], z), 0.5, c["e"]))
        return jnp.sum(c["w"] * y * y, axis=-1)

    return Spec(
        rng.xopt(seed + 1000000, d), {"r": rng.rotation(seed + 1000000, d), "w": w, "e": _exps(d)}, raw
    )


def f13(d, seed):
    _, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = matvec(c["m"], z)
        return y[..., 0] ** 2 + 100.0 * jnp.sqrt(jnp.sum(y[..., 1:] ** 2, axis=-1))

    return Spec(rng.xopt(seed, d), {"m": m}, raw)


def f14(d, seed):
    def raw(x, z, c):
        y = jnp.abs(matvec(c["r"], z))
        return jnp.sqrt(jnp.sum(y ** c["p"], axis=-1))

    return Spec(rng.xopt(seed, d), {"r": rng.rotation(seed + 1000000, d), "p": 2.0 + 4.0 * _exps(d)}, raw)


def f15(d, seed):
    rot1, _, m = _two_rot(seed, d, _lam(10.0, d))

    def raw(x, z, c):
        y = asy(osz(matvec(c["r"], z)), 0.2, c["e"])
        return rastrigin(matvec(c["m"], y))

    return Spec(rng.xopt(seed, d), {"r": rot1, "m": m, "e": _exps(d)}, raw)


def f16(d, seed):
    rot1, _, m = _two_rot(seed, d, _lam(0.01, d))
    k = np.arange(12)

    def raw(x, z, c):
        if jnp.finfo(x.dtype).bits < 64:
            # phases 3^11 y: carry the rotations as hi + lo (T_osz's own rounding remains)
            u, u_lo = matvec_dd(c["r"], c["r_slices"], *shift_dd(x, c))
            y, y_lo = matvec_dd(c["m"], c["m_slices"], osz(u + u_lo), jnp.zeros_like(u))
        else:
            y, y_lo = matvec(c["m"], osz(matvec(c["r"], z))), jnp.zeros_like(z)
        # cos(2 pi 3^k (y + 1/2)) - cos(pi 3^k) = 2 sin^2(pi 3^k y) since 3^k is odd
        phase = frac_3k(y) + y_lo[..., None] * c["b"]
        s = jnp.sum(c["a2"] * jnp.square(jnp.sin(jnp.pi * phase)), axis=(-2, -1))
        return 10.0 * (s / d) ** 3 + (10.0 / d) * box_penalty(x)

    consts = {"r": rot1, "m": m, "a2": 2.0 * 0.5**k, "b": 3.0**k}
    consts |= {"r_slices": host_slices(rot1), "m_slices": host_slices(m)}
    return Spec(rng.xopt(seed, d), consts, raw)


def schaffers(cond, pen=10.0):
    """Schaffers F7 of conditioning ``cond``; ``pen`` scales the penalty (0 in f122-f124)."""

    def build(d, seed):
        rot1 = rng.rotation(seed + 1000000, d)
        rot2 = rng.rotation(seed, d)

        def raw(x, z, c):
            y = matvec(c["m"], asy(matvec(c["r"], z), 0.5, c["e"]))
            t = y[..., :-1] ** 2 + y[..., 1:] ** 2
            s = t**0.25 * (1.0 + jnp.square(jnp.sin(50.0 * t**0.1)))
            return jnp.square(jnp.sum(s, axis=-1) / (d - 1.0)) + pen * box_penalty(x)

        return Spec(rng.xopt(seed, d), {"r": rot1, "m": _lam(cond, d)[:, None] * rot2, "e": _exps(d)}, raw)

    return build


def f19(d, seed, fac=10.0):
    """Griewank-Rosenbrock ``fac + fac mean(s / 4000 - cos s)`` (``fac`` is 1 in f125-f127)."""
    rot = rng.rotation(seed, d)
    k = _rosen_factor(d)
    xo = rot.sum(axis=0) / (2.0 * k)  # where k R x + 0.5 = 1

    def raw(x, z, c):
        # fac + fac mean(s / 4000 - cos s) = fac mean(s / 4000 + 2 sin^2(s / 2))
        if jnp.finfo(x.dtype).bits < 64:
            # cos of Rosenbrock values up to ~1e6: carry y and s as hi + lo, reduce s / 2 mod pi
            y, y_lo = matvec_dd(c["m"], c["m_slices"], *shift_dd(x, c))
            s, s_lo = rosenbrock_shifted_dd(y, y_lo)
            sin2 = sin2_dd(0.5 * s, 0.5 * s_lo)
        else:
            s = rosenbrock_shifted(matvec(c["m"], z))
            sin2 = jnp.square(jnp.sin(0.5 * s))
        return fac * jnp.mean(s / 4000.0 + 2.0 * sin2, axis=-1)

    return Spec(xo, {"m": k * rot, "m_slices": host_slices(k * rot)}, raw)


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


def f20(d, seed):
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
        return 0.01 * (box_penalty(v, 500.0) + c["const"] + jnp.mean(diff, axis=-1))

    return Spec(
        xo,
        {"sign": sign, "lam": _lam(10.0, d), "taylor": taylor, "const": np.float64(const)},
        raw,
        center=center,
    )


def gallagher(peaks, pen=1.0):
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
            t = matvec(c["r"], z)[..., None, :] + c["off"]  # R x - R y_i, (..., peaks, d)
            q = jnp.sum(c["scales"] * t * t, axis=-1) * (-0.5 / d)
            # 10 - max_i h_i exp(q_i) = min_i (10 - h_i exp(q_i)); for the global peak -10 expm1(q_0)
            gaps = jnp.concatenate(
                [-10.0 * jnp.expm1(q[..., :1]), 10.0 - c["heights"][1:] * jnp.exp(q[..., 1:])], axis=-1
            )
            g = jnp.maximum(jnp.min(gaps, axis=-1), 0.0)
            return jnp.square(osz(g)) + pen * box_penalty(x)

        return Spec(xo, {"r": rot, "off": offset, "scales": scales, "heights": heights}, raw)

    return build


def f23(d, seed):
    _, _, m = _two_rot(seed, d, _lam(100.0, d))
    two_j = 2.0 ** np.arange(1, 33)

    def raw(x, z, c):
        if jnp.finfo(x.dtype).bits < 64:
            # its terms resolve y to 2^-32, finer than a float32 y: carry y as hi + lo
            y, y_lo = matvec_dd(c["m"], c["m_slices"], *shift_dd(x, c))
        else:
            y, y_lo = matvec(c["m"], z), jnp.zeros_like(z)
        v = y[..., None] * c["two_j"]  # exact: a power of 2
        w = (v - jnp.round(v)) + y_lo[..., None] * c["two_j"]
        t = jnp.sum(jnp.abs(w - jnp.round(w)) / c["two_j"], axis=-1)
        log_prod = jnp.sum(jnp.log1p(c["i1"] * t), axis=-1)
        return 10.0 / d**2 * jnp.expm1(10.0 / d**1.2 * log_prod) + box_penalty(x)

    consts = {"m": m, "two_j": two_j, "i1": np.arange(1.0, d + 1.0)}
    return Spec(rng.xopt(seed, d), consts | {"m_slices": host_slices(m)}, raw)


def f24(d, seed):
    mu0 = 2.5
    s = 1.0 - 0.5 / (math.sqrt(d + 20.0) - 4.1)
    mu1 = -math.sqrt((mu0 * mu0 - 1.0) / s)
    sign = np.where(rng.gauss(d, seed) < 0, -1.0, 1.0)
    _, _, m = _two_rot(seed, d, _lam(100.0, d))

    def raw(x, z, c):
        h = 2.0 * c["sign"] * z  # x_hat - mu0
        sum1 = jnp.sum(h * h, axis=-1)
        sum2 = jnp.sum(jnp.square(h + (mu0 - mu1)), axis=-1)
        y = matvec(c["m"], h)
        return (
            jnp.minimum(sum1, d + s * sum2)
            + 10.0 * jnp.sum(2.0 * jnp.square(jnp.sin(jnp.pi * y)), axis=-1)
            + 1e4 * box_penalty(x)
        )

    return Spec(0.5 * mu0 * sign, {"sign": sign, "m": m}, raw)


BUILDERS = {
    1: f1, 2: f2, 3: f3, 4: f4, 5: f5, 6: f6, 7: f7, 8: f8, 9: f9, 10: f10, 11: f11, 12: f12,
    13: f13, 14: f14, 15: f15, 16: f16, 17: schaffers(10.0), 18: schaffers(1000.0), 19: f19,
    20: f20, 21: gallagher(101), 22: gallagher(21), 23: f23, 24: f24,
}  # fmt: skip


def seed_of(fid: int, instance: int) -> int:
    """The seed of a function instance: ``fid + 10000 instance``, except f4 (f3's) and f18 (f17's)."""
    return {4: 3, 18: 17}.get(fid, fid) + 10000 * instance
