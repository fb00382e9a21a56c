"""Neural-network layers shared by learned codecs (GDN, bounded reparameterisations, sub-pixel
transposed convolution)."""

from nlc_jax.layers.gdn import GDN, lower_bound, nonneg_init, nonneg_value
from nlc_jax.layers.subpixel import SubpixelConvTranspose, subpixel_conv_transpose

__all__ = ["GDN", "SubpixelConvTranspose", "lower_bound", "nonneg_init", "nonneg_value",
           "subpixel_conv_transpose"]
