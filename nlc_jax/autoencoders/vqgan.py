"""VQ autoencoder in the style of taming-transformers' VQGAN (Esser et al. 2021), our own Flax code.

* Encoder: ``conv_in`` → one level per channel multiplier (``num_res_blocks`` ResNet blocks, an
  attention block after each where the level's down-sampling factor is in
  ``attention_factors``, a stride-2 conv except on the last level) → mid block (ResNet,
  attention, ResNet) → GroupNorm, SiLU, ``conv_out`` to ``z_channels`` → ``quant_conv`` (1×1) to
  the codebook dimension ``embed_dim``. ``2^(levels-1)`` down (16× for five levels).
* Vector quantizer (:mod:`nlc_jax.autoencoders.vector_quantizer`).
* Decoder: ``post_quant_conv`` (1×1) → ``conv_in`` → mid block → levels in reverse
  (``num_res_blocks + 1`` ResNet blocks, attention as above, nearest ×2 + conv) → GroupNorm,
  SiLU, ``conv_out`` (the "last layer" of VQGAN's adaptive GAN weight: :meth:`VQAutoencoder.head`).

The ResNet, attention, mid and resampling blocks are the SD-VAE's (:mod:`nlc_jax.autoencoders.sd_vae`,
itself derived from the same taming code). Images are ``[B, H, W, 3]`` in [0, 1] at the
interface (``[-1, 1]`` inside). GLC codes the *continuous* latent, the output of ``quant_conv``
before the quantizer (:meth:`VQAutoencoder.latent`), and decodes it with :meth:`VQAutoencoder.decode`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders.layers import conv
from nlc_jax.autoencoders.sd_vae import EPS, Attention, MidBlock, Resample, ResnetBlock
from nlc_jax.autoencoders.vector_quantizer import VectorQuantizer, VQSettings

EXPORT_KIND = "vq"  # model.json's model["autoencoder"] of a VQ autoencoder export


@dataclasses.dataclass(frozen=True)
class VQConfig:
    """Architecture of a VQ autoencoder (defaults: GLC's VQGAN, nf 128, [1, 1, 2, 2, 4])."""

    channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attention_factors: tuple[int, ...] = (16,)  # down-sampling factors with attention blocks
    z_channels: int = 256
    norm_groups: int = 32
    quantizer: VQSettings = VQSettings(codebook_size=16384, dim=256)

    def __post_init__(self) -> None:
        widths = [self.channels * m for m in self.channel_mult]
        if not widths or any(w % self.norm_groups for w in widths + [self.z_channels]):
            raise ValueError(f"norm_groups={self.norm_groups} must divide every width {widths} "
                             f"and z_channels={self.z_channels}")
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")

    @property
    def factor(self) -> int:
        """Spatial down-sampling factor ``2^(levels - 1)``."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def embed_dim(self) -> int:
        """Channels of the latent (the codebook dimension)."""
        return self.quantizer.dim

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in an export's ``model.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VQConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["quantizer"] = VQSettings(**d["quantizer"])
        for key in ("channel_mult", "attention_factors"):
            d[key] = tuple(d[key])
        return cls(**d)


class VQEncoder(nn.Module):
    """``[B, H, W, 3]`` in [-1, 1] → ``[B, H/f, W/f, z_channels]``."""

    config: VQConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.config
        x = conv(c.channels, 3, dtype=self.dtype, name="conv_in")(x)
        for i, mult in enumerate(c.channel_mult):
            for j in range(c.num_res_blocks):
                x = ResnetBlock(c.channels * mult, c.norm_groups, self.dtype,
                                name=f"down_{i}_block_{j}")(x)
                if 2 ** i in c.attention_factors:
                    x = Attention(c.norm_groups, self.dtype, name=f"down_{i}_attn_{j}")(x)
            if i < len(c.channel_mult) - 1:
                x = Resample(c.channels * mult, True, self.dtype, name=f"down_{i}_sample")(x)
        x = MidBlock(x.shape[-1], c.norm_groups, True, self.dtype, name="mid")(x)
        x = nn.silu(nn.GroupNorm(c.norm_groups, epsilon=EPS, dtype=self.dtype, name="norm_out")(x))
        return conv(c.z_channels, 3, dtype=self.dtype, name="conv_out")(x)


class VQDecoderTrunk(nn.Module):
    """``[B, h, w, z_channels]`` → features ``[B, f·h, f·w, channels·mult[0]]`` (before the
    output norm and ``conv_out``)."""

    config: VQConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        c = self.config
        levels = len(c.channel_mult)
        x = conv(c.channels * c.channel_mult[-1], 3, dtype=self.dtype, name="conv_in")(z)
        x = MidBlock(x.shape[-1], c.norm_groups, True, self.dtype, name="mid")(x)
        for i in reversed(range(levels)):
            for j in range(c.num_res_blocks + 1):
                x = ResnetBlock(c.channels * c.channel_mult[i], c.norm_groups, self.dtype,
                                name=f"up_{i}_block_{j}")(x)
                if 2 ** i in c.attention_factors:
                    x = Attention(c.norm_groups, self.dtype, name=f"up_{i}_attn_{j}")(x)
            if i > 0:
                x = Resample(c.channels * c.channel_mult[i], False, self.dtype,
                             name=f"up_{i}_sample")(x)
        return nn.silu(nn.GroupNorm(c.norm_groups, epsilon=EPS, dtype=self.dtype, name="norm_out")(x))


class VQAutoencoder(nn.Module):
    """Encoder, quantizer and decoder of a VQGAN; float32 in and out, ``dtype`` for compute.

    Methods (``model.apply(params, ..., method=...)``):

    * ``latent(x)``: ``[B, H, W, 3]`` in [0, 1] → continuous latent ``[B, H/f, W/f, D]``;
    * ``quantize(y, rng)``: → (straight-through codes, indices ``[B, h, w]``, aux);
    * ``indices(y)``: nearest codes ``[B, h, w]``; ``embed(idx)``: codes ``[B, h, w, D]``;
    * ``features(y)`` then ``head(features)``: ``decode(y)`` in two parts (``head`` is the last
      conv, VQGAN's adaptive-weight layer) → image ``[B, H, W, 3]`` ≈ [0, 1], not clipped.
    """

    config: VQConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        c = self.config
        self.encoder = VQEncoder(c, self.dtype)
        self.quant_conv = conv(c.embed_dim, 1, dtype=self.dtype, name="quant_conv")
        self.quantizer = VectorQuantizer(c.quantizer)
        self.post_quant_conv = conv(c.z_channels, 1, dtype=self.dtype, name="post_quant_conv")
        self.decoder = VQDecoderTrunk(c, self.dtype)
        self.conv_out = conv(3, 3, dtype=self.dtype, name="conv_out")

    def latent(self, x: jax.Array) -> jax.Array:
        h = self.encoder((2.0 * x - 1.0).astype(self.dtype))
        return self.quant_conv(h).astype(jnp.float32)

    def quantize(self, y: jax.Array, rng: jax.Array | None = None):
        return self.quantizer(y, rng)

    def indices(self, y: jax.Array) -> jax.Array:
        return self.quantizer.indices(y)

    def embed(self, idx: jax.Array) -> jax.Array:
        return self.quantizer.embed(idx)

    def features(self, y: jax.Array) -> jax.Array:
        return self.decoder(self.post_quant_conv(y.astype(self.dtype)))

    def head(self, features: jax.Array) -> jax.Array:
        return 0.5 * (self.conv_out(features).astype(jnp.float32) + 1.0)

    def decode(self, y: jax.Array) -> jax.Array:
        return self.head(self.features(y))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Touches every parameter (used by ``init``): quantized reconstruction."""
        q, _, _ = self.quantize(self.latent(x))
        return self.decode(q)


def is_vq_export(path: Path) -> Path | None:
    """The export folder of a VQ autoencoder at ``path`` (a training workdir or its ``export/``),
    or None."""
    for folder in (path / "export", path):
        meta = folder / "model.json"
        if meta.is_file():
            try:
                model = json.loads(meta.read_text()).get("model", {})
            except (OSError, ValueError):
                return None
            return folder if model.get("autoencoder") == EXPORT_KIND else None
    return None


class VQExportError(ValueError):
    """An unreadable VQ autoencoder export (one-line message)."""


def load_vq_export(folder: Path) -> tuple[VQConfig, Any]:
    """``(config, params)`` of a VQ autoencoder export: ``model.json`` with
    ``model.autoencoder == "vq"`` and ``model.vq`` (a :meth:`VQConfig.to_dict`), and
    ``params.safetensors`` holding the weights under ``autoencoder/``.

    Raises:
      VQExportError: missing or unreadable files.
    """
    from flax import traverse_util
    from safetensors.numpy import load_file

    try:
        model = json.loads((folder / "model.json").read_text())["model"]
        config = VQConfig.from_dict(model["vq"])
        flat = load_file(str(folder / "params.safetensors"))
    except Exception as e:  # noqa: BLE001 - any unreadable export is one clear error
        raise VQExportError(f"{folder}: cannot read the VQ autoencoder export "
                               f"({type(e).__name__}: {e})") from None
    tree = traverse_util.unflatten_dict(flat, sep="/")
    if "autoencoder" not in tree:
        raise VQExportError(f"{folder}: export holds no autoencoder weights")
    return config, jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), tree["autoencoder"])
