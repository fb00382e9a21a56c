"""COOL-CHIC overfitted image codec (Cool-chic 5 style): see ``docs/coolchic.md``."""

from nlc_jax.codecs.coolchic.arch import Arch, ArchError, mac_per_pixel
from nlc_jax.codecs.coolchic.codec import CoolChic, make_codec, reconstruct

__all__ = ["Arch", "ArchError", "CoolChic", "mac_per_pixel", "make_codec", "reconstruct"]
