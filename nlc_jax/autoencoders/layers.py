"""Small building blocks shared by the autoencoders (NHWC layout, PyTorch padding semantics)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


def conv(features: int, kernel: int, *, name: str, stride: int = 1, padding: int | None = None,
         use_bias: bool = True, dtype: Any = jnp.float32) -> nn.Conv:
    """A ``kernel × kernel`` conv with PyTorch-style symmetric zero padding (default ``kernel // 2``).

    Flax's ``"SAME"`` pads asymmetrically for stride 2, so the padding is always explicit.
    """
    p = kernel // 2 if padding is None else padding
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((p, p), (p, p)),
                   use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, name=name)


def upsample_nearest(x: jnp.ndarray, factor: int = 2) -> jnp.ndarray:
    """Nearest-neighbour upsampling of ``[B, H, W, C]`` to ``[B, H*f, W*f, C]``."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
