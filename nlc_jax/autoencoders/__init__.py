"""Image autoencoders in JAX: the Stable Diffusion VAE (AutoencoderKL) and the tiny TAE family,
loaded from PyTorch-format weights without PyTorch, and a VQGAN-style VQ autoencoder trained
here (GLC's stage I, ``docs/glc.md``). See ``docs/autoencoders.md``.

``load(name_or_path) -> (AutoencoderFns, params)``; ``fns.encode(params, x)`` takes
``[B, H, W, 3]`` RGB in [0, 1], ``fns.decode(params, z)`` returns RGB ≈ [0, 1].
"""

from nlc_jax.autoencoders.api import (
    AutoencoderError,
    AutoencoderFns,
    load,
    make_sd_vae,
    make_tae,
    make_vq,
    pad_to_multiple,
)
from nlc_jax.autoencoders.loaders import WeightsError
from nlc_jax.autoencoders.sd_vae import PRESETS, VAEConfig
from nlc_jax.autoencoders.tae import TAE_VARIANTS, TAEConfig
from nlc_jax.autoencoders.vector_quantizer import VQSettings
from nlc_jax.autoencoders.vqgan import VQAutoencoder, VQConfig

__all__ = ["PRESETS", "TAE_VARIANTS", "AutoencoderError", "AutoencoderFns", "TAEConfig",
           "VAEConfig", "VQAutoencoder", "VQConfig", "VQSettings", "WeightsError", "load",
           "make_sd_vae", "make_tae", "make_vq", "pad_to_multiple"]
