"""Property tests for fitness shaping and chunking helpers."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroevo.shaping import centered_ranks
from neuroevo.strategy import chunk_length

# XLA flushes subnormal float32 to zero (so 3.7e-39 ties with 0.0 there, not in NumPy).
values = st.one_of(
    st.floats(-1e6, 1e6, width=32, allow_subnormal=False), st.just(float("nan")), st.just(float("-inf"))
)


@settings(max_examples=60)
@given(st.lists(values, min_size=2, max_size=40))
def test_centered_ranks_properties(fs):
    f = np.asarray(fs, np.float32)
    w = np.asarray(centered_ranks(jnp.asarray(f)))
    assert np.all(np.isfinite(w)) and np.all(w >= -0.5) and np.all(w <= 0.5)
    assert abs(w.sum()) < 1e-4  # centred
    clean = np.where(np.isnan(f), -np.inf, f)
    for i in range(len(f)):
        for j in range(len(f)):
            if clean[i] > clean[j]:
                assert w[i] > w[j]
            elif clean[i] == clean[j]:
                assert w[i] == w[j]  # ties (NaN with NaN and -inf too) share a rank


@given(st.integers(1, 500), st.one_of(st.none(), st.integers(1, 600)))
def test_chunk_length_divides(total, chunk):
    c = chunk_length(total, chunk)
    assert total % c == 0 and 1 <= c <= total
    if chunk is not None:
        assert c <= max(chunk, 1)
