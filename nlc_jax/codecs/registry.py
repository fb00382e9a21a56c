"""Codec registry: codec names (configs) and container codec ids (files) → codec objects.

Each codec package registers a factory ``make(config) -> codec``; ``make(None)`` must return a
codec that can at least ``decode`` (a file carries what its decoder needs). ``decode.py`` looks the
codec up by the id stored in the file (:func:`decode_bytes`), so a file names its own decoder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from nlc_jax.bitstream.container import read_container
from nlc_jax.bitstream.errors import BitstreamError

# name -> "module:factory"; imported lazily so that loading one codec never imports the others.
_FACTORIES: dict[str, str] = {
    "clric": "nlc_jax.codecs.clric:make_codec",
    "coolchic": "nlc_jax.codecs.coolchic:make_codec",
    "hyperprior": "nlc_jax.codecs.hyperprior:make_codec",
    "noise2latent": "nlc_jax.codecs.noise2latent:make_codec",
}


class UnknownCodecError(ValueError):
    """Raised for a codec name that no package registers."""


def names() -> list[str]:
    """Registered codec names."""
    return sorted(_FACTORIES)


def factory(name: str) -> Callable[[Any], Any]:
    """The ``make(config)`` function of codec ``name``."""
    try:
        target = _FACTORIES[name]
    except KeyError:
        raise UnknownCodecError(
            f"unknown codec {name!r}; known codecs: {', '.join(names())}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def make(config: Any) -> Any:
    """Build the codec named by ``config.codec`` from its config."""
    return factory(config.codec)(config)


def decoder(name: str) -> Any:
    """A decode-capable codec for the codec name stored in a container."""
    try:
        return factory(name)(None)
    except UnknownCodecError:
        raise BitstreamError(f"no decoder is registered for codec {name!r}") from None


def decode_bytes(data: bytes) -> np.ndarray:
    """Decode ``.nlc`` bytes with the codec they name → ``[H, W, 3]`` uint8.

    Raises:
      BitstreamError: malformed, truncated or corrupt data, or an unknown codec.
    """
    return decoder(read_container(data).codec).decode(data)
