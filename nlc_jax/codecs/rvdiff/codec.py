"""Real compression with a trained rate-variable diffusion codec: ``.nlc`` files in, images out.

File layout (``nlc_jax.bitstream`` container, codec ``rvdiff``)::

    HEADER   weights hash (8 bytes) | rate code (u16, t = code / 65535) | steps N (uvarint)
             | N − 1 randomness values α_i (f32 each) | noise seed (u32)
    HYPER    ẑ / Δ_z(t), rounded, coded with the factorized prior's frozen integer tables
    LATENTS  residuals round(y / Δ_y(t) − μ'), coded under snapped zero-mean Gaussians of σ'

``y`` is the autoencoder latent of the image edge-padded to a multiple of ``8 · stride``
(:meth:`RvdiffCodec.multiple`); the container's geometry is the true size and the decoder crops
back. The decoder rebuilds ``ŷ = Δ_y(t) · (round(...) + μ')`` (the forward process's state at
``t``), runs the sampler (:mod:`nlc_jax.codecs.rvdiff.sampler`) and the autoencoder's decoder.
Inference params: ``{"model", "z_prior", "z_tables": {"counts", "offsets"},
"autoencoder_digest"}`` (the digest, uint8 ``[16]``, is the hash of the autoencoder the model
was trained with, so the file's weights hash covers it too).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import pad_to_multiple
from nlc_jax.bitstream import BitstreamError, ByteReader, ByteWriter, SectionType, write_container
from nlc_jax.bitstream.container import read_image_container
from nlc_jax.codecs.base import EncodeResult, rgb8
from nlc_jax.codecs.clric import BoundAutoencoder
from nlc_jax.codecs.rvdiff.model import HYPER_STRIDE, RvdiffModel
from nlc_jax.codecs.rvdiff.rate import rate_code, rate_of_code
from nlc_jax.codecs.rvdiff.sampler import SamplerError, alpha_schedule, check_sampler, sample
from nlc_jax.codecs.weights import CheckpointError, check_file_weights
from nlc_jax.entropy.factorized import EntropyTables, FactorizedPrior, make_tables
from nlc_jax.entropy.hyperprior import HyperpriorEntropyModel
from nlc_jax.metrics.psnr import psnr

HASH_BYTES = 8
NAME = "rvdiff"


@functools.partial(jax.jit, static_argnums=0)
def _analyse(model: RvdiffModel, params, y, t):
    return model.apply(params, y, t, method="hyper_analyse")


@functools.partial(jax.jit, static_argnums=0)
def _hyper(model: RvdiffModel, params, z_sym, t):
    return model.apply(params, z_sym, t, method="hyper_synthesise")


@functools.partial(jax.jit, static_argnums=0)
def _steps(model: RvdiffModel, params, t):
    return model.apply(params, t, method="steps")


@functools.partial(jax.jit, static_argnums=0)
def _denoise(model: RvdiffModel, params, y, t):
    return model.apply(params, y, t, method="denoise")


def export_params(entropy: HyperpriorEntropyModel, params: dict[str, Any],
                  autoencoder_digest: bytes) -> dict[str, Any]:
    """Training params ``{"model", "z_prior"}`` → inference params (frozen ``z_tables`` and
    the autoencoder digest added)."""
    params = jax.device_get(params)
    tables = make_tables(entropy.z_prior, params["z_prior"])
    return {"model": params["model"], "z_prior": params["z_prior"],
            "z_tables": {"counts": np.asarray(tables.counts, np.float32),
                         "offsets": np.asarray(tables.offsets, np.int64)},
            "autoencoder_digest": np.frombuffer(autoencoder_digest, np.uint8).copy()}


def file_weights_hash(data: bytes) -> bytes:
    """The hash of the model weights an rvdiff file was encoded with (compare ``model.json``'s
    ``weights_hash``).

    Raises:
      BitstreamError: not a readable rvdiff file.
    """
    container = read_image_container(data, NAME)
    return ByteReader(container.section(SectionType.HEADER), "rvdiff header").raw(HASH_BYTES)


def build_model(model_config: dict[str, Any], dtype: Any = jnp.float32) -> RvdiffModel:
    """The network described by an export's (or a task's) model config."""
    return RvdiffModel(int(model_config["channels"]), int(model_config["hyper_channels"]),
                       tuple(model_config["y_steps"]), tuple(model_config["z_steps"]),
                       int(model_config["width"]), tuple(model_config["multipliers"]),
                       int(model_config["blocks"]), dtype)


class RvdiffCodec:
    """A trained rate-variable diffusion codec as a :class:`~nlc_jax.codecs.base.LearnedCodec`.

    Args:
      params: inference params (see the module docstring).
      model_config: the export's model config.
      weights_hash: 8-byte hash of ``params`` (written to / checked against each file).
      autoencoder: the autoencoder the model was trained with (its digest must match).
      rate: ``t ∈ [0, 1]`` to encode at (0: highest rate).
      steps: sampler steps ``N`` written to encoded files (0: plain hyperprior decode).
      alpha_max, alpha_power: the randomness schedule ``α(t)`` of encoded files.
      seed: the noise seed written to encoded files (uint32).

    Raises:
      CheckpointError: the autoencoder is not the one the model was trained with.
      RateError, SamplerError: bad rate or sampler settings.
    """

    name = NAME

    def __init__(self, params: dict[str, Any], model_config: dict[str, Any], weights_hash: bytes,
                 autoencoder: BoundAutoencoder, rate: float = 0.5, steps: int = 2,
                 alpha_max: float = 0.5, alpha_power: float = 1.0, seed: int = 0):
        digest = np.asarray(params["autoencoder_digest"], np.uint8).tobytes()
        if autoencoder.digest != digest:
            raise CheckpointError(
                f"rvdiff model was trained with autoencoder {model_config.get('autoencoder')!r} "
                f"(hash {digest.hex()}), got {autoencoder.name!r} ({autoencoder.digest.hex()})")
        self.rate_code = rate_code(rate)
        self.steps = int(steps)
        self.alphas = alpha_schedule(rate_of_code(self.rate_code), self.steps, alpha_max,
                                     alpha_power)
        if not 0 <= int(seed) < 1 << 32:
            raise SamplerError(f"seed must be a uint32, got {seed}")
        self.seed = int(seed)
        self.model = build_model(model_config)
        self.params = jax.tree.map(jnp.asarray, params["model"])
        self.tables = EntropyTables(counts=np.asarray(params["z_tables"]["counts"]),
                                    offsets=np.asarray(params["z_tables"]["offsets"], np.int64))
        self.entropy = HyperpriorEntropyModel(FactorizedPrior(self.model.hyper_channels))
        self.weights_hash = bytes(weights_hash)
        self.autoencoder = autoencoder

    @property
    def multiple(self) -> int:
        """Images are edge-padded to a multiple of this before the autoencoder."""
        return self.autoencoder.factor * self.model.stride

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """The latent ``(h, w)`` of an image (sides padded up to :attr:`multiple`)."""
        m, f = self.multiple, self.autoencoder.factor
        return -(-height // m) * m // f, -(-width // m) * m // f

    # ---- the networks, one image at a time ------------------------------------------------
    def _t(self, t: float) -> jax.Array:
        return jnp.full((1,), t, jnp.float32)

    def step_y(self, t: float) -> np.ndarray:
        """``Δ_y(t)`` ``[C]`` float32."""
        return np.asarray(_steps(self.model, self.params, self._t(t))[0][0], np.float32)

    def _hyper_fn(self, t: float):
        def hyper(z_sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            loc, scale = _hyper(self.model, self.params, jnp.asarray(z_sym)[None], self._t(t))
            return np.asarray(loc[0]), np.asarray(scale[0])
        return hyper

    def denoise(self, y: np.ndarray, t: float) -> np.ndarray:
        """The U-Net's ``x̂₀`` of ``y`` ``[h, w, C]`` at time ``t``."""
        return np.asarray(_denoise(self.model, self.params, jnp.asarray(y)[None],
                                   self._t(t))[0], np.float32)

    def reconstruct_latent(self, y_hat: np.ndarray, t: float, steps: int,
                           alphas: tuple[float, ...], seed: int) -> np.ndarray:
        """The sampler's latent ``[h, w, C]`` from the decoded quantized latent ``ŷ``."""
        return sample(y_hat, t, steps, seed, alphas, self.denoise, self.step_y)

    # ---- coding ----------------------------------------------------------------------------
    def encode_latent(self, image: np.ndarray) -> tuple[bytes, bytes, np.ndarray]:
        """``[H, W, 3]`` uint8 → ``(z_bytes, y_bytes, ŷ [h, w, C])`` at this codec's rate."""
        x = pad_to_multiple(np.asarray(image)[None], self.multiple)[0]
        y = self.autoencoder.encode(x)
        t = rate_of_code(self.rate_code)
        step = self.step_y(t)
        z = _analyse(self.model, self.params, jnp.asarray(y)[None], self._t(t))[0]
        z_bytes, y_bytes, y_units = self.entropy.compress(
            self.tables, y / step, np.asarray(z), self._hyper_fn(t))
        return z_bytes, y_bytes, (y_units * step).astype(np.float32)

    def _header(self) -> bytes:
        w = ByteWriter().raw(self.weights_hash).fixed("u16", self.rate_code).uvarint(self.steps)
        for a in self.alphas:
            w.fixed("f32", a)
        return w.fixed("u32", self.seed).getvalue()

    def encode(self, image: np.ndarray) -> EncodeResult:
        """``[H, W, 3]`` uint8 → ``.nlc`` bytes, reconstruction ``[H, W, 3]`` uint8, numbers."""
        image = rgb8(image)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        z_bytes, y_bytes, y_hat = self.encode_latent(image)
        data = write_container(self.name, h, w, 3, 8, [(SectionType.HEADER, self._header()),
                                                      (SectionType.HYPER, z_bytes),
                                                      (SectionType.LATENTS, y_bytes)])
        t = rate_of_code(self.rate_code)
        latent = self.reconstruct_latent(y_hat, t, self.steps, self.alphas, self.seed)
        recon = self.autoencoder.decode(latent, h, w)
        n = h * w
        info = {"bpp": 8.0 * len(data) / n, "bpp_z": 8.0 * len(z_bytes) / n,
                "bpp_y": 8.0 * len(y_bytes) / n, "psnr": float(psnr(recon, image)),
                "rate": t, "steps": float(self.steps),
                "encode_seconds": time.perf_counter() - t0}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def read_header(self, data: bytes) -> tuple[Any, float, int, tuple[float, ...], int]:
        """``.nlc`` bytes → ``(container, t, steps, alphas, seed)``.

        Raises:
          BitstreamError: not an rvdiff file, corrupt, or made with other weights.
        """
        container = read_image_container(data, self.name)
        reader = ByteReader(container.section(SectionType.HEADER), "rvdiff header")
        file_hash = reader.raw(HASH_BYTES)
        t = rate_of_code(int(reader.fixed("u16")))
        steps = reader.uvarint()
        try:
            check_sampler(steps, 0.0, 0.0)
        except SamplerError as err:
            raise BitstreamError(f"rvdiff header: {err}") from None
        alphas = tuple(float(reader.fixed("f32")) for _ in range(max(steps - 1, 0)))
        if any(not 0.0 <= a <= 1.0 for a in alphas):
            raise BitstreamError("rvdiff header: randomness values outside [0, 1]")
        seed = int(reader.fixed("u32"))
        reader.expect_end()
        check_file_weights(file_hash, self.weights_hash)
        return container, t, steps, alphas, seed

    def decode_latent(self, data: bytes) -> tuple[np.ndarray, float, int, tuple[float, ...], int,
                                                  int, int]:
        """``.nlc`` bytes → ``(ŷ [h, w, C], t, steps, alphas, seed, H, W)`` (no sampling)."""
        container, t, steps, alphas, seed = self.read_header(data)
        h, w = container.height, container.width
        lh, lw = self.latent_size(h, w)
        z_shape = (lh // HYPER_STRIDE, lw // HYPER_STRIDE, self.model.hyper_channels)
        y_units = self.entropy.decompress(self.tables, container.section(SectionType.HYPER),
                                          container.section(SectionType.LATENTS), z_shape,
                                          self._hyper_fn(t))
        return (y_units * self.step_y(t)).astype(np.float32), t, steps, alphas, seed, h, w

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8 (raises :class:`BitstreamError` for bad files)."""
        y_hat, t, steps, alphas, seed, h, w = self.decode_latent(data)
        latent = self.reconstruct_latent(y_hat, t, steps, alphas, seed)
        return self.autoencoder.decode(latent, h, w)
