"""Stable Diffusion VAE (``AutoencoderKL``), our own Flax implementation.

Structure (same parameter names as diffusers, so weights map one-to-one):

* Encoder: ``conv_in`` → ``down_blocks_i`` (``layers_per_block`` ResNet blocks, then a stride-2
  conv after right/bottom zero padding by one pixel, except in the last block) → ``mid_block``
  (ResNet, single-head self-attention over all positions, ResNet) → GroupNorm, SiLU,
  ``conv_out`` to ``2·latent_channels`` (mean, log-variance).
* ``quant_conv`` / ``post_quant_conv``: 1×1 convs (absent in SD3 / FLUX.1 VAEs).
* Decoder: ``conv_in`` → ``mid_block`` → ``up_blocks_i`` (``layers_per_block + 1`` ResNet blocks,
  nearest ×2 upsample + conv, except the last) → GroupNorm, SiLU, ``conv_out``.
* ResNet block: GN → SiLU → conv3 → GN → SiLU → conv3, plus a 1×1 ``conv_shortcut`` when the
  channel count changes. All GroupNorms use ``eps = 1e-6``.

Images are ``[B, H, W, 3]`` in [-1, 1] at this level (``nlc_jax.autoencoders.api`` converts from
[0, 1]); ``H`` and ``W`` must be multiples of ``2 ** (len(block_out_channels) - 1)``.
The posterior is a diagonal Gaussian; log-variance is clamped to [-30, 20] as in the reference.
A diffusion model's latent is ``(z - shift_factor) * scaling_factor``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nlc_jax.autoencoders.layers import conv, upsample_nearest

EPS = 1e-6
ATTN_CHUNK = 4096  # query positions per attention chunk


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Architecture and latent normalisation of one AutoencoderKL (diffusers field names)."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    in_channels: int = 3
    out_channels: int = 3
    scaling_factor: float = 0.18215
    shift_factor: float = 0.0
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    mid_block_add_attention: bool = True

    def __post_init__(self) -> None:
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad or not self.block_out_channels or self.layers_per_block < 1:
            raise ValueError(
                f"invalid VAE config: norm_num_groups={self.norm_num_groups} must divide every "
                f"block width {self.block_out_channels} and layers_per_block must be >= 1")

    @property
    def factor(self) -> int:
        """Spatial down-sampling factor (8 for every released SD VAE)."""
        return 2 ** (len(self.block_out_channels) - 1)

    @classmethod
    def from_diffusers(cls, cfg: dict[str, Any]) -> VAEConfig:
        """Build from a diffusers ``config.json`` dict (unknown keys are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in cfg.items() if k in fields and v is not None}
        if "block_out_channels" in kw:
            kw["block_out_channels"] = tuple(kw["block_out_channels"])
        return cls(**kw)

    @classmethod
    def from_json(cls, path: str | Path) -> VAEConfig:
        """Read a diffusers ``config.json``."""
        return cls.from_diffusers(json.loads(Path(path).read_text()))


PRESETS = {
    "sd": VAEConfig(),  # SD 1.x / 2.x
    "sdxl": VAEConfig(scaling_factor=0.13025),
    "sd3": VAEConfig(latent_channels=16, scaling_factor=1.5305, shift_factor=0.0609,
                     use_quant_conv=False, use_post_quant_conv=False),
    "flux1": VAEConfig(latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159,
                       use_quant_conv=False, use_post_quant_conv=False),
}


def _group_norm(groups: int, dtype: Any, name: str) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, epsilon=EPS, dtype=dtype, param_dtype=jnp.float32,
                        name=name)


class ResnetBlock(nn.Module):
    """``[B, H, W, Cin]`` → ``[B, H, W, features]``."""

    features: int
    groups: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        h = nn.silu(_group_norm(self.groups, self.dtype, "norm1")(x))
        h = conv(self.features, 3, dtype=self.dtype, name="conv1")(h)
        h = nn.silu(_group_norm(self.groups, self.dtype, "norm2")(h))
        h = conv(self.features, 3, dtype=self.dtype, name="conv2")(h)
        if x.shape[-1] != self.features:
            x = conv(self.features, 1, dtype=self.dtype, name="conv_shortcut")(x)
        return x + h


