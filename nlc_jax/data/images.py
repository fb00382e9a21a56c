"""Reading, writing and listing images: every codec and CLI goes through these.

``load_image`` returns 8-bit RGB ``[H, W, 3]`` uint8 for any image Pillow can read:

* grayscale (``L``, ``1``) is replicated to three channels;
* palette (``P``) images are expanded through their palette;
* an alpha channel (``RGBA``, ``LA``, ``PA``) is dropped: the colour channels are kept as stored,
  not composited over a background;
* 16-bit images (``I;16*`` grayscale, 48/64-bit RGB(A) PNG) are reduced to 8 bits per channel;
* other colour spaces (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``) are converted by Pillow.

Each conversion emits one :class:`ImageConversionWarning` naming the file and what was done.
32-bit integer and float images (``I``, ``F``) are refused. Anything unreadable raises
:class:`ImageReadError` with a one-line message.
"""

from __future__ import annotations

import glob
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from nlc_jax.data.files import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageReadError(ValueError):
    """An input image that cannot be read, or an input spec that names no image."""


class ImageConversionWarning(UserWarning):
    """An input image was converted to 8-bit RGB (its mode, alpha or bit depth changed)."""


def _is_16bit(im: Image.Image) -> bool:
    if im.mode.startswith("I;16"):
        return True
    return any(str(tile.args[0] if isinstance(tile.args, tuple) else tile.args).endswith(
        ("16B", "16", "16L")) for tile in (im.tile or []) if tile.args)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as 8-bit RGB.

    Args:
      path: image file (any format Pillow reads).

    Returns:
      ``[H, W, 3]`` uint8 array.

    Raises:
      ImageReadError: missing, truncated, corrupt or unsupported file (one-line message).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            sixteen = _is_16bit(im)
            im.load()
            mode = im.mode
            if mode in ("I", "F"):
                raise ImageReadError(
                    f"{path}: unsupported {mode!r} image (32-bit integer/float); "
                    "convert it to 8-bit RGB first")
            if mode.startswith("I;16"):
                arr16 = np.asarray(im, dtype=np.uint16)
                gray = ((arr16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
                arr = np.repeat(gray[..., None], 3, axis=-1)
                _warn(path, "16-bit grayscale reduced to 8-bit RGB")
                return arr
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                _warn(path, "palette image expanded to RGB"
                      + (" (transparency dropped)" if im.mode == "RGBA" else ""))
            elif mode in ("RGBA", "LA", "PA", "RGBa", "La"):
                _warn(path, f"{mode} image: alpha channel dropped (colours kept as stored)")
            elif mode in ("L", "1"):
                _warn(path, f"grayscale ({mode}) image replicated to 3 channels")
            elif mode != "RGB":
                _warn(path, f"{mode} image converted to RGB")
            if sixteen:
                _warn(path, "16-bit image reduced to 8 bits per channel")
            if im.mode in ("LA", "La"):
                im = im.convert("L")
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageReadError(f"{path}: cannot read image ({reason})") from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image")
    return np.ascontiguousarray(arr)


def _warn(path: Path, what: str) -> None:
    warnings.warn(f"{path}: {what}", ImageConversionWarning, stacklevel=3)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """``[..., C]`` float image in [0, 1] → uint8: ``rint(255 · x)`` (float32, half to even),
    clipped to 0..255 — the one rounding rule every decoder uses."""
    return np.clip(np.rint(np.asarray(x, np.float32) * np.float32(255.0)), 0, 255).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """``[H, W, 3]`` (or ``[H, W]``) uint8 → PNG bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"save_png expects uint8, got {image.dtype}")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``[H, W, 3]`` uint8 ``image`` as a PNG, atomically (temp file + rename)."""
    return atomic_write_bytes(path, encode_png(image))


def list_images(spec: str | os.PathLike) -> list[Path]:
    """Expand an input spec into image files, sorted.

    Args:
      spec: an image file, a directory (its image files, not recursive), or a glob pattern.

    Raises:
      ImageReadError: the spec matches no image file.
    """
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageReadError(f"{path}: directory holds no image file ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageReadError(f"{text}: pattern matches no image file")
        return files
    raise ImageReadError(f"{text}: no such file or directory")
