"""Learned latent upsampling: grid sizes, the bicubic-initialised symmetric kernels, the 2×
transposed convolution and the 7-tap smoothing (``jax.numpy`` or ``numpy`` through ``xp``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.overfitted.padding import apply_mask, fill_edges


def level_shape(height: int, width: int, level: int) -> tuple[int, int]:
    """Size of latent grid ``level`` for an image of ``height × width``."""
    s = 2 ** level
    return -(-height // s), -(-width // s)


def upsampling_mac_per_pixel(n_levels: int) -> float:
    """Multiply-accumulates per image pixel of the learned upsampling of ``n_levels`` grids.

    At level i < n_levels-1, (n_levels-1-i) channels, separable 4+4 taps per output (polyphase
    8-tap kernel); pre-smoothing of levels >= 1: 7+7 taps per latent.
    """
    ups = sum((n_levels - 1 - i) * 8 * 4.0 ** -i for i in range(n_levels - 1))
    return ups + sum(14 * 4.0 ** -i for i in range(1, n_levels))


def _cubic(t: float, a: float = -0.75) -> float:
    t = abs(t)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    if t < 2:
        return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return 0.0


# Half-kernels: weights at distances 0.25, 0.75, 1.25, 1.75 (upsampling) and 0..3 (smoothing).
BICUBIC_HALF = np.array([_cubic(d) for d in (0.25, 0.75, 1.25, 1.75)], np.float32)


IDENTITY_HALF = np.array([1.0, 0.0, 0.0, 0.0], np.float32)


def init_upsampling(n_levels: int) -> dict:
    """Upsampling half-kernels ``{"up": [n_levels-1, 4] (bicubic), "smooth": [n_levels-1, 4]
    (identity)}``."""
    n_up = n_levels - 1
    return {"up": jnp.tile(jnp.asarray(BICUBIC_HALF), (n_up, 1)),
            "smooth": jnp.tile(jnp.asarray(IDENTITY_HALF), (n_up, 1))}


def _shift(x: Any, xp: Any, axis: int, pad: int, edge: bool = False) -> Any:
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, pad)
    return xp.pad(x, widths, mode="edge" if edge else "constant")


def _take(x: Any, axis: int, start: int, length: int) -> Any:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, start + length)
    return x[tuple(index)]


def upsample2x_axis(x: Any, half: Any, axis: int, xp: Any, edge: bool = False) -> Any:
    """2× transposed convolution along ``axis`` with the symmetric 8-tap kernel ``half``.

    Output sample ``2m`` sits at input coordinate ``m - 1/4`` and ``2m + 1`` at ``m + 1/4``;
    ``half`` holds the weights at distances 1/4, 3/4, 5/4, 7/4 (bicubic at init). ``edge``:
    replicate the edge samples instead of zero padding.
    """
    n = x.shape[axis]
    p = _shift(x, xp, axis, 2, edge)
    t = [_take(p, axis, k, n) for k in range(5)]  # t[k][m] = x[m + k - 2]
    even = half[3] * t[0] + half[1] * t[1] + half[0] * t[2] + half[2] * t[3]
    odd = half[2] * t[1] + half[0] * t[2] + half[1] * t[3] + half[3] * t[4]
    out = xp.stack([even, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def smooth_axis(x: Any, half: Any, axis: int, xp: Any) -> Any:
    """Symmetric 7-tap convolution along ``axis`` (``half`` = weights at distances 0..3)."""
    n = x.shape[axis]
    p = _shift(x, xp, axis, 3)
    out = half[0] * _take(p, axis, 3, n)
    for d in (1, 2, 3):
        out = out + half[d] * (_take(p, axis, 3 - d, n) + _take(p, axis, 3 + d, n))
    return out


def upsample2x(x: Any, half: Any, xp: Any, edge: bool = False) -> Any:
    """``[h, w, C]`` → ``[2h, 2w, C]`` separable 2× transposed convolution."""
    return upsample2x_axis(upsample2x_axis(x, half, 0, xp, edge), half, 1, xp, edge)


def smooth(x: Any, half: Any, xp: Any) -> Any:
    """``[h, w]`` → ``[h, w]`` separable symmetric 7-tap smoothing."""
    return smooth_axis(smooth_axis(x, half, 0, xp), half, 1, xp)


def upsample(latents: list, ups: dict, xp: Any, masks: list | None = None,
             edge: bool = False) -> Any:
    """Latent grids → full-resolution feature stack.

    Args:
      latents: ``n_levels`` grids ``[h_i, w_i]`` (level 0 is full resolution).
      ups: ``{"up": [n_levels-1, 4], "smooth": [n_levels-1, 4]}`` half-kernels.
      masks: per level ``[h_i, w_i]`` validity masks (training on padded buckets) or ``None``.
      edge: the 2× upsampling replicates edge samples (else zero padding).

    Returns:
      ``[h_0, w_0, n_levels]`` features, channel ``i`` from level ``i``.
    """
    def mask(x, level):
        return x if masks is None else apply_mask(x, masks[level])

    def smoothed(z, level):
        return mask(smooth(z, ups["smooth"][level - 1], xp), level)

    n = len(latents)
    stack = (smoothed(latents[-1], n - 1) if n > 1 else latents[0])[..., None]
    for level in range(n - 2, -1, -1):
        h, w = latents[level].shape
        k = ups["up"][level]
        if edge and masks is not None:
            stack = fill_edges(stack, masks[level + 1])
        stack = upsample2x(stack, k, xp, edge)[:h, :w]
        z = latents[level] if level == 0 else smoothed(latents[level], level)
        stack = xp.concatenate([z[..., None], mask(stack, level)], axis=-1)
    return stack
