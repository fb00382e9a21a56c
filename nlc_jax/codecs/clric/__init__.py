"""CLRIC: COOL-CHIC in the latent space of a pretrained VAE; see ``docs/clric.md``."""

from nlc_jax.codecs.clric.autoencoder import BoundAutoencoder
from nlc_jax.codecs.clric.codec import Clric, clric_arch, clric_model, make_codec

__all__ = ["BoundAutoencoder", "Clric", "clric_arch", "clric_model", "make_codec"]
