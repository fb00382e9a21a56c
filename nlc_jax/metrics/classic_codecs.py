"""Classic-codec anchors computed on the fly with Pillow: JPEG (libjpeg, 4:2:0) and WebP.

The bits counted are the whole file Pillow writes (headers included), as CompressAI does for
its JPEG / WebP anchors.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

CODECS = ("jpeg", "webp")
DISPLAY_NAMES = {"jpeg": "JPEG (Pillow)", "webp": "WebP (Pillow)"}
DEFAULT_QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95)
LOWEST_QUALITY = {"jpeg": 1, "webp": 0}  # each codec's lowest rate setting in Pillow


def encode_decode(image: np.ndarray, codec: str, quality: int) -> tuple[np.ndarray, int]:
    """Compress ``image`` with a Pillow codec and decode it back.

    Args:
      image: ``[H, W, 3]`` uint8.
      codec: ``"jpeg"`` (baseline, Pillow's default 4:2:0 subsampling) or ``"webp"`` (lossy,
        ``method=6``, the slowest and best setting).
      quality: 0–100.

    Returns:
      ``([H, W, 3]`` uint8 decoded image, file size in bytes``)``.
    """
    buf = io.BytesIO()
    pil = Image.fromarray(np.asarray(image, np.uint8))
    if codec == "jpeg":
        pil.save(buf, format="JPEG", quality=int(quality))
    elif codec == "webp":
        pil.save(buf, format="WEBP", quality=int(quality), method=6)
    else:
        raise ValueError(f"unknown classic codec {codec!r}; choose from {', '.join(CODECS)}")
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("RGB"), np.uint8)
    return decoded, len(data)


def ladder(images: Mapping[str, np.ndarray], codec: str,
           qualities: Sequence[int] = DEFAULT_QUALITIES) -> Iterator[tuple[str, int, np.ndarray,
                                                                           float]]:
    """Code every image at every quality: the anchor curve of a benchmark.

    Args:
      images: name → ``[H, W, 3]`` uint8.
      codec: ``"jpeg"`` or ``"webp"``.
      qualities: Pillow qualities (0–100).

    Yields:
      ``(name, quality, decoded [H, W, 3] uint8, bpp)``, images in order, qualities within.
    """
    for name, image in images.items():
        h, w = image.shape[:2]
        for q in qualities:
            decoded, size = encode_decode(image, codec, q)
            yield name, int(q), decoded, 8.0 * size / (h * w)
