"""Size limits: what the ``.nlc`` format can hold, and what this library agrees to code.

* Format limits (fixed): each side 1..:data:`MAX_SIDE`, at most :data:`MAX_PIXELS` pixels.
* Resource limit (a setting): images of more than :func:`max_pixels` pixels are refused, by the
  encoder before their pixels are decoded (decompression bombs) and by every decoder before it
  allocates anything (a forged header). Default :data:`DEFAULT_MAX_PIXELS` (2^25, about 33.5
  million pixels: 8K UHD and 30-megapixel photos fit); the environment variable
  ``NLC_MAX_PIXELS`` raises or lowers it, up to :data:`MAX_PIXELS`. Encoder and decoders read the
  same setting, so whatever is encoded decodes with the same settings.
* Decoder weights: a header may declare at most :data:`MAX_PARAMETERS` network parameters
  (counted by :meth:`~nlc_jax.bitstream.byteio.ByteReader.declare_parameters`), so a forged
  layer list cannot make a decoder allocate gigabytes of weights.
"""

from __future__ import annotations

import os

MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
DEFAULT_MAX_PIXELS = 1 << 25
PIXELS_ENV = "NLC_MAX_PIXELS"
MAX_PARAMETERS = 1 << 20


def max_pixels() -> int:
    """The largest pixel count the encoders and decoders accept (``NLC_MAX_PIXELS`` or the
    default :data:`DEFAULT_MAX_PIXELS`).

    Raises:
      ValueError: ``NLC_MAX_PIXELS`` is not an integer in 1..:data:`MAX_PIXELS`.
    """
    text = os.environ.get(PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PIXELS:
        raise ValueError(f"{PIXELS_ENV} must be an integer 1..{MAX_PIXELS}, got {text!r}")
    return value


def check_image_size(height: int, width: int, error: type[Exception]) -> None:
    """Raise ``error`` (one line) unless an image of ``height × width`` is within the format's
    side limit and :func:`max_pixels`."""
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise error(f"image size {width}x{height} is outside the .nlc format's limit "
                    f"(each side 1..{MAX_SIDE})")
    limit = max_pixels()
    if height * width > limit:
        raise error(f"image size {width}x{height} ({height * width:,} pixels) is over the limit "
                    f"of {limit:,} pixels (set {PIXELS_ENV} to change it)")
