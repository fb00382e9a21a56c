"""Reading, writing and listing images: every codec and CLI goes through these.

``load_image`` returns 8-bit RGB ``[H, W, 3]`` uint8 for any image Pillow can read:

* an EXIF orientation (JPEG, TIFF, WebP, PNG ``eXIf`` before the pixel data) is applied: the
  image is coded as it is displayed, e.g. a 64×48 JPEG with orientation 6 as 48×64;
* grayscale (``L``, ``1``) is replicated to three channels;
* palette (``P``) images are expanded through their palette;
* an alpha channel (``RGBA``, ``LA``, ``PA``) is dropped: the colour channels are kept as stored,
  not composited over a background;
* 16-bit images (``I;16*`` grayscale, 16-bit RGB(A) and gray+alpha PNG and TIFF) are reduced to
  8 bits per channel by one rule, rounding: ``(v · 255 + 32767) // 65535``;
* other colour spaces (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``) are converted by Pillow.

Each conversion emits one :class:`ImageConversionWarning` naming the file and what was done.
32-bit integer and float images (``I``, ``F``) are refused. Sizes are checked from the header,
before any pixel is decoded: a side over 65,536 (the ``.nlc`` format's limit) or more pixels than
:func:`nlc_jax.bitstream.limits.max_pixels` (a decompression bomb) is refused. Anything
unreadable or refused raises :class:`ImageReadError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from nlc_jax.bitstream.limits import check_image_size
from nlc_jax.data.files import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ORIENTATION_TAG = 0x0112  # EXIF Orientation
_TRANSPOSED = (5, 6, 7, 8)  # orientations that swap width and height
#: Pillow raw modes of 16-bit-per-sample colour images (16-bit gray opens in an ``I;16`` mode)
_SIXTEEN_BIT = ("RGB;16B", "RGB;16L", "RGB;16N", "RGBA;16B", "RGBA;16L", "RGBA;16N", "LA;16B")
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class ImageReadError(ValueError):
    """An input image that cannot be read, or an input spec that names no image."""


class ImageConversionWarning(UserWarning):
    """An input image was converted to 8-bit RGB (its mode, alpha or bit depth changed)."""


def _rawmodes(im: Image.Image) -> list[str]:
    return [str(t.args[0] if isinstance(t.args, tuple) else t.args)
            for t in (im.tile or []) if t.args]


def _is_16bit(rawmodes: list[str]) -> bool:
    """16 bits per colour sample (not 16 bits per pixel, as in RGB565 ``BGR;16``)."""
    return any(r in _SIXTEEN_BIT for r in rawmodes)


def _open(path: Path) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb warning: the size is checked here,
    against :func:`~nlc_jax.bitstream.limits.max_pixels`, before the pixels are decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    width, height = im.size
    try:
        check_image_size(height, width, ImageReadError)
    except ImageReadError as e:
        im.close()
        raise ImageReadError(f"{path}: {e}") from None
    return im


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) not yet applied to ``im``'s pixels; 1 if absent or unreadable.

    Never decodes pixels: a PNG's metadata is read as far as Pillow has parsed it when it opens
    the file (an ``eXIf`` chunk after the pixel data is ignored). Pillow itself applies a TIFF's
    orientation (to its reported size and, on loading, to its pixels).
    """
    if im.format == "TIFF":
        return 1
    try:
        exif = Image.Image.getexif(im) if im.format == "PNG" else im.getexif()
        value = exif.get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` as displayed under EXIF ``orientation`` (what ``ImageOps.exif_transpose`` does)."""
    return {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
            4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
            6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
            8: lambda a: np.rot90(a, 1)}[orientation](arr)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of the image :func:`load_image` returns (EXIF orientation applied),
    from the file header: no pixel is decoded.

    Raises:
      ImageReadError: missing, unreadable or refused (too large) file (one-line message).
    """
    path = Path(path)
    with _read_errors(path), _open(path) as im:
        width, height = im.size
        if _orientation(im) in _TRANSPOSED:
            width, height = height, width
    return int(height), int(width)


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Turn a missing or unreadable file into one :class:`ImageReadError` naming ``path``."""
    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except _READ_ERRORS as e:
        raise ImageReadError(f"{path}: cannot read image ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _round16(values: np.ndarray) -> np.ndarray:
    """16-bit values → 8 bits by rounding: ``(v · 255 + 32767) // 65535``."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _swap_endian(rawmode: str) -> str:
    if rawmode.endswith("16N"):
        return rawmode[:-1] + ("B" if sys.byteorder == "little" else "L")
    return rawmode[:-1] + {"B": "L", "L": "B"}[rawmode[-1]]


def _decode_as(path: Path, rawmode: str) -> np.ndarray:
    """The pixels of ``path`` unpacked with ``rawmode`` instead of the file's own."""
    with _open(path) as im:
        im.tile = [t._replace(args=(rawmode, *t.args[1:]) if isinstance(t.args, tuple)
                              else rawmode) for t in im.tile]
        im.load()
        return np.asarray(im)


def _colour16(path: Path, im: Image.Image, rawmodes: list[str]) -> np.ndarray:
    """The colour channels (RGB, or L of gray+alpha) of a loaded 16-bit RGB(A) / LA image
    whose tiles had ``rawmodes``, 16 bits.

    Pillow keeps only the high byte of each sample; the low bytes come from a second decode of
    the same data unpacked with the other byte order (or, for ``LA;16B``, as 8-bit RGBA bytes).
    """
    if len(set(rawmodes)) != 1:
        raise ImageReadError(f"{path}: 16-bit image with several raw modes {sorted(rawmodes)}")
    rawmode = rawmodes[0]
    if rawmode == "LA;16B":
        raw = _decode_as(path, "RGBA").astype(np.uint16)
        return (raw[..., 0] << 8 | raw[..., 1])[..., None]
    high = np.asarray(im)[..., :3].astype(np.uint16)
    low = _decode_as(path, _swap_endian(rawmode))[..., :3].astype(np.uint16)
    return high << 8 | low


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as 8-bit RGB.

    Args:
      path: image file (any format Pillow reads).

    Returns:
      ``[H, W, 3]`` uint8 array, as displayed (EXIF orientation applied).

    Raises:
      ImageReadError: missing, truncated, corrupt, unsupported or too large file (one-line
        message).
    """
    path = Path(path)
    with _read_errors(path), _open(path) as im:
        orientation = _orientation(im)
        rawmodes = _rawmodes(im)
        im.load()
        arr = _to_rgb(path, im, rawmodes)
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image")
    if orientation != 1:
        _warn(path, f"EXIF orientation {orientation} applied "
              f"({arr.shape[1]}x{arr.shape[0]} stored)")
        arr = _orient(arr, orientation)
    return np.ascontiguousarray(arr)


def _to_rgb(path: Path, im: Image.Image, rawmodes: list[str]) -> np.ndarray:
    """A loaded image (whose tiles had ``rawmodes``) → ``[H, W, 3]`` uint8 by the module's
    conversion rules (with warnings)."""
    mode = im.mode
    if mode in ("I", "F"):
        raise ImageReadError(f"{path}: unsupported {mode!r} image (32-bit integer/float); "
                             "convert it to 8-bit RGB first")
    if mode.startswith("I;16"):
        gray = _round16(np.asarray(im, dtype=np.uint16))
        _warn(path, "16-bit grayscale reduced to 8-bit RGB (rounded)")
        return np.repeat(gray[..., None], 3, axis=-1)
    if _is_16bit(rawmodes):
        colour = _round16(_colour16(path, im, rawmodes))
        _warn(path, "16-bit image reduced to 8 bits per channel (rounded)"
              + ("; alpha channel dropped" if im.mode in ("RGBA", "LA") else ""))
        return np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour
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
    if im.mode in ("LA", "La"):
        im = im.convert("L")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


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


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """``[H, W, C]`` → the centre ``[size, size, C]`` (the image itself if ``size`` is 0)."""
    if not size:
        return image
    h, w = image.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[top:top + size, left:left + size]