class Attention(nn.Module):
    """Single-head self-attention over all ``H·W`` positions with a residual; ``[B, H, W, C]``."""

    groups: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        b, hh, ww, c = x.shape
        h = _group_norm(self.groups, self.dtype, "group_norm")(x).reshape(b, hh * ww, 1, c)

        def dense(name: str) -> nn.Dense:
            return nn.Dense(c, dtype=self.dtype, param_dtype=jnp.float32, name=name)

        q, k, v = dense("to_q")(h), dense("to_k")(h), dense("to_v")(h)
        return x + dense("to_out_0")(_attention(q, k, v)).reshape(b, hh, ww, c)


def _attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """Exact softmax attention ``[B, T, 1, C]``; queries in chunks of ``ATTN_CHUNK`` when ``T`` is
    large, so memory is ``O(chunk · T)`` instead of ``O(T²)`` (a 2048×1365 image has T = 43 776).
    """
    t = q.shape[1]
    if t <= ATTN_CHUNK:
        return jax.nn.dot_product_attention(q, k, v)
    n = -(-t // ATTN_CHUNK)
    qp = jnp.pad(q, ((0, 0), (0, n * ATTN_CHUNK - t), (0, 0), (0, 0)))
    chunks = jnp.moveaxis(qp.reshape(q.shape[0], n, ATTN_CHUNK, *q.shape[2:]), 1, 0)
    out = jax.lax.map(lambda qc: jax.nn.dot_product_attention(qc, k, v), chunks)
    return jnp.moveaxis(out, 0, 1).reshape(qp.shape)[:, :t]


class MidBlock(nn.Module):
    """ResNet → attention → ResNet at the lowest resolution."""

    features: int
    groups: int
    attention: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = ResnetBlock(self.features, self.groups, self.dtype, name="resnets_0")(x)
        if self.attention:
            x = Attention(self.groups, self.dtype, name="attentions_0")(x)
        return ResnetBlock(self.features, self.groups, self.dtype, name="resnets_1")(x)


class Resample(nn.Module):
    """Stride-2 conv after (0, 1) padding (``down=True``) or nearest ×2 + conv; holds ``conv``."""

    features: int
    down: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.down:
            x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
            return conv(self.features, 3, stride=2, padding=0, dtype=self.dtype, name="conv")(x)
        return conv(self.features, 3, dtype=self.dtype, name="conv")(upsample_nearest(x))


class ResnetStack(nn.Module):
    """``n`` ResNet blocks (``resnets_j``) then an optional ``Resample`` (``<sampler>_0``)."""

    features: int
    n: int
    groups: int
    sampler: str | None  # "downsamplers", "upsamplers" or None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for j in range(self.n):
            x = ResnetBlock(self.features, self.groups, self.dtype, name=f"resnets_{j}")(x)
        if self.sampler is not None:
            x = Resample(self.features, self.sampler == "downsamplers", self.dtype,
                         name=f"{self.sampler}_0")(x)
        return x


class Encoder(nn.Module):
    """``[B, H, W, 3]`` in [-1, 1] → ``[B, H/f, W/f, 2·latent]`` (before ``quant_conv``)."""

    config: VAEConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, part: str = "all") -> jnp.ndarray:
        """``part``: ``"all"``, ``"local"`` (down blocks, tileable) or ``"global"`` (the rest)."""
        c = self.config
        if part != "global":
            x = conv(c.block_out_channels[0], 3, dtype=self.dtype, name="conv_in")(x)
            last = len(c.block_out_channels) - 1
            for i, ch in enumerate(c.block_out_channels):
                x = ResnetStack(ch, c.layers_per_block, c.norm_num_groups,
                                None if i == last else "downsamplers", self.dtype,
                                name=f"down_blocks_{i}")(x)
            if part == "local":
                return x
        x = MidBlock(c.block_out_channels[-1], c.norm_num_groups, c.mid_block_add_attention,
                     self.dtype, name="mid_block")(x)
        x = nn.silu(_group_norm(c.norm_num_groups, self.dtype, "conv_norm_out")(x))
        return conv(2 * c.latent_channels, 3, dtype=self.dtype, name="conv_out")(x)


