"""Convolution blocks of GLC's transforms (DCVC-DC style depthwise blocks), NHWC.

* :class:`DepthConv`: 1×1 conv, leaky ReLU, 3×3 depthwise conv, 1×1 conv, plus the (1×1-adapted)
  input;
* :class:`DepthConvGated`: a 1×1 + leaky ReLU + depthwise branch multiplied by a 1×1 branch, a
  1×1 output conv, plus the input (GLC's ``DepthConv2``, used in the analysis/synthesis);
* :class:`ConvFFN`: 1×1 conv to ``4C``, halves ``a · leaky_relu(b)``, 1×1 conv back, residual;
* :class:`DepthConvBlock`: a depth conv (plain or gated) followed by a ConvFFN;
* :class:`ResidualBlockUpsample`: sub-pixel ×2 up-sampling with a residual branch.

``dtype`` is the compute dtype; parameters are float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch's default conv init (kaiming-uniform with a = sqrt(5): variance 1/(3·fan_in)). The
# blocks multiply branches (gates, ConvFFN), so the output grows like a polynomial of the weight
# scale; with flax's default lecun-normal (3× the variance) the untrained stack overflows.
_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def conv(features: int, kernel: int = 1, stride: int = 1, groups: int = 1,
         dtype: Any = jnp.float32) -> nn.Conv:
    """``kernel × kernel`` conv with symmetric padding ``kernel // 2`` and PyTorch's default
    initialisation."""
    p = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((p, p), (p, p)),
                   feature_group_count=groups, kernel_init=_KERNEL_INIT, dtype=dtype,
                   param_dtype=jnp.float32)


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
    """Depth-to-space ``[B, H, W, C·r²]`` → ``[B, r·H, r·W, C]``."""
    b, h, w, c = x.shape
    x = x.reshape(b, h, w, r, r, c // (r * r))
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, c // (r * r))


def _identity(x: jax.Array, features: int, dtype: Any) -> jax.Array:
    return x if x.shape[-1] == features else conv(features, dtype=dtype)(x)


class DepthConv(nn.Module):
    """``[B, H, W, Cin]`` → ``[B, H, W, features]``."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        h = nn.leaky_relu(conv(c, dtype=self.dtype)(x), 0.01)
        h = conv(c, 3, groups=c, dtype=self.dtype)(h)
        return conv(self.features, dtype=self.dtype)(h) + _identity(x, self.features, self.dtype)


class DepthConvGated(nn.Module):
    """``[B, H, W, Cin]`` → ``[B, H, W, features]``."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        f = self.features
        a = nn.leaky_relu(conv(f, dtype=self.dtype)(x), 0.01)
        a = conv(f, 3, groups=f, dtype=self.dtype)(a)
        gated = conv(f, dtype=self.dtype)(a * conv(f, dtype=self.dtype)(x))
        return gated + _identity(x, f, self.dtype)


class ConvFFN(nn.Module):
    """``[B, H, W, C]`` → ``[B, H, W, C]`` (residual)."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        a, b = jnp.split(conv(4 * c, dtype=self.dtype)(x), 2, axis=-1)
        return x + conv(c, dtype=self.dtype)(a * nn.leaky_relu(b, 0.1))


class DepthConvBlock(nn.Module):
    """Depth conv (``gated``: :class:`DepthConvGated`) then :class:`ConvFFN`; → ``features``."""

    features: int
    gated: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        block = DepthConvGated if self.gated else DepthConv
        return ConvFFN(self.dtype)(block(self.features, self.dtype)(x))


class ResidualBlockUpsample(nn.Module):
    """``[B, H, W, Cin]`` → ``[B, 2H, 2W, features]``: sub-pixel conv, leaky ReLU, 3×3 conv,
    leaky ReLU, plus a sub-pixel up-sampled input."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        f = self.features
        h = nn.leaky_relu(pixel_shuffle(conv(4 * f, dtype=self.dtype)(x), 2), 0.01)
        h = nn.leaky_relu(conv(f, 3, dtype=self.dtype)(h), 0.1)
        return h + pixel_shuffle(conv(4 * f, dtype=self.dtype)(x), 2)
