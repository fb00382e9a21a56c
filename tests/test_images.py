"""Image reading: mode conversions with warnings, clean one-line errors, atomic writes."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from nlc_jax.data.images import (
    ImageConversionWarning,
    ImageReadError,
    list_images,
    load_image,
    save_png,
)


def _rgb(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_roundtrip_exact(tmp_path):
    img = _rgb()
    save_png(tmp_path / "a.png", img)
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), img)
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_grayscale_replicated_with_warning(tmp_path):
    gray = _rgb()[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    with pytest.warns(ImageConversionWarning, match="grayscale"):
        out = load_image(tmp_path / "g.png")
    assert out.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_alpha_dropped_colours_kept(tmp_path):
    img = _rgb()
    alpha = np.full(img.shape[:2] + (1,), 7, np.uint8)
    Image.fromarray(np.concatenate([img, alpha], -1), mode="RGBA").save(tmp_path / "a.png")
    with pytest.warns(ImageConversionWarning, match="alpha channel dropped"):
        out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out, img)


def test_palette_expanded(tmp_path):
    img = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(tmp_path / "p.png")
    with pytest.warns(ImageConversionWarning, match="palette"):
        out = load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))


def test_16bit_gray_rounded_to_8bit(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        out = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255, 128])


def _png_rgb16(path, arr16):
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_rgb_reduced_with_warning(tmp_path):
    arr16 = (_rgb(3, 4).astype(np.uint16) * 257)
    _png_rgb16(tmp_path / "c16.png", arr16)
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        out = load_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(out, (arr16 // 257).astype(np.uint8))


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_unreadable_files_raise_one_line(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is None:  # a truncated real PNG
        save_png(path, _rgb(64, 64))
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        load_image(path)
    assert "bad.png" in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_float_image_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.float32), mode="F").save(tmp_path / "f.tiff")
    with pytest.raises(ImageReadError, match="unsupported"):
        load_image(tmp_path / "f.tiff")


def test_list_images_dir_glob_file(tmp_path):
    for name in ["b.png", "a.jpg", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.png"]
    assert [p.name for p in list_images(str(tmp_path / "*.png"))] == ["b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(ImageReadError, match="no such file"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no image"):
        list_images(tmp_path / "empty")