class Decoder(nn.Module):
    """``[B, h, w, latent]`` (after ``post_quant_conv``) → ``[B, f·h, f·w, 3]`` ≈ [-1, 1]."""

    config: VAEConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jnp.ndarray, part: str = "all") -> jnp.ndarray:
        """``part``: ``"all"``, ``"global"`` (conv_in + mid block) or ``"local"`` (the rest)."""
        c = self.config
        chans = c.block_out_channels[::-1]
        x = z
        if part != "local":
            x = conv(chans[0], 3, dtype=self.dtype, name="conv_in")(x)
            x = MidBlock(chans[0], c.norm_num_groups, c.mid_block_add_attention, self.dtype,
                         name="mid_block")(x)
            if part == "global":
                return x
        for i, ch in enumerate(chans):
            x = ResnetStack(ch, c.layers_per_block + 1, c.norm_num_groups,
                            None if i == len(chans) - 1 else "upsamplers", self.dtype,
                            name=f"up_blocks_{i}")(x)
        x = nn.silu(_group_norm(c.norm_num_groups, self.dtype, "conv_norm_out")(x))
        return conv(c.out_channels, 3, dtype=self.dtype, name="conv_out")(x)


class AutoencoderKL(nn.Module):
    """The full VAE. ``moments`` gives the posterior; ``decode`` maps raw latents to images.

    Both take and return float32; ``dtype`` is the compute dtype (e.g. ``jnp.bfloat16``), the
    parameters stay float32.
    """

    config: VAEConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        c = self.config
        self.encoder = Encoder(c, self.dtype)
        self.decoder = Decoder(c, self.dtype)
        if c.use_quant_conv:
            self.quant_conv = conv(2 * c.latent_channels, 1, dtype=self.dtype, name="quant_conv")
        if c.use_post_quant_conv:
            self.post_quant_conv = conv(c.latent_channels, 1, dtype=self.dtype,
                                        name="post_quant_conv")

    def moments(self, x: jnp.ndarray, part: str = "all") -> tuple[jnp.ndarray, jnp.ndarray]:
        """``[B, H, W, 3]`` in [-1, 1] → (mean, logvar), each ``[B, H/f, W/f, latent]`` float32.

        ``part="global"`` starts from the output of :meth:`encode_local` instead of pixels.
        """
        h = self.encoder(x.astype(self.dtype), part)
        if self.config.use_quant_conv:
            h = self.quant_conv(h)
        h = h.astype(jnp.float32)
        mean, logvar = jnp.split(h, 2, axis=-1)
        return mean, jnp.clip(logvar, -30.0, 20.0)

    def encode_local(self, x: jnp.ndarray) -> jnp.ndarray:
        """Tileable first stage of the encoder: down blocks, ``[B, H/f, W/f, C_last]`` float32."""
        return self.encoder(x.astype(self.dtype), "local").astype(jnp.float32)

    def decode(self, z: jnp.ndarray, part: str = "all") -> jnp.ndarray:
        """Raw latent ``[B, h, w, latent]`` → image ``[B, f·h, f·w, 3]`` ≈ [-1, 1] (float32).

        ``part="global"`` stops after the mid block (``[B, h, w, C_last]``); ``part="local"``
        continues from there (the tileable up blocks).
        """
        z = z.astype(self.dtype)
        if self.config.use_post_quant_conv and part != "local":
            z = self.post_quant_conv(z)
        return self.decoder(z, part).astype(jnp.float32)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Reconstruct from the posterior mean (used to initialise all parameters)."""
        return self.decode(self.moments(x)[0])


def param_shapes(config: VAEConfig) -> dict[str, Any]:
    """Expected parameter tree (``jax.ShapeDtypeStruct`` leaves; nothing is computed)."""
    x = jnp.zeros((1, config.factor, config.factor, config.in_channels))
    return jax.eval_shape(AutoencoderKL(config).init, jax.random.PRNGKey(0), x)["params"]
