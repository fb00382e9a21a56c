"""Real compression with a trained mean-scale hyperprior: ``.nlc`` files in, images out.

File layout (``nlc_jax.bitstream`` container, codec ``hyperprior``)::

    HEADER   weights hash (8 bytes) | rate index (uvarint)
    HYPER    hyper-latent ẑ = round(z), coded with the factorized prior's frozen integer tables
    LATENTS  residuals round(y - μ), coded under snapped zero-mean Gaussians of scale σ

The image is padded (edge replication) to a multiple of 64 before the analysis; the container's
geometry is the true size and the decoder crops back. ``(μ, σ) = h_s(ẑ)`` is recomputed by the
decoder from the decoded ẑ and ``ŷ = round(y - μ) + μ`` (see :mod:`nlc_jax.entropy.hyperprior`).
Inference params are ``{"model", "z_prior", "z_tables": {"counts", "offsets"}}``; the tables are
frozen once at export (:func:`export_params`) so encoder and decoder never re-derive them. A file
records a hash of these params, and decoding with other weights is refused.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.bitstream import (
    BitstreamError,
    ByteReader,
    ByteWriter,
    SectionType,
    read_container,
    write_container,
)
from nlc_jax.codecs.base import EncodeResult
from nlc_jax.codecs.hyperprior.model import STRIDE, MeanScaleHyperprior
from nlc_jax.entropy.factorized import EntropyTables, FactorizedPrior, make_tables
from nlc_jax.entropy.hyperprior import HyperpriorEntropyModel
from nlc_jax.metrics.psnr import psnr

HASH_BYTES = 8


# Jitted once per network shape (linen modules are hashable), shared by all codec instances.
@functools.partial(jax.jit, static_argnums=0)
def _analyse(model: MeanScaleHyperprior, params, x, rate):
    y = model.apply(params, x, rate, method="analyse")
    return y, model.apply(params, y, method="hyper_analyse")


@functools.partial(jax.jit, static_argnums=0)
def _hyper(model: MeanScaleHyperprior, params, z_hat):
    return model.apply(params, z_hat, method="hyper_synthesise")


@functools.partial(jax.jit, static_argnums=0)
def _synthesise(model: MeanScaleHyperprior, params, y_hat, rate):
    x = model.apply(params, y_hat, rate, method="synthesise")
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def pad_to_stride(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` → ``[H', W', 3]`` with ``H', W'`` multiples of 64 (edge replication)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")


def export_params(entropy: HyperpriorEntropyModel, params: dict[str, Any]) -> dict[str, Any]:
    """Training params ``{"model", "z_prior"}`` → inference params with frozen ``z_tables``."""
    params = jax.device_get(params)
    tables = make_tables(entropy.z_prior, params["z_prior"])
    return {"model": params["model"], "z_prior": params["z_prior"],
            "z_tables": {"counts": np.asarray(tables.counts, np.float32),
                         "offsets": np.asarray(tables.offsets, np.int64)}}


def file_weights_hash(data: bytes) -> bytes:
    """The hash of the model weights a hyperprior file was encoded with (its header's first
    :data:`HASH_BYTES` bytes; compare ``model.json``'s ``weights_hash`` of an export).

    Raises:
      BitstreamError: not a readable hyperprior file.
    """
    container = read_container(data)
    return ByteReader(container.section(SectionType.HEADER), "hyperprior header").raw(HASH_BYTES)


class HyperpriorCodec:
    """A trained mean-scale hyperprior as a :class:`~nlc_jax.codecs.base.LearnedCodec`.

    Args:
      params: inference params (see module docstring).
      model: the network (its sizes must match ``params``).
      entropy: the entropy model (factorized prior of ``model.n`` channels).
      weights_hash: 8-byte hash of ``params`` (written to / checked against each file).
      rate_index: which λ of a variable-rate model to encode at (0 for a single-λ model).
    """

    name = "hyperprior"

    def __init__(self, params: dict[str, Any], model: MeanScaleHyperprior,
                 entropy: HyperpriorEntropyModel, weights_hash: bytes, rate_index: int = 0):
        if not 0 <= int(rate_index) < model.num_rates:
            raise ValueError(f"rate_index={rate_index} out of range: the model has "
                             f"{model.num_rates} rate(s)")
        self.params = jax.tree.map(jnp.asarray, params["model"])
        self.tables = EntropyTables.from_dict(params["z_tables"])
        self.model, self.entropy = model, entropy
        self.weights_hash = bytes(weights_hash)
        self.rate_index = int(rate_index)

    @classmethod
    def from_params(cls, params: dict[str, Any], model_config: dict[str, Any],
                    rate_index: int = 0) -> HyperpriorCodec:
        """Codec from inference params and the export's model config (hash computed here)."""
        from nlc_jax.codecs.weights import weights_hash

        n, m = int(model_config["n"]), int(model_config["m"])
        model = MeanScaleHyperprior(n, m, num_rates=len(model_config["lmbdas"]))
        return cls(params, model, HyperpriorEntropyModel(FactorizedPrior(n)),
                   weights_hash(params), rate_index)

    def _hyper_fn(self, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, scales = _hyper(self.model, self.params, jnp.asarray(z_hat)[None])
        return np.asarray(means[0]), np.asarray(scales[0])

    def _synthesise(self, y_hat: np.ndarray, rate_index: int, h: int, w: int) -> np.ndarray:
        rate = jnp.full((1,), rate_index, jnp.int32)
        return np.asarray(_synthesise(self.model, self.params, jnp.asarray(y_hat)[None], rate)[0, :h, :w])

    def encode(self, image: np.ndarray) -> EncodeResult:
        """``[H, W, 3]`` uint8 → ``.nlc`` bytes, reconstruction ``[H, W, 3]`` uint8 and numbers."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        x = jnp.asarray(pad_to_stride(image)[None], jnp.float32) / 255.0
        y, z = _analyse(self.model, self.params, x, jnp.full((1,), self.rate_index, jnp.int32))
        z_bytes, y_bytes, y_hat = self.entropy.compress(
            self.tables, np.asarray(y[0]), np.asarray(z[0]), self._hyper_fn)
        header = ByteWriter().raw(self.weights_hash).uvarint(self.rate_index).getvalue()
        data = write_container(self.name, h, w, 3, 8, [(SectionType.HEADER, header),
                                                      (SectionType.HYPER, z_bytes),
                                                      (SectionType.LATENTS, y_bytes)])
        recon = self._synthesise(y_hat, self.rate_index, h, w)
        seconds = time.perf_counter() - t0
        info = {"bpp": 8.0 * len(data) / (h * w), "bpp_z": 8.0 * len(z_bytes) / (h * w),
                "bpp_y": 8.0 * len(y_bytes) / (h * w), "psnr": float(psnr(recon, image)),
                "encode_seconds": seconds}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8 (raises :class:`BitstreamError` for bad files)."""
        container = read_container(data)
        if container.codec != self.name:
            raise BitstreamError(f"file holds a {container.codec!r} stream, not {self.name!r}")
        if container.channels not in (1, 3) or container.bit_depth != 8:
            raise BitstreamError(f"hyperprior files are 8-bit RGB or gray, header says "
                                 f"{container.channels} channels of {container.bit_depth} bits")
        reader = ByteReader(container.section(SectionType.HEADER), "hyperprior header")
        file_hash = reader.raw(HASH_BYTES)
        rate_index = reader.uvarint(max_value=self.model.num_rates - 1)
        reader.expect_end()
        if file_hash != self.weights_hash:
            raise BitstreamError(
                f"file was encoded with model weights {file_hash.hex()}, but the checkpoint has "
                f"weights {self.weights_hash.hex()}: pass the checkpoint used to encode it")
        h, w = container.height, container.width
        z_shape = (-(-h // STRIDE), -(-w // STRIDE), self.model.n)
        y_hat = self.entropy.decompress(self.tables, container.section(SectionType.HYPER),
                                        container.section(SectionType.LATENTS), z_shape,
                                        self._hyper_fn)
        return self._synthesise(y_hat, rate_index, h, w)
