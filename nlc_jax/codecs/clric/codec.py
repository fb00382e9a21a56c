"""The CLRIC codec: COOL-CHIC fitted to the latent of a pretrained VAE (see ``docs/clric.md``).

The fitted part *is* a :class:`~nlc_jax.codecs.coolchic.CoolChic` model whose target is the
``[h, w, C]`` VAE latent of the image (``C`` = the autoencoder's latent channels, ``h, w`` = the
image size / 8) instead of ``[H, W, 3]`` pixels: same latent pyramid, ARM, upsampling, synthesis,
quantization proxies, recipe and bitstream sections. CLRIC only changes

* the target (``prepare_target`` = VAE encode, optionally followed by the image itself, pixel-
  unshuffled to the latent grid, for the pixel-space term),
* the rate normalisation (bpp per *image* pixel: ``pixels_per_position = factor²``),
* the distortion (latent MSE, optionally ``+ pixel_weight · MSE(VAE-decode(x̂), image)``),
* the file: an extra ``AUX`` section names the autoencoder and hashes its weights, and the
  decoder runs the VAE decoder on the reconstructed latent.

Exactness: the latent pyramid and every network integer decode bit-exactly (COOL-CHIC's integer
ARM); the latent is computed by COOL-CHIC's numpy float32 synthesis and the image by the VAE's
float32 decoder, the same functions ``finalize`` runs, so ``decode`` returns ``finalize``'s
reconstruction on the same machine.
"""

from __future__ import annotations

import hashlib

import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from nlc_jax.autoencoders import TAEConfig, make_sd_vae, make_tae
from nlc_jax.bitstream.container import SectionType, read_image_container, write_container
from nlc_jax.codecs.base import EncodeResult
from nlc_jax.codecs.clric.autoencoder import BoundAutoencoder, load_named, read_section
from nlc_jax.codecs.coolchic import Arch, CoolChic, decode_fit, mac_per_pixel, synthesize_numpy
from nlc_jax.metrics.psnr import psnr

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
_TARGET_CACHE = 4  # targets kept per codec (a λ sweep asks for the same image's target again)


