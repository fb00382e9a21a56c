"""Noise-to-Latent: latents generated from seeded Gaussian noise by a Gaussian Parameter
Prediction network; only the networks are transmitted (see ``docs/noise2latent.md``)."""

from nlc_jax.codecs.noise2latent.arch import N2LArch, mac_per_pixel
from nlc_jax.codecs.noise2latent.codec import Noise2Latent, make_codec, reconstruct

__all__ = ["N2LArch", "Noise2Latent", "mac_per_pixel", "make_codec", "reconstruct"]
