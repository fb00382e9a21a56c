"""Seeded noise that is bit-identical on every machine, in ``numpy`` and in ``jax.numpy``.

A decoder that regenerates noise from a seed in a file (Noise-to-Latent, diffusion codecs) must
get exactly the encoder's numbers, whatever the device, the library versions or the shape of the
batch the encoder happened to train in. Two choices make that hold:

* **Counter-based integer generator.** Every value is a pure function of ``(seed, counter)``
  computed by Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as
  1, 2, 3", SC 2011): 32-bit additions, rotations and xors only, written once for any array
  module ``xp`` (:func:`threefry2x32`). It equals JAX's own ``threefry_2x32`` (tested), but does
  not depend on how a JAX version lays random bits out over a shape.
* **Position-indexed counters.** Value ``(level, channel, y, x)`` uses the counter
  ``(level · 2^8 + channel, y · 2^16 + x)``, so a grid padded to a larger bucket holds the same
  values on its valid region as the decoder's grid at the true size.

The two 32-bit output words are split into four 16-bit integers ``h_j`` and mapped to an
approximately standard normal value by the Irwin–Hall sum
``ε = (h_0 + h_1 + h_2 + h_3 − 2·65535) · √3 / 65536``: the integer sum is exact, and the one
float32 multiplication by a float32 constant is correctly rounded under IEEE 754, hence the same
everywhere. ``ε`` has mean 0, variance 1 − 2^-32, support ``[−3.46, 3.46]`` and the Irwin–Hall
(n = 4) shape (excess kurtosis −0.3), which is Gaussian enough for a latent generator's noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
#: The key's second word: separates this generator's streams from other uses of the seed.
DOMAIN = 0x6E326C61  # "n2la"
MAX_SIDE = 1 << 16
MAX_LEVELS = 16
MAX_CHANNELS = 1 << 8
SCALE = np.float32(np.sqrt(3.0) / 65536.0)


def _u32(xp: Any, value: int) -> Any:
    return xp.asarray(value, dtype=xp.uint32)


def _rotl(x: Any, r: int, xp: Any) -> Any:
    return (x << _u32(xp, r)) | (x >> _u32(xp, 32 - r))


def threefry2x32(key: tuple[Any, Any], c0: Any, c1: Any, xp: Any = np) -> tuple[Any, Any]:
    """Threefry-2x32 (20 rounds) of counters ``(c0, c1)`` (uint32 arrays of one shape) under
    ``key`` (two uint32 scalars); returns the two uint32 output words, shape of ``c0``."""
    k0, k1 = (xp.asarray(k, dtype=xp.uint32) for k in key)
    ks = (k0, k1, k0 ^ k1 ^ _u32(xp, _PARITY))
    x0 = xp.asarray(c0, dtype=xp.uint32) + ks[0]
    x1 = xp.asarray(c1, dtype=xp.uint32) + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r, xp) ^ x0
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + _u32(xp, block + 1)
    return x0, x1


def gaussian_grid(seed: Any, level: int, height: int, width: int, channels: int,
                  xp: Any = np) -> Any:
    """``[height, width, channels]`` float32 noise of pyramid ``level`` for ``seed``.

    ``seed`` is a uint32 (a Python int, or a traced scalar under ``jax.jit``/``vmap``); the
    value at ``(y, x, c)`` depends only on ``(seed, level, c, y, x)`` (see the module docstring).

    Raises:
      ValueError: sizes beyond the counter layout (sides ≥ 2^16, ≥ 16 levels, ≥ 256 channels).
    """
    if not (0 <= level < MAX_LEVELS and 0 < channels <= MAX_CHANNELS
            and 0 <= height <= MAX_SIDE and 0 <= width <= MAX_SIDE):
        raise ValueError(f"seeded noise: level {level}, {height}×{width}×{channels} is outside "
                         f"the counter layout (level < {MAX_LEVELS}, sides ≤ {MAX_SIDE}, "
                         f"channels ≤ {MAX_CHANNELS})")
    y = xp.arange(height, dtype=xp.uint32)[:, None, None]
    x = xp.arange(width, dtype=xp.uint32)[None, :, None]
    c = xp.arange(channels, dtype=xp.uint32)[None, None, :]
    shape = (height, width, channels)
    c0 = xp.broadcast_to(_u32(xp, level << 8) + c, shape)
    c1 = xp.broadcast_to(y * _u32(xp, 1 << 16) + x, shape)
    w0, w1 = threefry2x32((seed, DOMAIN), c0, c1, xp)
    mask = _u32(xp, 0xFFFF)
    total = ((w0 & mask).astype(xp.int32) + (w0 >> _u32(xp, 16)).astype(xp.int32)
             + (w1 & mask).astype(xp.int32) + (w1 >> _u32(xp, 16)).astype(xp.int32))
    centred = (total - xp.asarray(2 * 0xFFFF, dtype=xp.int32)).astype(xp.float32)
    return centred * xp.asarray(SCALE, dtype=xp.float32)


def gaussian_pyramid(seed: Any, shapes: list[tuple[int, int]], channels: int,
                     xp: Any = np) -> tuple:
    """One :func:`gaussian_grid` per level: ``shapes[i]`` = ``(h_i, w_i)`` of level ``i``."""
    return tuple(gaussian_grid(seed, i, h, w, channels, xp) for i, (h, w) in enumerate(shapes))
