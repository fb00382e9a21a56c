"""Latent upsampling and synthesis, written once for both ``jax.numpy`` (training) and ``numpy``
(decoding): every function takes the array module ``xp``.

The numpy path (the decoder) uses explicit polyphase sums; the jax path uses the equivalent
``lax.conv_general_dilated`` calls, which compile to far smaller XLA graphs (a test checks that
both agree). Boundaries are zero-padded. Training runs on a padded bucket: there ``masks`` zero every grid
outside the true image after each operation, which makes the valid region identical to what the
decoder computes at the true size (where ``masks`` is ``None``).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from nlc_jax.codecs.coolchic.arch import Arch


def _shift(x: Any, xp: Any, axis: int, pad: int) -> Any:
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, pad)
    return xp.pad(x, widths)


def _take(x: Any, axis: int, start: int, length: int) -> Any:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, start + length)
    return x[tuple(index)]


def upsample2x_axis(x: Any, half: Any, axis: int, xp: Any) -> Any:
    """2× transposed convolution along ``axis`` with the symmetric 8-tap kernel ``half``.

    Output sample ``2m`` sits at input coordinate ``m - 1/4`` and ``2m + 1`` at ``m + 1/4``;
    ``half`` holds the weights at distances 1/4, 3/4, 5/4, 7/4 (bicubic at init).
    """
    n = x.shape[axis]
    p = _shift(x, xp, axis, 2)
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


def _full_kernel(half: Any, up: bool) -> Any:
    """Symmetric 1-D kernel (8 taps for 2× upsampling, 7 for smoothing) from its half."""
    side = half[::-1]
    return jnp.concatenate([side, half] if up else [side, half[1:]])


def _conv2d_jax(x: Any, half: Any, up: bool) -> Any:
    """``[h, w, C]`` → separable symmetric conv per channel (2× transposed if ``up``)."""
    k = _full_kernel(half, up)
    kernel = (k[:, None] * k[None, :])[:, :, None, None]              # [K, K, 1, 1] HWIO
    c = jnp.moveaxis(x, -1, 0)[..., None]                              # [C, h, w, 1]
    pad = 4 if up else 3
    out = lax.conv_general_dilated(c, kernel, (1, 1), [(pad, pad), (pad, pad)],
                                   lhs_dilation=(2, 2) if up else (1, 1),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.moveaxis(out[..., 0], 0, -1)


def upsample2x(x: Any, half: Any, xp: Any) -> Any:
    """``[h, w, C]`` → ``[2h, 2w, C]`` separable 2× transposed convolution."""
    if xp is np:
        return upsample2x_axis(upsample2x_axis(x, half, 0, xp), half, 1, xp)
    return _conv2d_jax(x, half, up=True)


def smooth(x: Any, half: Any, xp: Any) -> Any:
    """``[h, w]`` → ``[h, w]`` separable symmetric 7-tap smoothing."""
    if xp is np:
        return smooth_axis(smooth_axis(x, half, 0, xp), half, 1, xp)
    return _conv2d_jax(x[..., None], half, up=False)[..., 0]


def upsample(latents: list, ups: dict, xp: Any, masks: list | None = None) -> Any:
    """Latent grids → full-resolution feature stack.

    Args:
      latents: ``n_levels`` grids ``[h_i, w_i]`` (level 0 is full resolution).
      ups: ``{"up": [n_levels-1, 4], "smooth": [n_levels-1, 4]}`` half-kernels.
      masks: per level ``[h_i, w_i]`` validity masks (training on padded buckets) or ``None``.

    Returns:
      ``[h_0, w_0, n_levels]`` features, channel ``i`` from level ``i``.
    """
    def mask(x, level):
        if masks is None:
            return x
        m = masks[level]
        return x * (m[..., None] if x.ndim == 3 else m)

    def smoothed(z, level):
        return mask(smooth(z, ups["smooth"][level - 1], xp), level)

    n = len(latents)
    stack = (smoothed(latents[-1], n - 1) if n > 1 else latents[0])[..., None]
    for level in range(n - 2, -1, -1):
        h, w = latents[level].shape
        k = ups["up"][level]
        stack = upsample2x(stack, k, xp)[:h, :w]
        z = latents[level] if level == 0 else smoothed(latents[level], level)
        stack = xp.concatenate([z[..., None], mask(stack, level)], axis=-1)
    return stack


def conv(x: Any, w: Any, b: Any, xp: Any) -> Any:
    """``[H, W, Cin]`` → ``[H, W, Cout]`` zero-padded convolution, ``w`` ``[k, k, Cin, Cout]``."""
    k = w.shape[0]
    if k == 1:
        return x @ w[0, 0] + b
    if xp is not np:
        return lax.conv_general_dilated(x[None], w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))[0] + b
    r = k // 2
    h, wd = x.shape[:2]
    p = xp.pad(x, ((r, r), (r, r), (0, 0)))
    out = b
    for dy in range(k):
        for dx in range(k):
            out = out + p[dy:dy + h, dx:dx + wd] @ w[dy, dx]
    return out


def synthesize(features: Any, syn: dict, arch: Arch, xp: Any, mask: Any = None) -> Any:
    """Feature stack ``[H, W, n_levels]`` → ``[H, W, 3]`` image (unclipped, [0, 1] scale)."""
    x = features
    for i, layer in enumerate(arch.synthesis):
        p = syn[f"l{i}"]
        inp = x * mask[..., None] if (mask is not None and layer.kernel > 1) else x
        y = conv(inp, p["w"], p["b"], xp)
        if layer.residual:
            y = x + y
        x = xp.maximum(y, 0) if layer.relu else y
    return x