def space_to_depth(image: np.ndarray, factor: int) -> np.ndarray:
    """``[f·h, f·w, 3]`` → ``[h, w, f·f·3]`` (pixel unshuffle)."""
    hf, wf, c = image.shape
    x = image.reshape(hf // factor, factor, wf // factor, factor, c)
    return x.transpose(0, 2, 1, 3, 4).reshape(hf // factor, wf // factor, factor * factor * c)


def depth_to_space(x, factor: int):
    """``[h, w, f·f·3]`` → ``[f·h, f·w, 3]`` (numpy or jax arrays)."""
    h, w, _ = x.shape
    y = x.reshape(h, w, factor, factor, 3).transpose(0, 2, 1, 3, 4)
    return y.reshape(h * factor, w * factor, 3)


def clric_model(model: config_dict.ConfigDict, channels: int) -> config_dict.ConfigDict:
    """A CLRIC ``model`` block as a COOL-CHIC one for ``channels`` latent channels: ``C`` in a
    synthesis layer spec (``"C-3-residual-none"``) stands for ``channels``."""
    block = model.copy_and_resolve_references()
    block.unlock()
    block.synthesis = tuple(f"{channels}{spec[1:]}" if spec.startswith("C-") else spec
                            for spec in model.synthesis)
    block.out_channels = channels
    return block


def clric_arch(model: config_dict.ConfigDict, channels: int) -> Arch:
    """The COOL-CHIC architecture of a CLRIC ``model`` block (see :func:`clric_model`)."""
    return Arch.from_config(clric_model(model, channels))


class Clric(CoolChic):
    """COOL-CHIC in the latent space of a VAE (see the module docstring).

    Args:
      config: from ``configs/clric.py``; ``None`` gives a decode-only codec, which loads the
        autoencoder a file names (``nlc_jax.autoencoders.load``; see ``load_named``).
      autoencoder: use this autoencoder instead of loading ``config.autoencoder`` (tests, or
        SD-VAE weights loaded by the caller).
    """

    name = "clric"

    def __init__(self, config=None, autoencoder: BoundAutoencoder | None = None):
        self._ae = autoencoder
        self._targets: dict[bytes, np.ndarray] = {}
        if config is None:
            self.config = None
            return
        if self._ae is None:
            self._ae = BoundAutoencoder.load(config.autoencoder, config.weights_dir or None)
        dtype = str(config.autoencoder_dtype)
        if dtype not in _DTYPES:
            raise ValueError(f"clric: autoencoder_dtype must be one of {', '.join(_DTYPES)}, "
                             f"got {dtype!r}")
        # The autoencoder inside the fit (target, pixel term) may run in bfloat16; files are
        # always decoded by the float32 one (same weights, same hash).
        self._fit_ae = self._ae
        if dtype != "float32":
            cfg = self._ae.fns.config
            fns = (make_tae(cfg, _DTYPES[dtype]) if isinstance(cfg, TAEConfig)
                   else make_sd_vae(cfg, _DTYPES[dtype], self._ae.fns.name))
            self._fit_ae = BoundAutoencoder(self._ae.name, fns, self._ae.params, self._ae.digest)
        self.pixel_weight = float(config.pixel_weight)
        if self.pixel_weight < 0:
            raise ValueError(f"clric: pixel_weight must be >= 0, got {self.pixel_weight}")
        self.pixels_per_position = self._ae.factor ** 2
        derived = config.copy_and_resolve_references()
        derived.model = clric_model(config.model, self._ae.channels)
        super().__init__(derived)

    @property
    def autoencoder(self) -> BoundAutoencoder | None:
        """The autoencoder of this codec (``None`` for a decode-only codec before a decode)."""
        return self._ae

    # ---- fitting ------------------------------------------------------------------------
    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` uint8 → ``[h, w, C]`` latent (``[h, w, C + 64·3]`` with the image
        appended, pixel-unshuffled, when ``pixel_weight > 0``)."""
        image = np.asarray(image)
        key = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).digest()
        if key not in self._targets:
            target = self._fit_ae.encode(image)
            if self.pixel_weight > 0:
                f = self._ae.factor
                h, w = target.shape[:2]
                padded = np.pad(image, ((0, f * h - image.shape[0]), (0, f * w - image.shape[1]),
                                        (0, 0)), mode="edge").astype(np.float32) / 255.0
                target = np.concatenate([target, space_to_depth(padded, f)], axis=-1)
            while len(self._targets) >= _TARGET_CACHE:
                self._targets.pop(next(iter(self._targets)))
            self._targets[key] = target
        return self._targets[key]

    def _distortion(self, x, target, mask):
        """Latent MSE, plus ``pixel_weight`` · image MSE through the frozen VAE decoder."""
        c = self.arch.out_channels
        latent_mse = super()._distortion(x, target[..., :c], mask)
        if target.shape[-1] == c:
            return latent_mse
        f = self._ae.factor
        image = depth_to_space(target[..., c:], f)
        decoded = self._fit_ae.fns.decode(self._fit_ae.params, (x * mask[..., None])[None])[0]
        pmask = jnp.repeat(jnp.repeat(mask, f, axis=0), f, axis=1)
        pixel_mse = (jnp.sum(jnp.square(decoded - image) * pmask[..., None])
                     / (3.0 * jnp.maximum(jnp.sum(pmask), 1.0)))
        return latent_mse + self.pixel_weight * pixel_mse

    # ---- bitstream ----------------------------------------------------------------------
    def finalize(self, params, target: np.ndarray, image: np.ndarray, lmbda: float,
                 refine: bool = True) -> EncodeResult:
        h, w = image.shape[:2]
        latent_target = np.asarray(target, np.float32)[..., :self.arch.out_channels]
        sections, grids, nets, arch = self.code_fit(params, latent_target, lmbda, refine)
        data = write_container(self.name, h, w, 3, 8, [
            sections[0], (SectionType.AUX, self._ae.section()), *sections[1:]])
        latent = synthesize_numpy(grids, nets, arch)
        recon = self._ae.decode(latent, h, w)
        n = h * w
        info = {"bpp": 8.0 * len(data) / n, "psnr_db": float(psnr(image, recon)),
                "latent_mse": float(np.mean(np.square(latent - latent_target))),
                "latent_bpp": 8.0 * len(sections[2][1]) / n,
                "network_bpp": 8.0 * len(sections[1][1]) / n,
                "mac_per_pixel": mac_per_pixel(arch) / self.pixels_per_position}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def decode_latent(self, data: bytes) -> tuple[np.ndarray, BoundAutoencoder, int, int]:
        """``.nlc`` bytes → (``[h, w, C]`` float32 latent, its autoencoder, image height, width).

        Raises:
          BitstreamError: not a CLRIC file, corrupt, or made with another autoencoder.
        """
        c = read_image_container(data, self.name)
        section = c.section(SectionType.AUX)
        name, channels, _, _ = read_section(section)
        if self._ae is None:
            self._ae = load_named(name)
        self._ae.check(section)
        lh, lw = self._ae.latent_size(c.height, c.width)
        grids, nets, arch = decode_fit(c, lh, lw, channels)
        return synthesize_numpy(grids, nets, arch), self._ae, c.height, c.width

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8: VAE-decode of the decoded latent."""
        latent, ae, h, w = self.decode_latent(data)
        return ae.decode(latent, h, w)


def make_codec(config=None) -> Clric:
    """Registry factory; ``config=None`` gives a decode-only codec."""
    return Clric(config)
