"""Causal contexts on 2-D latent grids for autoregressive entropy models (Cool-chic / C3 style).

A raster-causal neighbour of position ``(y, x)`` is any ``(y + dy, x + dx)`` decoded before it:
``dy < 0``, or ``dy == 0`` and ``dx < 0``. :func:`causal_offsets` returns the ``n`` nearest ones
(Euclidean distance, ties broken in raster order), e.g. n = 8, 16, 24, 32 as used by
Cool-chic/C3; :func:`extract_context` gathers them for every position (zeros outside the grid).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def causal_offsets(n: int) -> np.ndarray:
    """The ``n`` nearest raster-causal offsets, int32 ``[n, 2]`` of ``(dy, dx)``, nearest first."""
    if n < 1:
        raise ValueError(f"a causal context needs at least one neighbour, got n={n}")
    radius = math.isqrt(2 * n) + 2  # the half-disc of this radius holds more than n positions
    cand = [(dy, dx) for dy in range(-radius, 1) for dx in range(-radius, radius + 1)
            if dy < 0 or dx < 0]
    cand.sort(key=lambda o: (o[0] ** 2 + o[1] ** 2, o[0], o[1]))
    return np.asarray(cand[:n], dtype=np.int32)


def extract_context(grid: jax.Array, offsets: np.ndarray) -> jax.Array:
    """Neighbour values ``[..., H, W, n]`` of ``grid [..., H, W]`` at static ``offsets [n, 2]``.

    Positions outside the grid read 0. jit/vmap-safe (offsets are static numpy).
    """
    offsets = np.asarray(offsets)
    pad_y = int(np.max(np.abs(offsets[:, 0])))
    pad_x = int(np.max(np.abs(offsets[:, 1])))
    h, w = grid.shape[-2:]
    lead = [(0, 0)] * (grid.ndim - 2)
    padded = jnp.pad(grid, lead + [(pad_y, pad_y), (pad_x, pad_x)])
    views = [padded[..., pad_y + dy:pad_y + dy + h, pad_x + dx:pad_x + dx + w]
             for dy, dx in offsets.tolist()]
    return jnp.stack(views, axis=-1)
