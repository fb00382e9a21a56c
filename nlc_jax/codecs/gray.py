"""Gray images: coded by the codecs' RGB models, marked gray in the file, decoded gray.

An input whose three channels are equal (a grayscale file, replicated by ``load_image``, or an
RGB file without colour) is fitted or encoded as any image; its file's container then says 1
channel (:func:`code_as_gray`), and every decoder returns :func:`gray_rgb` of what the codec
synthesises: ``(R + G + B + 1) // 3`` in all three channels. The encoder's reconstruction (its
``results.tsv`` PSNR) is computed by the same integer rule, so it still equals the decoded image
exactly, and no decoded gray image has colour.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nlc_jax.bitstream.container import with_channels
from nlc_jax.codecs.base import EncodeResult
from nlc_jax.metrics.psnr import psnr_exact


def is_gray(image: np.ndarray) -> bool:
    """Whether an ``[H, W, 3]`` image has three equal channels."""
    image = np.asarray(image)
    return bool(np.array_equal(image[..., 0], image[..., 1])
                and np.array_equal(image[..., 1], image[..., 2]))


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 → the same shape with every channel ``(R + G + B + 1) // 3`` (exact
    integers; an image that is already gray is unchanged)."""
    total = np.asarray(rgb, np.uint16).sum(axis=-1, keepdims=True)
    return np.repeat(((total + 1) // 3).astype(np.uint8), 3, axis=-1)


def code_as_gray(result: EncodeResult, image: np.ndarray) -> EncodeResult:
    """``result`` (an RGB file of ``image``) as the gray file of a gray ``image``: container
    channel count 1, reconstruction :func:`gray_rgb`, PSNR entries of ``info`` recomputed;
    ``result`` itself when ``image`` has colour."""
    if not is_gray(image):
        return result
    reconstruction = gray_rgb(result.reconstruction)
    info = dict(result.info)
    for key in ("psnr_db", "psnr"):
        if key in info:
            info[key] = psnr_exact(reconstruction, image)
    return dataclasses.replace(result, data=with_channels(result.data, 1),
                               reconstruction=reconstruction, info=info)
