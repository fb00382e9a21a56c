"""The public Python API, re-exported by ``nlc_jax``:

    import nlc_jax
    config = nlc_jax.load_config("coolchic", "fast")
    results = nlc_jax.encode(image, config, lmbdas=(0.001, 0.004))   # list[EncodeResult]
    pixels = nlc_jax.decode(results[0].data)                         # [H, W, 3] uint8

Overfitted codecs are fitted in batches by :mod:`nlc_jax.fit` (images of similar size share a
padded batch, every λ of an image is one more fit in it); learned codecs encode in one pass.
Nothing is written to disk: ``nlc-encode`` adds files, resume and ``results.tsv`` on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ml_collections import config_dict

from nlc_jax.codecs import registry
from nlc_jax.codecs.base import EncodeResult, OverfittedCodec
from nlc_jax.codecs.gray import code_as_gray
from nlc_jax.config_files import load_config
from nlc_jax.fit.buckets import BucketPolicy, plan_batches
from nlc_jax.fit.coding import TargetShapes, code_batch, decoder_candidates
from nlc_jax.fit.engine import Engine, FitOptions, make_mesh

__all__ = ["EncodeResult", "FitDivergedError", "decode", "encode", "load_config", "make_codec"]


class FitDivergedError(ValueError):
    """Raised by :func:`encode` when a fit stays non-finite after the engine's restarts."""


def make_codec(config: config_dict.ConfigDict) -> Any:
    """The codec named by ``config.codec``, built from ``config`` (see :func:`load_config`)."""
    return registry.make(config)


def _as_images(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    single = isinstance(images, np.ndarray) and images.ndim == 3
    out = [images] if single else list(images)
    for i, image in enumerate(out):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image {i}: expected [H, W, 3] uint8, got {image.dtype} "
                             f"{image.shape}")
        out[i] = np.ascontiguousarray(image)
    if not out:
        raise ValueError("no images to encode")
    return out


def encode(images: np.ndarray | Sequence[np.ndarray], config: config_dict.ConfigDict | Any,
           lmbdas: Sequence[float] | None = None, *, batch_size: int = 8, seed: int = 0,
           bucket_multiple: int = 64,
           options: FitOptions | None = None) -> list[EncodeResult]:
    """Encode images in memory.

    Args:
      images: one ``[H, W, 3]`` uint8 image or a sequence of them (sizes may differ).
      config: a codec config (:func:`load_config`) or a codec (:func:`make_codec`).
      lmbdas: rate points; default ``(config.lmbda,)``. A learned codec has one rate.
      batch_size: fits (image × λ) per batched fit (overfitted codecs).
      seed: fit ``k`` (image-major order) is seeded with ``seed + k``.
      bucket_multiple: padded target sides are multiples of this (fewer compiled shapes).
      options: engine options (chunk length, early stopping, restarts); default ``FitOptions()``.

    Returns:
      ``len(images) × len(lmbdas)`` :class:`EncodeResult` (``data``: the ``.nlc`` bytes,
      ``reconstruction``: what :func:`decode` returns, ``info``: bpp, PSNR, …), image-major:
      result ``i · len(lmbdas) + j`` is image ``i`` at ``lmbdas[j]``.

    Raises:
      ValueError: a bad image, config or λ; :class:`FitDivergedError` for a diverged fit.
    """
    codec = make_codec(config) if isinstance(config, config_dict.ConfigDict) else config
    options = options or FitOptions()
    images = _as_images(images)
    lmbdas = tuple(float(lm) for lm in (lmbdas if lmbdas is not None else
                                        (codec.config.lmbda,)))
    if not lmbdas or any(not (np.isfinite(lm) and lm > 0) for lm in lmbdas):
        raise ValueError(f"every lambda must be a finite number > 0, got {lmbdas}")
    if not isinstance(codec, OverfittedCodec):
        if len(lmbdas) > 1:
            raise ValueError("a λ sweep needs an overfitted codec; a learned codec has one rate")
        return [code_as_gray(codec.encode(image), image) for image in images]
    fits = [(i, lm) for i in range(len(images)) for lm in lmbdas]
    shape_of = TargetShapes(codec)
    plan = plan_batches([shape_of(images[i].shape[:2])[:2] for i, _ in fits], batch_size,
                        BucketPolicy(multiple=bucket_multiple))
    candidates = decoder_candidates(codec)
    mesh = make_mesh()
    engines = [Engine(c, mesh, options) for c in candidates]
    results: list[EncodeResult | None] = [None] * len(fits)
    for batch in plan:
        coded = code_batch(candidates, engines, [images[fits[k][0]] for k in batch.fits],
                           [fits[k][1] for k in batch.fits], [seed + k for k in batch.fits],
                           multiple=bucket_multiple, options=options)
        for k, c in zip(batch.fits, coded, strict=True):
            if c.result is None:
                raise FitDivergedError(f"image {fits[k][0]} (lmbda {fits[k][1]:g}): {c.error}")
            results[k] = c.result
    return results


def decode(data: bytes, *, checkpoint: str | None = None) -> np.ndarray:
    """Decode ``.nlc`` bytes with the codec named in them → ``[H, W, 3]`` uint8.

    Args:
      data: the file's bytes.
      checkpoint: learned codecs (hyperprior) only: the trained model that wrote the file (a
        training workdir or its ``export/`` folder), as ``nlc-decode --checkpoint``.

    Raises:
      nlc_jax.bitstream.BitstreamError: malformed or corrupt data, or a learned codec's file
        without (or with another) model.
    """
    return registry.decode_bytes(bytes(data), checkpoint)
