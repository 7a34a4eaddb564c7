"""Double-word (``hi + lo``) arithmetic for float32 evaluations of BBOB functions whose terms
resolve finer than a float32 ``y`` (f16's sin(pi 3^11 y), f19's cos of Rosenbrock values up
to ~1e6, f23's terms of 2^32 y): exact splits, two-sums, Ozaki-split matrix products and
exact phase reductions, built from float32 operations only.
"""

from __future__ import annotations

import math
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.bbob.transforms import matvec


def split_bits(y, bits):
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


def frac_3k(y):
    """``3**k y mod 1`` in [-1/2, 1/2] for k = 0..11, shape ``y.shape + (12,)``, without rounding the product.

    ``y`` is split into parts whose products with ``3**k <= 3**11 < 2**18`` are
    exact, each reduced mod 1 exactly: the phase is as precise as ``y`` itself,
    where ``3**k y`` rounded in the working dtype (and ``pi`` times it) would lose
    up to 18 bits (f16's sin(pi 3^11 y)).
    """
    b = jnp.asarray(3.0 ** np.arange(12), dtype=y.dtype)
    bits = max(jnp.finfo(y.dtype).nmant + 1 - 18, 1)
    r = jnp.zeros(y.shape + (12,), y.dtype)
    for part in split_bits(y, bits):
        t = part[..., None] * b
        r = r + (t - jnp.round(t))
    return r - jnp.round(r)


def two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth), elementwise."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def exact_sum(terms):
    """Sum of a list of same-shape arrays as ``hi + lo``, to about twice the working precision
    (a pairwise tree of two-sums; the rounding errors are added plainly)."""
    lo = None
    while len(terms) > 1:
        pairs = [two_sum(a, b) for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        errs = [e for _, e in pairs]
        terms = [h for h, _ in pairs] + terms[len(pairs) * 2 :]
        err = sum(errs[1:], errs[0])
        lo = err if lo is None else lo + err
    return (terms[0], jnp.zeros_like(terms[0])) if lo is None else two_sum(terms[0], lo)


def _slice_bits(d):
    """Significant bits per slice so that a length-``d`` dot product of slices is exact in float32."""
    return (24 - math.ceil(math.log2(d))) // 2


def _slice_count(d):
    return math.ceil(46 / _slice_bits(d))  # slices down to ~2^-46 of the largest entry


def host_slices(m):
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


def matvec_dd(m, m_slices, z, z_lo):
    """``m (z + z_lo)`` as ``hi + lo`` (double-word accuracy), from float32 matrix products only.

    Ozaki's scheme: ``m`` (sliced on the host) and ``z`` are split into slices whose
    products sum exactly in float32 (``2 bits + log2 d <= 24``); the slice products
    that matter (about 20 matmuls) are added with two-sums.
    """
    count = m_slices.shape[0]
    zs, rest = _slices(z, _slice_bits(z.shape[-1]), count)
    terms = [matvec(m_slices[a], zs[b]) for a in range(count) for b in range(count - a)]
    terms.append(matvec(m, rest + z_lo))
    return exact_sum(terms)


def shift_dd(x, c):
    """``x - (hi + lo)`` (the optimum, split) as ``hi + lo``."""
    z_hi, z_lo = two_sum(x, -c["hi"])
    return two_sum(z_hi, z_lo - c["lo"])


def _mul_dd(terms_a, terms_b):
    """Exact partial products of two lists of parts, summed as ``hi + lo``."""
    return exact_sum([a * b for a in terms_a for b in terms_b])


def _square_dd(h, h_lo):
    """``(h + h_lo)**2`` as ``hi + lo``."""
    half = (jnp.finfo(h.dtype).nmant + 2) // 2
    parts = split_bits(h, half)
    sq_hi, sq_lo = _mul_dd(parts, parts)
    return two_sum(sq_hi, sq_lo + 2.0 * h * h_lo)


def rosenbrock_shifted_dd(y, y_lo):
    """``rosenbrock_shifted`` of ``y + y_lo`` as ``hi + lo`` (per pair of coordinates)."""
    a, a_lo, b, b_lo = y[..., :-1], y_lo[..., :-1], y[..., 1:], y_lo[..., 1:]
    a2, a2_lo = _square_dd(a, a_lo)
    q, q_lo = exact_sum([a2, 2.0 * a, -b, a2_lo + 2.0 * a_lo - b_lo])
    # 10 q exactly: 10 has 3 significant bits, the parts of q at most nmant - 2
    q10, q10_lo = exact_sum([10.0 * p for p in split_bits(q, jnp.finfo(q.dtype).nmant - 2)])
    q10_lo = q10_lo + 10.0 * q_lo
    big, big_lo = _square_dd(q10, q10_lo)
    return exact_sum([big, a2, big_lo + a2_lo])


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


def sin2_dd(h, h_lo):
    """``sin(h + h_lo)**2`` for a double-word argument, reduced mod pi without rounding ``n pi``."""
    n = jnp.round(h / jnp.asarray(math.pi, h.dtype))
    r = h
    for p in _pi_parts(np.dtype(h.dtype).name):
        r = r - n * p
    return jnp.square(jnp.sin(r + h_lo))
