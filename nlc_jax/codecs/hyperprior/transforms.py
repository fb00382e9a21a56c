"""Transforms of the mean-scale hyperprior (Minnen et al. 2018, "mbt2018-mean"), NHWC.

Analysis ``g_a``: four 5×5 stride-2 convolutions with GDN between them (``[B, H, W, 3]`` →
``[B, H/16, W/16, M]``); synthesis ``g_s`` mirrors it with transposed convolutions (evaluated as
sub-pixel convolutions, ``nlc_jax.layers.subpixel``) and inverse GDN.
Hyper-analysis ``h_a``: 3×3 stride-1 then two 5×5 stride-2 convolutions with leaky ReLU
(``[.., M]`` → ``[.., H/64, W/64, N]``); hyper-synthesis ``h_s`` predicts the mean and the scale of
each latent (``[.., N]`` → ``[.., H/16, W/16, 2M]``). ``dtype`` is the compute dtype (bf16 for
mixed precision); parameters stay float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nlc_jax.layers import GDN, SubpixelConvTranspose


def _conv(features: int, kernel: int, stride: int, dtype: Any) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                   dtype=dtype, param_dtype=jnp.float32)


def _deconv(features: int, kernel: int, stride: int, dtype: Any) -> SubpixelConvTranspose:
    return SubpixelConvTranspose(features, kernel, stride, dtype=dtype, param_dtype=jnp.float32)


class AnalysisTransform(nn.Module):
    """``g_a``: ``[B, H, W, 3]`` → ``[B, H/16, W/16, M]``."""

    n: int
    m: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for _ in range(3):
            x = GDN()(_conv(self.n, 5, 2, self.dtype)(x))
        return _conv(self.m, 5, 2, self.dtype)(x)


class SynthesisTransform(nn.Module):
    """``g_s``: ``[B, h, w, M]`` → ``[B, 16h, 16w, 3]``."""

    n: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        y = y.astype(self.dtype)
        for _ in range(3):
            y = GDN(inverse=True)(_deconv(self.n, 5, 2, self.dtype)(y))
        return _deconv(3, 5, 2, self.dtype)(y)


class HyperAnalysis(nn.Module):
    """``h_a``: ``[B, h, w, M]`` → ``[B, h/4, w/4, N]``."""

    n: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        z = nn.leaky_relu(_conv(self.n, 3, 1, self.dtype)(y.astype(self.dtype)))
        z = nn.leaky_relu(_conv(self.n, 5, 2, self.dtype)(z))
        return _conv(self.n, 5, 2, self.dtype)(z)


class HyperSynthesis(nn.Module):
    """``h_s``: ``[B, h/4, w/4, N]`` → (means, scales), each ``[B, h, w, M]`` (float32)."""

    m: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        wide = self.m * 3 // 2
        h = nn.leaky_relu(_deconv(self.m, 5, 2, self.dtype)(z.astype(self.dtype)))
        h = nn.leaky_relu(_deconv(wide, 5, 2, self.dtype)(h))
        h = _conv(2 * self.m, 3, 1, self.dtype)(h).astype(jnp.float32)
        scales, means = jnp.split(h, 2, axis=-1)
        return means, scales
