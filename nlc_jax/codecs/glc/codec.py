"""Real compression with a trained GLC model: ``.nlc`` files in, images out.

File layout (``nlc_jax.bitstream`` container, codec ``glc``)::

    HEADER   weights hash (8 bytes) | rate index (uvarint) | hyper coding (uvarint: 0 fixed,
             1 entropy, 2 factorized)
    HYPER    categorical hyper module: the VQ indices, fixed-length words or range coded under
             the frozen categorical prior (``hyper_counts`` of the export); factorized module:
             round(z) range coded under the factorized prior's frozen tables (``z_tables``)
    LATENTS  the four steps of the spatial-channel context, one range-coded stream:
             residuals round(y/step − μ_k) under snapped zero-mean Gaussians of scale σ_k

The image is padded (edge replication) to a multiple of 64 (16× VQ down-sampling, 4× hyper) and
cropped back. The decoder rebuilds ẑ from the hyper symbols, (step, σ_0, μ_0) from ẑ, then for each
step k the context network's (σ_k, μ_k) from what is decoded so far; the encoder runs the very
same jitted functions on the very same arrays (never the parallel training form), so the coder
parameters (snapped inside ``nlc_jax.entropy.coding``) match bit for bit, as the hyperprior's do.
The decoded latent goes through the synthesis and the VQ decoder.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import VQAutoencoder, VQConfig
from nlc_jax.bitstream import (
    BitstreamError,
    ByteReader,
    ByteWriter,
    SectionType,
    write_container,
)
from nlc_jax.bitstream.container import read_image_container
from nlc_jax.codecs.base import EncodeResult, rgb8
from nlc_jax.codecs.glc import hyper_coding
from nlc_jax.codecs.glc.hyper_coding import MODULE_MODES
from nlc_jax.codecs.glc.latent_codec import HYPER_FACTOR, LatentCodec, four_part_masks, split_common
from nlc_jax.codecs.glc.training import build_latent_codec
from nlc_jax.codecs.weights import check_file_weights
from nlc_jax.entropy import factorized
from nlc_jax.entropy.coding import ConditionalDecoder, ConditionalEncoder
from nlc_jax.entropy.factorized import EntropyTables
from nlc_jax.metrics.psnr import psnr

HASH_BYTES = 8
PARAM_BOUND = 1e4  # coder parameters (step, scale, mean) and the context features are clipped here


@functools.partial(jax.jit, static_argnums=(0, 1))
def _analyse(vq: VQAutoencoder, latent: LatentCodec, p_vq, p_lat, x, rate):
    y = latent.apply(p_lat, vq.apply(p_vq, x, method="latent"), rate, method="analyse")
    return y, latent.apply(p_lat, latent.apply(p_lat, y, method="hyper_analyse"),
                           method="hyper_symbols")


def _bounded(x: jax.Array) -> jax.Array:
    """Coder parameters kept finite and in range (±``PARAM_BOUND``; NaN → the bound): the
    multiplicative blocks of an under-trained model can overflow on unusual inputs, and the
    coder refuses non-finite parameters. Encoder and decoder apply the same map."""
    return jnp.clip(jnp.nan_to_num(x, nan=PARAM_BOUND), -PARAM_BOUND, PARAM_BOUND)


@functools.partial(jax.jit, static_argnums=0)
def _hyper(latent: LatentCodec, p_lat, symbols):
    z_hat = latent.apply(p_lat, symbols, method="hyper_from_symbols")
    common, reduced = latent.apply(p_lat, z_hat, method="hyper_synthesise")
    return (*(_bounded(a) for a in split_common(common)), _bounded(reduced))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _context(latent: LatentCodec, k: int, p_lat, y_hat, reduced):
    scales, means = latent.apply(p_lat, k, y_hat, reduced, method="context")
    return _bounded(scales), _bounded(means)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _synthesise(vq: VQAutoencoder, latent: LatentCodec, p_vq, p_lat, y_hat, step, rate):
    y = latent.apply(p_lat, y_hat * step, rate, method="synthesise")
    x = vq.apply(p_vq, y, method="decode")
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def stride_of(vq: VQConfig) -> int:
    """Pixels per hyper-latent position (64 for a 16× autoencoder)."""
    return vq.factor * HYPER_FACTOR


def file_weights_hash(data: bytes) -> bytes:
    """The hash of the model weights a GLC file was encoded with (its header's first 8 bytes).

    Raises:
      BitstreamError: not a readable GLC file.
    """
    container = read_image_container(data, GLCCodec.name)
    return ByteReader(container.section(SectionType.HEADER), "glc header").raw(HASH_BYTES)


class GLCCodec:
    """A trained GLC model (stage II or III export) as a ``LearnedCodec``.

    Args:
      params: inference params ``{"autoencoder", "latent"}`` and ``"hyper_counts"``
        (categorical hyper module) or ``"z_tables"`` (factorized).
      model_config: the export's model config (``vq``, ``latent``, ``lmbdas``, ``hyper_coding``).
      weights_hash: 8-byte hash of ``params`` (written to / checked against each file).
      rate_index: which rate vector to encode with.
      hyper_coding: ``"fixed"`` or ``"entropy"`` for a categorical model's indices,
        ``"factorized"`` for a factorized model (None: the model's).

    Raises:
      ValueError: a rate index out of range, an unknown hyper coding or one the model's hyper
        module cannot use.
    """

    name = "glc"

    def __init__(self, params: dict[str, Any], model_config: dict[str, Any], weights_hash: bytes,
                 rate_index: int = 0, hyper_coding: str | None = None):
        self.vq_config = VQConfig.from_dict(model_config["vq"])
        self.lmbdas = tuple(float(v) for v in model_config["lmbdas"])
        if not 0 <= int(rate_index) < len(self.lmbdas):
            raise ValueError(f"rate_index={rate_index} out of range: the model has "
                             f"{len(self.lmbdas)} rates")
        self.vq = VQAutoencoder(self.vq_config)
        self.latent = build_latent_codec(model_config["latent"], self.vq_config.embed_dim,
                                         self.lmbdas)
        self.allowed = MODULE_MODES[self.latent.hyper_module]
        mode = hyper_coding or (self.allowed[0] if self.latent.factorized
                                else model_config.get("hyper_coding", "fixed"))
        if mode not in hyper_coding_modes():
            raise ValueError(f"hyper_coding must be one of {hyper_coding_modes()}, got {mode!r}")
        if mode not in self.allowed:
            raise ValueError(f"hyper_coding={mode!r} does not apply to this model's "
                             f"{self.latent.hyper_module} hyper module (latent.hyper_module): "
                             f"use one of {self.allowed}")
        self.p_vq = jax.tree.map(jnp.asarray, params["autoencoder"])
        self.p_lat = jax.tree.map(jnp.asarray, params["latent"])
        if self.latent.factorized:
            self.tables = EntropyTables.from_dict(params["z_tables"])
        else:
            self.counts = np.asarray(params["hyper_counts"], np.int32)
        self.kz = self.latent.hyper.codebook_size
        self.weights_hash = bytes(weights_hash)
        self.rate_index, self.mode = int(rate_index), hyper_coding_modes()[mode]
        self.stride = stride_of(self.vq_config)

    @classmethod
    def from_params(cls, params: dict[str, Any], model_config: dict[str, Any],
                    rate_index: int = 0, hyper_coding: str | None = None) -> GLCCodec:
        """Codec from inference params and the export's model config (hash computed here)."""
        from nlc_jax.codecs.weights import weights_hash

        return cls(params, model_config, weights_hash(params), rate_index, hyper_coding)

    def _steps(self, symbols: np.ndarray, run_step) -> tuple[np.ndarray, np.ndarray]:
        """The four-step loop shared by encoder and decoder, from the hyper ``symbols`` (indices
        ``[h, w]`` or round(z) ``[h, w, Dz]``): ``run_step(k, mask, scales, means) -> symbols``
        codes or decodes step k; returns (ŷ/step, step)."""
        step, scales, means, reduced = _hyper(self.latent, self.p_lat,
                                              jnp.asarray(symbols)[None])
        masks = four_part_masks(*reduced.shape[1:3], self.latent.n).astype(bool)
        y_hat = np.zeros(reduced.shape, np.float32)
        for k in range(4):
            if k:
                scales, means = _context(self.latent, k, self.p_lat, jnp.asarray(y_hat), reduced)
            m = masks[k][None]
            mu = np.asarray(means)[m]
            symbols = run_step(k, m, np.asarray(scales)[m], mu)
            y_hat[m] = symbols.astype(np.float32) + mu
        return y_hat, np.asarray(step)

    def encode(self, image: np.ndarray) -> EncodeResult:
        """``[H, W, 3]`` uint8 → ``.nlc`` bytes, reconstruction ``[H, W, 3]`` uint8 and numbers."""
        image = rgb8(image)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        padded = np.pad(image, ((0, -h % self.stride), (0, -w % self.stride), (0, 0)), "edge")
        rate = jnp.full((1,), self.rate_index, jnp.int32)
        y, z_symbols = _analyse(self.vq, self.latent, self.p_vq, self.p_lat,
                                jnp.asarray(padded[None], jnp.float32) / 255.0, rate)
        z_symbols = np.asarray(z_symbols[0])
        z_bytes = self._encode_hyper(z_symbols)
        step_now = np.asarray(_hyper(self.latent, self.p_lat, jnp.asarray(z_symbols)[None])[0])
        ys = np.clip(np.nan_to_num(np.asarray(y) / step_now), -PARAM_BOUND, PARAM_BOUND)
        encoder = ConditionalEncoder("gaussian")

        def code(_k, m, scales, mu):
            symbols = np.rint(ys[m] - mu).astype(np.int32)
            encoder.encode_tabled(symbols, 0.0, scales)
            return symbols

        y_hat, step = self._steps(z_symbols, code)
        y_bytes = encoder.finish()
        header = (ByteWriter().raw(self.weights_hash).uvarint(self.rate_index).uvarint(self.mode)
                  .getvalue())
        data = write_container(self.name, h, w, 3, 8, [(SectionType.HEADER, header),
                                                      (SectionType.HYPER, z_bytes),
                                                      (SectionType.LATENTS, y_bytes)])
        recon = self._render(y_hat, step, self.rate_index, h, w)
        info = {"bpp": 8.0 * len(data) / (h * w), "bpp_z": 8.0 * len(z_bytes) / (h * w),
                "bpp_y": 8.0 * len(y_bytes) / (h * w), "psnr": float(psnr(recon, image)),
                "encode_seconds": time.perf_counter() - t0}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def _encode_hyper(self, symbols: np.ndarray) -> bytes:
        """The HYPER section of ``symbols`` (``[h, w]`` indices or ``[h, w, Dz]`` round(z))."""
        if self.mode == hyper_coding.FIXED:
            return hyper_coding.pack_indices(symbols, self.kz)
        if self.mode == hyper_coding.ENTROPY:
            return hyper_coding.encode_with_prior(symbols, self.counts)
        return factorized.compress(self.tables, symbols)

    def _decode_hyper(self, data: bytes, mode: int, zh: int, zw: int) -> np.ndarray:
        """Inverse of :meth:`_encode_hyper` for a file's ``mode`` (BitstreamError if corrupt)."""
        if mode == hyper_coding.FIXED:
            return hyper_coding.unpack_indices(data, zh * zw, self.kz).reshape(zh, zw)
        if mode == hyper_coding.ENTROPY:
            return hyper_coding.decode_with_prior(data, self.counts, zh * zw).reshape(zh, zw)
        return factorized.decompress(self.tables, data, (zh, zw, self.latent.hyper.dim))

    def _render(self, y_hat: np.ndarray, step: np.ndarray, rate_index: int, h: int,
                w: int) -> np.ndarray:
        rate = jnp.full((1,), rate_index, jnp.int32)
        out = _synthesise(self.vq, self.latent, self.p_vq, self.p_lat, jnp.asarray(y_hat),
                          jnp.asarray(step), rate)
        return np.asarray(out[0, :h, :w])

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8 (raises :class:`BitstreamError` for bad files)."""
        container = read_image_container(data, self.name)
        reader = ByteReader(container.section(SectionType.HEADER), "glc header")
        file_hash = reader.raw(HASH_BYTES)
        rate_index = reader.uvarint(max_value=len(self.lmbdas) - 1)
        mode = reader.uvarint(max_value=hyper_coding.FACTORIZED)
        reader.expect_end()
        check_file_weights(file_hash, self.weights_hash)
        if mode not in (hyper_coding.MODES[m] for m in self.allowed):
            names = {v: k for k, v in hyper_coding.MODES.items()}
            raise BitstreamError(f"glc header: hyper coding {names[mode]!r} does not fit the "
                                 f"model's {self.latent.hyper_module} hyper module")
        h, w = container.height, container.width
        zh, zw = -(-h // self.stride), -(-w // self.stride)
        symbols = self._decode_hyper(container.section(SectionType.HYPER), mode, zh, zw)
        decoder = ConditionalDecoder(container.section(SectionType.LATENTS), "gaussian")

        def read(_k, _m, scales, _mu):
            return decoder.decode_tabled(np.zeros(1), scales)

        y_hat, step = self._steps(symbols, read)
        return self._render(y_hat, step, rate_index, h, w)


def hyper_coding_modes() -> dict[str, int]:
    """Names of the hyper-index coding modes and their header codes."""
    return dict(hyper_coding.MODES)
