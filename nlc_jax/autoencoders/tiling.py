"""Tiled application of an image↔latent function with overlap blending (for large images).

The input is cut into equal-sized overlapping tiles (the last tile in each direction is moved
back to end at the border, so every tile has the same shape and the function compiles once).
Each tile's output is weighted by a separable linear ramp that rises across the overlap on every
side that borders another tile (weight 1 elsewhere, never 0), and the outputs are averaged with
these weights. Memory is bounded by one tile's activations plus the full-size output.

Because the SD-VAE's GroupNorm statistics and mid-block attention see only one tile, tiled
results are close to, but not bit-identical with, untiled ones (see docs/autoencoders.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(size: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` with ≥ ``overlap`` overlap.

    ``size`` and ``tile`` must be multiples of ``align``; every start is one too. When
    ``size <= tile`` a single tile covers everything.
    """
    if size <= tile:
        return [0]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _ramp(starts: list[int], tile: int, scale_num: int, scale_den: int, index: int) -> np.ndarray:
    """Blend weights ``[tile_out]`` for tile ``index`` along one axis (output units)."""
    n_out = tile * scale_num // scale_den
    w = np.ones(n_out, np.float32)
    pos = np.arange(n_out, dtype=np.float32) + 0.5
    if index > 0:  # overlap with the previous tile on the left/top
        ov = (starts[index - 1] + tile - starts[index]) * scale_num / scale_den
        w = np.minimum(w, pos / ov)
    if index < len(starts) - 1:
        ov = (starts[index] + tile - starts[index + 1]) * scale_num / scale_den
        w = np.minimum(w, (n_out - pos) / ov)
    return w


def tiled_apply(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, tile: int,
                overlap: int, up: int, down: int, align: int) -> np.ndarray:
    """Apply ``fn`` tile by tile and blend.

    Args:
      fn: maps ``[B, h, w, Cin]`` to ``[B, h·up/down, w·up/down, Cout]``.
      x: ``[B, H, W, Cin]`` input (NumPy or JAX array).
      tile: tile side in input pixels (clipped to the image size), a multiple of ``align``.
      overlap: minimum overlap between neighbouring tiles in input pixels.
      up, down: output/input size ratio (encode: ``1, 8``; decode: ``8, 1``).
      align: tile starts are multiples of this (``down`` keeps output positions integral).

    Returns:
      ``[B, H·up/down, W·up/down, Cout]`` float32 NumPy array.
    """
    b, h, w, _ = x.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap, align), tile_starts(w, tw, overlap, align)
    out = None
    wsum = np.zeros((h * up // down, w * up // down, 1), np.float32)
    for iy, y0 in enumerate(ys):
        wy = _ramp(ys, th, up, down, iy)
        for ix, x0 in enumerate(xs):
            wx = _ramp(xs, tw, up, down, ix)
            y = np.asarray(fn(x[:, y0:y0 + th, x0:x0 + tw]), np.float32)
            if out is None:
                out = np.zeros((b, h * up // down, w * up // down, y.shape[-1]), np.float32)
            oy, ox = y0 * up // down, x0 * up // down
            weight = (wy[:, None] * wx[None, :])[:, :, None]
            out[:, oy:oy + y.shape[1], ox:ox + y.shape[2]] += weight * y
            wsum[oy:oy + y.shape[1], ox:ox + y.shape[2]] += weight
    return out / wsum
