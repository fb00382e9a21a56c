"""Tiny AutoEncoders (the TAESD family of madebyollin/taesd), our own Flax implementation.

Architecture facts (from the reference): plain conv nets with 64 channels, ReLU, 3×3 convs.

* Block: ``relu(conv3(relu(conv3(relu(conv3(x))))) + x)``. In the FLUX.2 variant (``taef2``)
  the three lowest-resolution blocks of each side first add a "pool" branch
  ``x + conv1x1(relu(GroupNorm(4)(conv1x1(x, 4·64))), 64)`` (bias-free 1×1 convs).
* Encoder (8× down): conv(3→64), Block, then three times [stride-2 conv (no bias), 3 Blocks],
  then conv(64→latent). Input: RGB in [0, 1].
* Decoder: ``3·tanh(z/3)`` soft clamp, conv(latent→64), ReLU, then three times [3 Blocks,
  nearest ×2 upsample, conv (no bias)], Block, conv(64→3). Output: RGB ≈ [0, 1] (not clamped).

Latent channels: 4 (taesd, taesdxl), 16 (taesd3, taef1), 32 (taef2). The latents live in the
target model's latent space exactly as the TAE was trained; no extra scaling is applied.
Module names are ``layers_<i>`` with the reference's ``nn.Sequential`` indices, so PyTorch keys
map one-to-one (see :func:`nlc_jax.autoencoders.loaders.to_flax`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nlc_jax.autoencoders.layers import conv, upsample_nearest

WIDTH = 64


@dataclasses.dataclass(frozen=True)
class TAEConfig:
    """One member of the TAE family.

    Attributes:
      name: file stem, e.g. ``"taef2"`` (weights are ``<name>_encoder.pth`` / ``_decoder.pth``).
      latent_channels: channels of the latent.
      midblock_gn: the FLUX.2 "pool" branch in the lowest-resolution blocks.
    """

    name: str
    latent_channels: int
    midblock_gn: bool = False


TAE_VARIANTS = {
    "taesd": TAEConfig("taesd", 4),
    "taesdxl": TAEConfig("taesdxl", 4),
    "taesd3": TAEConfig("taesd3", 16),
    "taef1": TAEConfig("taef1", 16),
    "taef2": TAEConfig("taef2", 32, midblock_gn=True),
}
FACTOR = 8


class TAEBlock(nn.Module):
    """Residual block of three 3×3 convs (+ optional GroupNorm pool branch); ``[B,H,W,64]``."""

    midblock_gn: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.midblock_gn:
            h = conv(4 * WIDTH, 1, use_bias=False, dtype=self.dtype, name="pool_0")(x)
            h = nn.GroupNorm(num_groups=4, epsilon=1e-5, dtype=self.dtype, param_dtype=jnp.float32,
                             name="pool_1")(h)
            h = conv(WIDTH, 1, use_bias=False, dtype=self.dtype, name="pool_3")(nn.relu(h))
            x = x + h
        h = conv(WIDTH, 3, dtype=self.dtype, name="conv_0")(x)
        h = conv(WIDTH, 3, dtype=self.dtype, name="conv_2")(nn.relu(h))
        h = conv(WIDTH, 3, dtype=self.dtype, name="conv_4")(nn.relu(h))
        return nn.relu(h + x)


def _indices(n: int, part: str, global_part: range) -> list[int]:
    """Layer indices of ``part``: ``"all"``, ``"global"`` (``global_part``) or ``"local"`` (the rest)."""
    if part == "global":
        return list(global_part)
    return [i for i in range(n) if part == "all" or i not in global_part]


def _run(layers: list[tuple], indices: list[int], x: jnp.ndarray, dtype: Any) -> jnp.ndarray:
    """Apply ``layers[i]`` for ``i`` in ``indices``; entry ``i`` is named ``layers_i``."""
    for i in indices:
        kind, *args = layers[i]
        name = f"layers_{i}"
        if kind == "conv":
            features, stride, bias = args
            x = conv(features, 3, stride=stride, use_bias=bias, dtype=dtype, name=name)(x)
        elif kind == "block":
            x = TAEBlock(midblock_gn=args[0], dtype=dtype, name=name)(x)
        elif kind == "relu":
            x = nn.relu(x)
        elif kind == "up":
            x = upsample_nearest(x)
        else:  # "clamp"
            x = 3.0 * jnp.tanh(x / 3.0)
    return x


class TAEEncoder(nn.Module):
    """``[B, H, W, 3]`` in [0, 1] → ``[B, H/8, W/8, latent_channels]``.

    ``part="local"`` runs up to the last down-sampling conv (tileable, ``[B, H/8, W/8, 64]``),
    ``part="global"`` the rest (the GroupNorm blocks, whose statistics span the whole image).
    """

    config: TAEConfig
    dtype: Any = jnp.float32
    part: str = "all"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        gn = self.config.midblock_gn
        down = [("conv", WIDTH, 2, False)]
        layers = [("conv", WIDTH, 1, True), ("block", False)]
        layers += down + [("block", False)] * 3 + down + [("block", False)] * 3
        layers += down + [("block", gn)] * 3 + [("conv", self.config.latent_channels, 1, True)]
        # global: the last three blocks and the output conv
        indices = _indices(len(layers), self.part, range(len(layers) - 4, len(layers)))
        return _run(layers, indices, x.astype(self.dtype), self.dtype).astype(jnp.float32)


class TAEDecoder(nn.Module):
    """``[B, h, w, latent_channels]`` → ``[B, 8h, 8w, 3]`` ≈ [0, 1].

    ``part="global"`` runs the latent-resolution head (clamp, conv, the three GroupNorm blocks;
    ``[B, h, w, 64]``), ``part="local"`` the tileable rest.
    """

    config: TAEConfig
    dtype: Any = jnp.float32
    part: str = "all"

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        gn = self.config.midblock_gn
        up = [("up",), ("conv", WIDTH, 1, False)]
        layers = [("clamp",), ("conv", WIDTH, 1, True), ("relu",)]
        layers += [("block", gn)] * 3 + up + [("block", False)] * 3 + up
        layers += [("block", False)] * 3 + up + [("block", False), ("conv", 3, 1, True)]
        indices = _indices(len(layers), self.part, range(6))  # clamp, conv, relu, three blocks
        return _run(layers, indices, z.astype(self.dtype), self.dtype).astype(jnp.float32)


def param_shapes(config: TAEConfig) -> dict[str, Any]:
    """Expected ``{"encoder": ..., "decoder": ...}`` parameter shapes (no compute)."""
    x = jnp.zeros((1, 16, 16, 3))
    z = jnp.zeros((1, 2, 2, config.latent_channels))
    key = jax.random.PRNGKey(0)
    enc = jax.eval_shape(TAEEncoder(config).init, key, x)["params"]
    dec = jax.eval_shape(TAEDecoder(config).init, key, z)["params"]
    return {"encoder": enc, "decoder": dec}
