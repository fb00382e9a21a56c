"""Causal context extraction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.entropy.context import causal_offsets, extract_context


@pytest.mark.parametrize("n", [8, 16, 24, 32])
def test_offsets_are_causal_unique_and_nearest_first(n):
    off = causal_offsets(n)
    assert off.shape == (n, 2)
    assert all(dy < 0 or (dy == 0 and dx < 0) for dy, dx in off.tolist())
    assert len({tuple(o) for o in off.tolist()}) == n
    dist = (off ** 2).sum(1)
    assert np.all(np.diff(dist) >= 0)
    # Every causal position strictly closer than the farthest chosen one is included.
    r = int(np.ceil(np.sqrt(dist.max())))
    closer = [(dy, dx) for dy in range(-r, 1) for dx in range(-r, r + 1)
              if (dy < 0 or dx < 0) and dy * dy + dx * dx < dist.max()]
    assert set(closer) <= {tuple(o) for o in off.tolist()}
    np.testing.assert_array_equal(causal_offsets(n)[:8], causal_offsets(8))


def test_first_neighbours():
    assert causal_offsets(4).tolist() == [[-1, 0], [0, -1], [-1, -1], [-1, 1]]
    with pytest.raises(ValueError, match="at least one"):
        causal_offsets(0)


def test_extract_context_values_and_zero_padding():
    grid = jnp.arange(1, 5 * 6 + 1, dtype=jnp.float32).reshape(5, 6)
    off = causal_offsets(24)
    ctx = np.asarray(extract_context(grid, off))
    assert ctx.shape == (5, 6, 24)
    g = np.asarray(grid)
    for y in range(5):
        for x in range(6):
            for k, (dy, dx) in enumerate(off.tolist()):
                inside = 0 <= y + dy < 5 and 0 <= x + dx < 6
                assert ctx[y, x, k] == (g[y + dy, x + dx] if inside else 0.0)


def test_extract_context_batched_jit_vmap():
    grids = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 7, 9))
    off = causal_offsets(16)
    direct = jax.jit(lambda g: extract_context(g, off))(grids)
    mapped = jax.jit(jax.vmap(lambda g: extract_context(g, off)))(grids)
    assert direct.shape == (3, 2, 7, 9, 16)
    np.testing.assert_array_equal(direct, mapped)
