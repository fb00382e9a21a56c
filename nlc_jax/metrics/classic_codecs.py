"""Classic-codec anchors computed on the fly with Pillow: JPEG (libjpeg, 4:2:0) and WebP.

The bits counted are the whole file Pillow writes (headers included), as CompressAI does for
its JPEG / WebP anchors.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CODECS = ("jpeg", "webp")
DISPLAY_NAMES = {"jpeg": "JPEG (Pillow)", "webp": "WebP (Pillow)"}
DEFAULT_QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95)


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
