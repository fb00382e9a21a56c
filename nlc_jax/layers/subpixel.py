"""Transposed convolution computed as a sub-pixel (stride-1) convolution plus depth-to-space.

``SubpixelConvTranspose`` has the parameters, the initialisation and the output of
``flax.linen.ConvTranspose(features, (k, k), strides=(s, s), padding="SAME")`` (the same
``kernel`` ``[k, k, C_in, F]`` and ``bias`` ``[F]`` per layer; only the module's auto-generated
name differs in a parameter tree), but evaluates it
as one stride-1 convolution with ``s² · F`` outputs on the undilated input followed by a
depth-to-space rearrangement. XLA's CPU backend runs the input-dilated convolution of a
transposed convolution, and above all its gradient, far slower than a plain convolution
(measured on a 2-core CPU, ``[8, 64, 64, 64]`` → ``[8, 128, 128, 64]``, 5×5, stride 2: 5.5 s
vs 0.5 s per gradient); on GPUs both forms are fast.

Derivation (per axis): with ``lax.conv_transpose``'s "SAME" padding ``p_a``, output position
``s·q + r`` sums ``x[q + d] · w[k]`` over the taps with ``d = (r + k − p_a) / s`` an integer, so
phase ``r`` is a stride-1 correlation of ``x`` with the sub-kernel ``w[s·d − r + p_a]``.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _same_pad_before(kernel: int, stride: int) -> int:
    """The leading padding ``lax.conv_transpose(..., padding="SAME")`` applies per axis."""
    if stride > kernel - 1:
        return kernel - 1
    return math.ceil((kernel + stride - 2) / 2)


def subpixel_taps(kernel: int, stride: int) -> tuple[np.ndarray, int]:
    """Per-axis tap table of a "SAME" transposed convolution.

    Returns:
      ``(index, d_min)``: ``index[t, r]`` is the kernel tap used by output phase ``r`` at input
      offset ``t + d_min``, or ``kernel`` (an all-zero padding tap) if there is none;
      ``index`` is ``[T, stride]`` with ``T`` the sub-kernel size.
    """
    pad = _same_pad_before(kernel, stride)
    offsets = [(r + k - pad) // stride for r in range(stride) for k in range(kernel)
               if (r + k - pad) % stride == 0]
    d_min, d_max = min(offsets), max(offsets)
    t = np.arange(d_max - d_min + 1)[:, None]
    r = np.arange(stride)[None, :]
    index = stride * (t + d_min) - r + pad
    return np.where((index >= 0) & (index < kernel), index, kernel), d_min


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """``lax.conv_transpose(x, kernel, (s, s), "SAME")`` (NHWC / HWIO) without input dilation.

    Args:
      x: ``[B, H, W, C_in]``.
      kernel: ``[k, k, C_in, F]``.
      stride: ``s``.

    Returns:
      ``[B, s·H, s·W, F]``.
    """
    k, _, c_in, features = kernel.shape
    index, d_min = subpixel_taps(k, stride)
    taps = index.shape[0]
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap k is zero
    sub = padded[index[:, None, :, None], index[None, :, None, :]]  # [T, T, s, s, C_in, F]
    sub = sub.transpose(0, 1, 4, 2, 3, 5).reshape(taps, taps, c_in, stride * stride * features)
    pad = (-d_min, taps - 1 + d_min)
    z = lax.conv_general_dilated(x, sub, (1, 1), (pad, pad),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    b, h, w, _ = z.shape
    z = z.reshape(b, h, w, stride, stride, features).transpose(0, 1, 3, 2, 4, 5)
    return z.reshape(b, h * stride, w * stride, features)


class SubpixelConvTranspose(nn.Module):
    """Drop-in for ``nn.ConvTranspose(features, (k, k), strides=(s, s), padding="SAME")``.

    ``[B, H, W, C_in]`` → ``[B, s·H, s·W, features]``; computes in ``dtype``, stores
    ``param_dtype`` parameters.
    """

    features: int
    kernel_size: int
    strides: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (self.kernel_size, self.kernel_size, x.shape[-1], self.features),
                            self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,),
                          self.param_dtype)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        return subpixel_conv_transpose(x, kernel, self.strides) + bias
