"""Pretrained image autoencoders in JAX: the Stable Diffusion VAE (AutoencoderKL) and the tiny
TAE family, loaded from PyTorch-format weights without PyTorch. See ``docs/autoencoders.md``.

``load(name_or_path) -> (AutoencoderFns, params)``; ``fns.encode(params, x)`` takes
``[B, H, W, 3]`` RGB in [0, 1], ``fns.decode(params, z)`` returns RGB ≈ [0, 1].
"""

from nlc_jax.autoencoders.api import (
    AutoencoderError,
    AutoencoderFns,
    load,
    make_sd_vae,
    make_tae,
    pad_to_multiple,
)
from nlc_jax.autoencoders.loaders import WeightsError
from nlc_jax.autoencoders.sd_vae import PRESETS, VAEConfig
from nlc_jax.autoencoders.tae import TAE_VARIANTS, TAEConfig

__all__ = ["PRESETS", "TAE_VARIANTS", "AutoencoderError", "AutoencoderFns", "TAEConfig",
           "VAEConfig", "WeightsError", "load", "make_sd_vae", "make_tae", "pad_to_multiple"]
