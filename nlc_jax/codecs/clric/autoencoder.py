"""The autoencoder side of CLRIC: which VAE a file was made with, and image ↔ latent maps.

A CLRIC file stores the overfitted COOL-CHIC decoder of a VAE latent; the image only exists after
the VAE decoder. The file therefore names the autoencoder (``load`` name, e.g. ``"taef2"``) and a
hash of its weights; a decoder holding different weights refuses the file instead of decoding a
wrong image.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import AutoencoderError, AutoencoderFns, WeightsError, load
from nlc_jax.autoencoders.api import pad_to_multiple
from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs.weights import autoencoder_hash
from nlc_jax.data.images import to_uint8

AE_SECTION_VERSION = 1
HASH_BYTES = 16
#: above this many image pixels, encode/decode run tile by tile (``encode_tiled``/``decode_tiled``)
TILED_ABOVE = 1 << 20
#: env var naming the weights of an autoencoder that is not a ``load`` name (e.g. an SD-VAE path)
PATH_ENV = "NLC_CLRIC_AUTOENCODER"


@dataclasses.dataclass(frozen=True)
class BoundAutoencoder:
    """An autoencoder with its parameters, its name as recorded in files and its weights hash."""

    name: str
    fns: AutoencoderFns
    params: Any
    digest: bytes

    @classmethod
    def of(cls, name: str, fns: AutoencoderFns, params: Any) -> BoundAutoencoder:
        return cls(name, fns, params, autoencoder_hash(params, HASH_BYTES))

    @classmethod
    def load(cls, name: str, weights_dir: str | None = None,
             dtype: Any = jnp.float32) -> BoundAutoencoder:
        """``nlc_jax.autoencoders.load(name)``; the recorded name is ``name`` as given."""
        fns, params = load(name, weights_dir=weights_dir or None, dtype=dtype)
        return cls.of(name, fns, params)

    @property
    def channels(self) -> int:
        return self.fns.latent_channels

    @property
    def factor(self) -> int:
        return self.fns.factor

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w)`` of an image (its sides padded up to multiples of ``factor``)."""
        return -(-height // self.factor), -(-width // self.factor)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` uint8 → ``[h, w, C]`` float32 latent (edge padding to ``factor``)."""
        x = pad_to_multiple(np.asarray(image, np.float32)[None] / 255.0, self.factor)
        if x.shape[1] * x.shape[2] > TILED_ABOVE:
            return np.asarray(self.fns.encode_tiled(self.params, x)[0], np.float32)
        return np.asarray(self.fns.encode(self.params, jnp.asarray(x))[0], np.float32)

    def decode(self, latent: np.ndarray, height: int, width: int) -> np.ndarray:
        """``[h, w, C]`` float32 latent → ``[height, width, 3]`` uint8 (cropped, clipped, rounded)."""
        z = np.asarray(latent, np.float32)[None]
        if z.shape[1] * z.shape[2] * self.factor ** 2 > TILED_ABOVE:
            y = self.fns.decode_tiled(self.params, z)
        else:
            y = self.fns.decode(self.params, jnp.asarray(z))
        return to_uint8(np.asarray(y, np.float32)[0, :height, :width])

    def section(self) -> bytes:
        """The file's autoencoder section: version, name, latent channels, factor, hash."""
        w = ByteWriter().fixed("u8", AE_SECTION_VERSION).blob(self.name.encode())
        w.uvarint(self.channels).uvarint(self.factor).raw(self.digest)
        return w.getvalue()

    def check(self, section: bytes) -> None:
        """Refuse a file made with another autoencoder (one-line :class:`BitstreamError`)."""
        name, channels, factor, digest = read_section(section)
        if digest != self.digest or channels != self.channels or factor != self.factor:
            raise BitstreamError(
                f"clric file was encoded with autoencoder {name!r} (weights hash "
                f"{digest.hex()}); this decoder has {self.name!r} ({self.digest.hex()})")


def read_section(data: bytes) -> tuple[str, int, int, bytes]:
    """Autoencoder section → ``(name, latent channels, factor, weights hash)``."""
    r = ByteReader(data, "clric autoencoder section")
    if r.fixed("u8") != AE_SECTION_VERSION:
        raise BitstreamError("clric autoencoder section: unsupported version")
    try:
        name = r.blob().decode()
    except UnicodeDecodeError:
        raise BitstreamError("clric autoencoder section: bad name") from None
    channels, factor = r.uvarint(4096), r.uvarint(64)
    digest = r.raw(HASH_BYTES)
    r.expect_end()
    if not channels or not factor:
        raise BitstreamError("clric autoencoder section: zero channels or factor")
    return name, channels, factor, digest


def load_named(name: str, weights_dir: str | None = None) -> BoundAutoencoder:
    """The autoencoder a file names: a ``load`` name, or ``$NLC_CLRIC_AUTOENCODER`` (a path).

    Raises:
      BitstreamError: it cannot be loaded (one line, with what to set).
    """
    try:
        return BoundAutoencoder.load(name, weights_dir)
    except (AutoencoderError, WeightsError, OSError) as first:
        path = os.environ.get(PATH_ENV)
        if path:
            try:
                bound = BoundAutoencoder.load(path)
            except (AutoencoderError, WeightsError, OSError) as err:
                raise BitstreamError(f"clric: cannot load ${PATH_ENV}={path}: {err}") from None
            return dataclasses.replace(bound, name=name)
        raise BitstreamError(
            f"clric: cannot load autoencoder {name!r} named in the file ({first}); set "
            f"$NLC_WEIGHTS_DIR or ${PATH_ENV}") from None
