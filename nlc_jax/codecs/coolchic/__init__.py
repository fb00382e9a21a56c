"""COOL-CHIC overfitted image codec (Cool-chic 5 style): see ``docs/coolchic.md``."""

from nlc_jax.codecs.coolchic.arch import Arch, ArchError, mac_per_pixel
from nlc_jax.codecs.coolchic.codec import (
    CoolChic,
    decode_fit,
    make_codec,
    reconstruct,
    synthesize_numpy,
)

__all__ = ["Arch", "ArchError", "CoolChic", "decode_fit", "mac_per_pixel", "make_codec",
           "reconstruct", "synthesize_numpy"]
