"""The reverse-process network: a latent U-Net with a rate/time embedding, predicting ``x̂₀``.

``LatentUNet(width, multipliers, blocks)`` maps a noisy/quantized latent ``y_t`` ``[B, h, w, C]``
and the rate/time ``t`` ``[B]`` to ``x̂₀ = y_t + net(y_t, t)`` ``[B, h, w, C]`` (a residual
around the input, so an untrained net starts at the plain decode). Levels: ``len(multipliers)``
resolutions, each with ``blocks`` residual blocks of ``width · multiplier`` channels
(GroupNorm, SiLU, 3×3 convolutions, the time embedding added in between); 2× average-pool down,
nearest-neighbour up, skip connections by concatenation. ``h`` and ``w`` must be multiples of
``2^(len(multipliers) - 1)`` (:attr:`LatentUNet.stride`).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

#: ``t`` is scaled by this before the sinusoidal embedding (diffusion models use step indices)
TIME_SCALE = 1000.0


def time_embedding(t: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal embedding of ``t`` ``[B]`` (in [0, 1]) → ``[B, dim]`` (``dim`` even)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = TIME_SCALE * jnp.asarray(t, jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nn.Module):
    """``x`` ``[B, h, w, Cin]`` + embedding ``[B, E]`` → ``[B, h, w, features]``."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:
        conv = lambda f: nn.Conv(f, (3, 3), padding="SAME", dtype=self.dtype,  # noqa: E731
                                 param_dtype=jnp.float32)
        h = nn.silu(nn.GroupNorm(_groups(x.shape[-1]), dtype=self.dtype)(x))
        h = conv(self.features)(h)
        h = h + nn.Dense(self.features, dtype=self.dtype)(nn.silu(emb))[:, None, None, :]
        h = nn.silu(nn.GroupNorm(_groups(self.features), dtype=self.dtype)(h))
        h = conv(self.features)(h)
        if x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1, 1), dtype=self.dtype, param_dtype=jnp.float32)(x)
        return x + h


class LatentUNet(nn.Module):
    """``(y_t [B, h, w, C], t [B]) → x̂₀ [B, h, w, C]`` (float32); see the module docstring."""

    width: int = 32
    multipliers: tuple[int, ...] = (1, 2)
    blocks: int = 1
    dtype: Any = jnp.float32

    @property
    def stride(self) -> int:
        """Latent sides must be multiples of this."""
        return 2 ** (len(self.multipliers) - 1)

    @nn.compact
    def __call__(self, y: jax.Array, t: jax.Array) -> jax.Array:
        emb_dim = 4 * self.width
        emb = nn.Dense(emb_dim, dtype=self.dtype)(time_embedding(t, self.width))
        emb = nn.Dense(emb_dim, dtype=self.dtype)(nn.silu(emb))
        h = nn.Conv(self.width, (3, 3), padding="SAME", dtype=self.dtype,
                    param_dtype=jnp.float32)(y.astype(self.dtype))
        skips = []
        for level, mult in enumerate(self.multipliers):
            for _ in range(self.blocks):
                h = ResBlock(self.width * mult, self.dtype)(h, emb)
            skips.append(h)
            if level < len(self.multipliers) - 1:
                h = nn.avg_pool(h, (2, 2), strides=(2, 2))
        h = ResBlock(self.width * self.multipliers[-1], self.dtype)(h, emb)
        for level in reversed(range(len(self.multipliers))):
            if level < len(self.multipliers) - 1:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
            h = jnp.concatenate([h, skips[level]], axis=-1)
            for _ in range(self.blocks):
                h = ResBlock(self.width * self.multipliers[level], self.dtype)(h, emb)
        h = nn.silu(nn.GroupNorm(_groups(h.shape[-1]), dtype=self.dtype)(h))
        out = nn.Conv(y.shape[-1], (3, 3), padding="SAME", dtype=self.dtype,
                      param_dtype=jnp.float32, kernel_init=nn.initializers.zeros)(h)
        return y + out.astype(jnp.float32)
