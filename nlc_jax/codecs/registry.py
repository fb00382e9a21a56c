"""Codec registry: codec names (configs) and container codec ids (files) → codec objects.

Each codec package registers a factory ``make(config) -> codec``; ``make(None)`` must return a
codec that can at least ``decode`` (a file carries what its decoder needs), except for the learned
codecs in :data:`TRAINED`, which decode with ``make({"checkpoint": <trained weights>})``.
``decode.py`` looks the codec up by the id stored in the file (:func:`decode_bytes`), so a file
names its own decoder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nlc_jax.bitstream.container import read_container
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs.gray import gray_rgb

# name -> "module:factory"; imported lazily so that loading one codec never imports the others.
_FACTORIES: dict[str, str] = {
    "clric": "nlc_jax.codecs.clric:make_codec",
    "coolchic": "nlc_jax.codecs.coolchic:make_codec",
    "glc": "nlc_jax.codecs.glc:make_codec",
    "hyperprior": "nlc_jax.codecs.hyperprior:make_codec",
    "noise2latent": "nlc_jax.codecs.noise2latent:make_codec",
    "rvdiff": "nlc_jax.codecs.rvdiff:make_codec",
}
#: trained codecs (``nlc-train``), whose decoder needs the trained weights (a checkpoint) besides
#: the file; their package (as in the factories above) also provides ``make_task(config)`` (the
#: ``nlc_jax.train.task.TrainTask``) and ``file_weights_hash(data) -> bytes`` (the weights a
#: file needs)
TRAINED = frozenset({"glc", "hyperprior", "rvdiff"})


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


def _package(name: str) -> Any:
    return importlib.import_module(_FACTORIES[name].split(":")[0])


def task_factory(name: str) -> Callable[[Any], Any]:
    """The ``make_task(config)`` function of trained codec ``name``.

    Raises:
      ValueError: ``name`` is not a trained codec.
    """
    if name not in TRAINED:
        raise ValueError(f"codec {name!r} cannot be trained; trainable codecs: "
                         f"{', '.join(sorted(TRAINED))}")
    return _package(name).make_task


def make(config: Any) -> Any:
    """Build the codec named by ``config.codec`` from its config."""
    return factory(config.codec)(config)


def decoder(name: str, checkpoint: str | None = None) -> Any:
    """A decode-capable codec for the codec name stored in a container.

    Args:
      name: the container's codec name.
      checkpoint: trained weights for the codecs that need them (:data:`TRAINED`: the training
        workdir or its ``export/`` folder); ignored by the others, whose files carry what their
        decoder needs.

    Raises:
      BitstreamError: no decoder for ``name``, or its trained weights are missing or unreadable.
    """
    try:
        make = factory(name)
    except UnknownCodecError:
        raise BitstreamError(f"no decoder is registered for codec {name!r}") from None
    if name not in TRAINED:
        return make(None)
    if not checkpoint:
        raise BitstreamError(f"a {name} file decodes only with the trained model that wrote it: "
                             "pass its checkpoint (nlc-decode --checkpoint <training workdir or "
                             "its export/ folder>; nlc_jax.decode(data, checkpoint=...))")
    try:
        return make({"checkpoint": checkpoint})
    except ValueError as err:  # CheckpointError: missing, corrupt or another model's weights
        raise BitstreamError(f"cannot load the {name} decoder: {err}") from None


def decode_bytes(data: bytes, checkpoint: str | None = None,
                 decoders: Mapping[str, Any] | None = None) -> np.ndarray:
    """Decode ``.nlc`` bytes with the codec they name → ``[H, W, 3]`` uint8 (equal channels for
    a gray file, see ``nlc_jax.codecs.gray``).

    Args:
      data: the file's bytes.
      checkpoint: trained weights, for the codecs in :data:`TRAINED` (see :func:`decoder`).
      decoders: decode-capable codecs to use, by codec name (a caller decoding many files keeps
        them, e.g. a CLRIC codec holding its autoencoder); other codecs come from
        :func:`decoder`.

    Raises:
      BitstreamError: malformed, truncated or corrupt data, an unknown codec, or a learned
        codec's file without (or with the wrong) trained weights.
    """
    container = read_container(data)
    kept = (decoders or {}).get(container.codec)
    if container.codec in TRAINED and not checkpoint and kept is None:
        try:
            needed = f" (weights {_package(container.codec).file_weights_hash(data).hex()})"
        except BitstreamError:  # a header too short to name them
            needed = ""
        raise BitstreamError(f"a {container.codec} file decodes only with the trained model that "
                             f"wrote it{needed}: pass its checkpoint (nlc-decode "
                             "--checkpoint <training workdir or its export/ folder>; "
                             "nlc_jax.decode(data, checkpoint=...))")
    image = (kept or decoder(container.codec, checkpoint)).decode(data)
    return gray_rgb(image) if container.channels == 1 else image
