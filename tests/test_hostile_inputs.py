"""Inputs a hostile or careless user gives (issue 22's defects 1–11): each is coded correctly or
refused with one line and the right exit status, and a batch goes on with the other images."""

from __future__ import annotations

import collections
import os
import stat
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from coolchic_helpers import ROOT, get_config, random_params, smooth_image
from PIL import Image, ImageOps

from nlc_jax.bitstream import BitstreamError, ByteReader, ByteWriter, SectionType
from nlc_jax.bitstream.container import read_container, with_channels, write_container
from nlc_jax.bitstream.limits import MAX_PARAMETERS, max_pixels
from nlc_jax.codecs import registry
from nlc_jax.codecs.coolchic import CoolChic
from nlc_jax.codecs.gray import code_as_gray, gray_rgb, is_gray
from nlc_jax.codecs.overfitted.layers import read_layers
from nlc_jax.data.datasets import ImageSource, input_names, open_inputs
from nlc_jax.data.files import atomic_write_bytes
from nlc_jax.data.images import ImageReadError, image_size, load_image
from nlc_jax.fit.buckets import BucketPolicy
from nlc_jax.fit.engine import FitOptions
from nlc_jax.fit.pipeline import EncodeSettings, encode_images
from nlc_jax.metrics.psnr import psnr_exact

TESTS = Path(__file__).parent


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(**env),
                          capture_output=True, text=True, timeout=600)


def _one_line_error(proc: subprocess.CompletedProcess, status: int) -> str:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(path: Path, arr16: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): gray 0, RGB 2, gray+alpha
    4, RGBA 6."""
    h, w = arr16.shape[:2]
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _tiff48(path: Path, arr16: np.ndarray, order: str) -> None:
    """An uncompressed 16-bit RGB TIFF written by hand, ``order`` ``<`` or ``>``."""
    h, w, _ = arr16.shape
    data = arr16.astype(f"{order}u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, 122), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 128), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data))]
    ifd = struct.pack(f"{order}H", len(entries))
    for tag, kind, count, value in entries:
        if kind == 3 and count == 1:
            ifd += struct.pack(f"{order}HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack(f"{order}HHII", tag, kind, count, value)
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(f"{order}I", 8)
    bits = struct.pack(f"{order}HHH", 16, 16, 16)
    path.write_bytes(head + ifd + struct.pack(f"{order}I", 0) + bits + data)


def _bomb(path: Path, side: int = 12000) -> None:
    """A ~100-byte PNG declaring ``side × side`` RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def _exif_jpeg(path: Path, image: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(path, exif=exif, quality=95)


def _colour(h: int, w: int, seed: int) -> np.ndarray:
    return smooth_image(h, w, seed=seed)


# 1. EXIF orientation -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_exif_orientation_is_applied_as_displayed(tmp_path, fmt):
    stored = _colour(48, 64, seed=1)  # 64 wide, 48 high
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.{fmt}"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(stored).save(path, exif=exif, **({"lossless": True} if fmt == "webp"
                                                          else {}))
        shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        got = load_image(path)
        np.testing.assert_array_equal(got, shown)
        assert image_size(path) == got.shape[:2] == ImageSource("x", path=path).size()
    assert load_image(tmp_path / f"o6.{fmt}").shape == (64, 48, 3)  # what people see


# 2. duplicate stems -------------------------------------------------------------------------

def test_duplicate_stems_get_distinct_names(tmp_path):
    for name in ("dup.png", "dup.jpg", "other.png"):
        Image.fromarray(_colour(8, 8, 0)).save(tmp_path / name)
    names = [s.name for s in open_inputs(str(tmp_path))]
    assert names == ["dup.jpg", "dup.png", "other"]
    # the same file name in two folders of a glob: the later one is refused, alone, in one line
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        Image.fromarray(_colour(8, 8, 0)).save(tmp_path / folder / "x.png")
    sources = open_inputs(str(tmp_path / "*" / "x.png"))
    assert sources[0].name == "x.png" and sources[0].size() == (8, 8)
    with pytest.raises(ImageReadError, match="same file name") as err:
        sources[1].size()
    assert "\n" not in str(err.value)
    assert input_names([Path("d/dup.png"), Path("d/dup.jpg"), Path("d/dup.png.jpg")]) == [
        "dup.png", "dup.jpg", None]  # "dup.png" taken by the first in path order


# 3. and 4. sizes checked from the header ----------------------------------------------------

def test_side_over_the_format_limit_refused_from_the_header(tmp_path):
    Image.new("RGB", (65537, 1)).save(tmp_path / "wide.png")
    with pytest.raises(ImageReadError, match="outside the .nlc format's limit") as err:
        ImageSource("wide", path=tmp_path / "wide.png").size()
    assert "wide.png" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ImageReadError, match="outside"):
        ImageSource("arr", array=np.zeros((1, 65537, 3), np.uint8)).load()


def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    _bomb(tmp_path / "bomb.png")
    assert (tmp_path / "bomb.png").stat().st_size < 200
    start = time.perf_counter()
    for read in (load_image, image_size):
        with pytest.raises(ImageReadError, match="over the limit") as err:
            read(tmp_path / "bomb.png")
        assert "12000x12000" in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - start < 2.0  # no pixel was decoded
    Image.fromarray(_colour(16, 16, 0)).save(tmp_path / "small.png")
    monkeypatch.setenv("NLC_MAX_PIXELS", "255")
    with pytest.raises(ImageReadError, match="limit of 255 pixels"):
        load_image(tmp_path / "small.png")
    with pytest.raises(BitstreamError, match="over the limit"):
        read_container(write_container("coolchic", 16, 16, 3, 8, []))
    monkeypatch.setenv("NLC_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="NLC_MAX_PIXELS"):
        max_pixels()


# 5. and 6. decoder bombs and files needing a model ------------------------------------------

def _forged_layers_header() -> bytes:
    """A valid-looking COOL-CHIC header (version 4) declaring 32 synthesis layers of 4096."""
    w = ByteWriter().fixed("u8", 4)
    for value in (7, 8, 1, 0, 0, 0, 0):  # levels, context, hidden, hyper, hyper start, IFCE
        w.uvarint(value)
    w.fixed("u8", 0).uvarint(32)
    for _ in range(32):
        w.uvarint(4096).fixed("u8", 1).fixed("u8", 2)
    return w.getvalue()


def _bomb_files() -> dict[str, bytes]:
    sections = [(SectionType.HEADER, b"\x04"), (SectionType.NETWORKS, b""),
                (SectionType.LATENTS, b"")]
    return {
        "huge.nlc": write_container("coolchic", 16384, 16384, 3, 8, sections),
        "layers.nlc": write_container("coolchic", 16, 16, 3, 8, [
            (SectionType.HEADER, _forged_layers_header()), (SectionType.NETWORKS, b""),
            (SectionType.LATENTS, b"")]),
        "hyper.nlc": write_container("hyperprior", 16, 16, 3, 8, [(SectionType.HEADER, b"x")]),
    }


def test_forged_headers_refused_before_allocating():
    files = _bomb_files()
    start = time.perf_counter()
    with pytest.raises(BitstreamError, match="over the limit"):
        registry.decode_bytes(files["huge.nlc"])
    with pytest.raises(BitstreamError, match="network parameters"):
        registry.decode_bytes(files["layers.nlc"])
    assert time.perf_counter() - start < 5.0
    # the budget is per header: many stacks (Noise-to-Latent's GPPs) share it
    stack = ByteWriter().uvarint(1).uvarint(1000).fixed("u8", 1).fixed("u8", 0).getvalue()
    stacks = MAX_PARAMETERS // 2000 + 1  # 2000 parameters each (1000 weights, 1000 biases)
    reader = ByteReader(stack * stacks, "noise2latent header")
    for _ in range(stacks - 1):
        read_layers(reader)
    with pytest.raises(BitstreamError, match="network parameters"):
        read_layers(reader)


def test_hyperprior_file_needs_its_checkpoint(tmp_path):
    data = _bomb_files()["hyper.nlc"]
    with pytest.raises(BitstreamError, match="checkpoint"):
        registry.decode_bytes(data)
    with pytest.raises(BitstreamError, match="cannot load the hyperprior decoder"):
        registry.decode_bytes(data, checkpoint=str(tmp_path / "no_such_run"))


@pytest.fixture(scope="module")
def coolchic_files() -> dict[str, tuple[bytes, np.ndarray]]:
    """A colour and a gray COOL-CHIC file (random parameters, 11×9): bytes, reconstruction."""
    config = get_config("fast")
    config.recipe.rdoq_passes = 0
    codec = CoolChic(config)
    colour = smooth_image(11, 9, seed=3)
    gray = np.repeat(colour[..., 1:2], 3, axis=-1)
    out = {}
    for name, image in (("colour", colour), ("gray", gray)):
        result = codec.finalize(random_params(codec, 11, 9, seed=7), codec.prepare_target(image),
                                image, 1e-3)
        coded = code_as_gray(result, image)
        out[name] = (coded.data, coded.reconstruction)
        if name == "gray":
            assert not np.array_equal(result.reconstruction[..., 0], result.reconstruction[..., 1])
            assert coded.info["psnr_db"] == psnr_exact(coded.reconstruction, image)
        else:
            assert coded is result
    return out


def test_decode_cli_bombs_and_models_one_line_each(tmp_path, coolchic_files):
    src = tmp_path / "in"
    src.mkdir()
    for name, data in _bomb_files().items():
        (src / name).write_bytes(data)
    for name, (data, _) in coolchic_files.items():
        (src / f"{name}.nlc").write_bytes(data)
    proc = _run([str(ROOT / "decode.py"), str(src), "--output", str(tmp_path / "out")])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 3, proc.stderr
    assert {e.split(": ")[1].rsplit("/", 1)[-1] for e in errors} == set(_bomb_files())
    for name, (_, reconstruction) in coolchic_files.items():
        decoded = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        np.testing.assert_array_equal(decoded, reconstruction)

    proc = _run([str(ROOT / "decode.py"), str(src / "hyper.nlc"), "--output", str(tmp_path),
                 f"--config.checkpoint={tmp_path / 'no_such_run'}"])
    assert "cannot load the hyperprior decoder" in _one_line_error(proc, 1)
    (tmp_path / "file").write_text("")
    proc = _run([str(ROOT / "decode.py"), str(src), "--output", str(tmp_path / "file" / "x")])
    assert "cannot create the folder" in _one_line_error(proc, 2)


# 7. and 8. flags ----------------------------------------------------------------------------

_CONFIG = "--config=coolchic:fast"


@pytest.mark.parametrize("args, env, expected", [
    (["--config=configs/coolchic.py:nope"], {}, "unknown coolchic preset 'nope'"),
    ([_CONFIG, "--config.foo=1"], {}, "unknown config key 'foo'"),
    ([_CONFIG, "--config.model.foo=1"], {}, "unknown config key 'foo'"),
    (["--config=configs/no_such_file.py"], {}, "cannot load the config file"),
    (["--config=configs/no_such_file.py", "--config.lmbda=1"], {}, "cannot load the config"),
    ([_CONFIG, "--bucket_multiple=0"], {}, "--bucket_multiple must be >= 1"),
    ([_CONFIG, "--chunk_steps=0"], {}, "--chunk_steps must be >= 1"),
    ([_CONFIG, "--config.lmbda=inf"], {}, "finite number > 0"),
    ([_CONFIG, "--lmbdas=0.001,nan"], {}, "finite number > 0"),
    ([_CONFIG, "--config.lmbda=abc"], {}, "could not convert string to float"),
    ([_CONFIG], {"NLC_MAX_PIXELS": "lots"}, "NLC_MAX_PIXELS must be an integer"),
    ([_CONFIG, "--output={tmp}/file/out"], {}, "cannot create the folder"),
])
def test_encode_flag_errors_are_one_line_exit_2(tmp_path, args, env, expected):
    (tmp_path / "file").write_text("")
    args = [a.format(tmp=tmp_path) for a in args]
    if not any(a.startswith("--output") for a in args):
        args.append(f"--output={tmp_path / 'out'}")
    proc = _run([str(ROOT / "encode.py"), f"--input={ROOT / 'samples'}", *args], **env)
    line = _one_line_error(proc, 2)
    assert line.startswith("encode.py: error: ") and expected in line


@pytest.mark.parametrize("args, expected", [
    (["--config=configs/hyperprior.py:nope"], "unknown hyperprior preset 'nope'"),
    (["--config=configs/hyperprior.py:tiny", "--config.foo=1"], "unknown config key 'foo'"),
    (["--config=configs/no_such_file.py"], "cannot load the config file"),
    (["--config=configs/hyperprior.py:tiny", "--workdir={tmp}/file/run"], "cannot create"),
])
def test_train_flag_errors_are_one_line_exit_2(tmp_path, args, expected):
    (tmp_path / "file").write_text("")
    args = [a.format(tmp=tmp_path) for a in args]
    if not any(a.startswith("--workdir") for a in args):
        args.append(f"--workdir={tmp_path / 'run'}")
    line = _one_line_error(_run([str(ROOT / "train.py"), *args]), 2)
    assert line.startswith("train.py: error: ") and expected in line


def test_engine_settings_refuse_zero():
    with pytest.raises(ValueError, match="chunk_steps"):
        FitOptions(chunk_steps=0)
    with pytest.raises(ValueError, match="patience"):
        FitOptions(patience=0)
    with pytest.raises(ValueError, match="multiple"):
        BucketPolicy(multiple=0)


# 9. file modes -------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_of_a_plain_write(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write_bytes(tmp_path / "x.nlc", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_model_export_gets_the_mode_of_a_plain_write(tmp_path):
    from nlc_jax.codecs.weights import export_inference

    old = os.umask(0o022)
    try:
        export_inference(tmp_path, {"w": np.ones(3, np.float32)}, {"codec": "hyperprior"})
    finally:
        os.umask(old)
    for name in ("params.safetensors", "model.json"):  # safetensors alone writes 0o600
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


# 10. gray images -----------------------------------------------------------------------------

def test_gray_files_decode_gray(coolchic_files):
    data, reconstruction = coolchic_files["gray"]
    assert read_container(data).channels == 1
    decoded = registry.decode_bytes(data)
    np.testing.assert_array_equal(decoded, reconstruction)
    assert (decoded == decoded[..., :1]).all()
    colour, colour_reconstruction = coolchic_files["colour"]
    assert read_container(colour).channels == 3
    np.testing.assert_array_equal(registry.decode_bytes(colour), colour_reconstruction)
    rgb = np.array([[[10, 20, 31], [7, 7, 7]]], np.uint8)
    np.testing.assert_array_equal(gray_rgb(rgb)[..., 0], [[20, 7]])  # (R + G + B + 1) // 3
    assert with_channels(with_channels(colour, 1), 3) == colour


# 11. 16-bit inputs ---------------------------------------------------------------------------

def _rounded(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


@pytest.mark.parametrize("kind", ["gray", "rgb", "gray_alpha", "rgba", "tiff_le", "tiff_be"])
def test_16bit_inputs_reduced_by_one_rounding_rule(tmp_path, kind):
    channels = {"gray": 1, "gray_alpha": 2, "rgba": 4}.get(kind, 3)
    arr16 = np.random.default_rng(5).integers(0, 65536, (5, 7, channels)).astype(np.uint16)
    arr16[0, :4, 0] = [128, 32895, 32896, 65535]  # rounding and truncation differ at 32895
    path = tmp_path / ("x.tif" if kind.startswith("tiff") else "x.png")
    if kind.startswith("tiff"):
        _tiff48(path, arr16, "<" if kind == "tiff_le" else ">")
    else:
        _png16(path, arr16[..., 0] if channels == 1 else arr16,
               {"gray": 0, "rgb": 2, "gray_alpha": 4, "rgba": 6}[kind])
    with pytest.warns(UserWarning, match="16-bit"):
        out = load_image(path)
    colour = arr16[..., :3] if channels >= 3 else np.repeat(arr16[..., :1], 3, axis=-1)
    np.testing.assert_array_equal(out, _rounded(colour))


# all at once: one batch through the engine -------------------------------------------------

def _tiny_codec():
    config = get_config("fast")
    config.recipe.n_itr, config.recipe.warmup_steps = 12, 2
    config.recipe.final_steps, config.recipe.n_candidates = 2, 1
    config.recipe.rdoq_passes = 0
    return registry.make(config)


def _odd_inputs(folder: Path) -> dict[str, tuple[int, int] | str]:
    """The odd inputs of issue 22's table (docs/reliability.md) written into ``folder``: file
    name → the ``(height, width)`` it is coded at, or the words of its one-line refusal."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _colour(12, 16, 1)
    Image.fromarray(rgb[..., 0], mode="L").save(folder / "gray8.png")
    Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), mode="LA").save(folder / "gray_alpha.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]]), mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).quantize(16).save(folder / "palette.png")
    _png16(folder / "rgb16.png", rgb.astype(np.uint16) * 257 + 100, 2)
    _png16(folder / "gray16.png", rgb[..., 0].astype(np.uint16) * 257 + 100, 0)
    Image.fromarray(rgb[:1, :1]).save(folder / "one.png")
    Image.fromarray(_colour(1, 4097, 2)).save(folder / "wide4097.png")
    Image.fromarray(_colour(300, 1, 3)).save(folder / "tall300.png")
    _exif_jpeg(folder / "exif6.jpg", rgb, 6)  # stored 16 wide, 12 high; shown 12 wide
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).save(folder / "progressive.jpg", progressive=True, quality=95)
    Image.fromarray(rgb).save(folder / "image.webp", lossless=True)
    Image.fromarray(rgb).save(folder / "image.tif")
    (folder / "empty.png").write_bytes(b"")
    Image.fromarray(_colour(64, 64, 4)).save(folder / "full.png")
    data = (folder / "full.png").read_bytes()
    (folder / "full.png").unlink()
    (folder / "truncated.png").write_bytes(data[:len(data) // 2])
    (folder / "text.png").write_text("this is not an image\n")
    _bomb(folder / "bomb.png")
    coded = {name: (12, 16) for name in ("gray8.png", "gray_alpha.png", "rgba.png",
                                         "palette.png", "rgb16.png", "gray16.png", "cmyk.jpg",
                                         "progressive.jpg", "image.webp", "image.tif")}
    return {**coded, "one.png": (1, 1), "wide4097.png": (1, 4097), "tall300.png": (300, 1),
            "exif6.jpg": (16, 12), "empty.png": "cannot identify", "truncated.png": "truncated",
            "text.png": "cannot identify", "bomb.png": "over the limit"}


def test_odd_inputs_coded_as_stated_or_refused_in_one_line(tmp_path):
    """Each odd input is read at its stated size (and gray ones gray) or refused with one line
    naming the file; the table in docs/reliability.md."""
    expected = _odd_inputs(tmp_path)
    sources = {s.path.name: s for s in open_inputs(str(tmp_path))}
    assert sorted(sources) == sorted(expected)
    for name, want in expected.items():
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            if isinstance(want, str):
                with pytest.raises(ImageReadError) as err:
                    sources[name].load()
                message = str(err.value)
                assert message.startswith(f"{sources[name].path}: ") and "\n" not in message
                assert want in message.split(": ", 1)[1], message
                continue
            image = sources[name].load()
        assert image.shape == (*want, 3) and image.dtype == np.uint8, name
        assert sources[name].size() == want, name
        assert is_gray(image) == name.startswith("gray"), name


@pytest.mark.slow  # COOL-CHIC through the engine: minutes of compiling on a 2-core CPU
def test_batch_of_odd_inputs_goes_on(tmp_path):
    """One batch of every odd input (and clashing stems) through the real COOL-CHIC pipeline:
    the refused ones fail alone, the others are coded at their stated size and decode to the
    reconstruction whose PSNR is in results.tsv."""
    src = tmp_path / "in"
    expected = _odd_inputs(src)
    Image.fromarray(_colour(16, 16, 2)).save(src / "dup.png")
    Image.fromarray(_colour(16, 16, 3)).save(src / "dup.jpg", quality=95)
    Image.new("RGB", (65537, 1)).save(src / "wide.png")
    expected.update({"dup.png": (16, 16), "dup.jpg": (16, 16), "wide.png": "outside"})
    out = tmp_path / "out"
    settings = EncodeSettings(lmbdas=(2e-3,), batch_size=8, policy=BucketPolicy(multiple=16),
                              options=FitOptions(chunk_steps=6), checkpoint_every_s=None,
                              progress=False)
    with pytest.warns(UserWarning):
        outcome = encode_images(_tiny_codec(), open_inputs(str(src)), out, settings)
    refused = {name for name, want in expected.items() if isinstance(want, str)}
    assert all("\n" not in e for e in outcome.errors)
    assert {Path(e.split(":")[0]).name for e in outcome.errors} == refused
    rows = {r["image"]: r for r in outcome.rows}
    stems = collections.Counter(Path(name).stem for name in expected)
    names = {name: name if stems[Path(name).stem] > 1 else Path(name).stem  # clashing stems
             for name in expected if name not in refused}
    assert sorted(rows) == sorted(names.values())
    assert len((out / "results.tsv").read_text().splitlines()) == 1 + len(names)
    for name, row_name in names.items():
        data = (out / f"{row_name}.nlc").read_bytes()
        decoded = registry.decode_bytes(data)
        assert decoded.shape == (*expected[name], 3), name
        original = load_image(src / name)
        assert rows[row_name]["psnr_db"] == psnr_exact(decoded, original), name
        gray = name.startswith("gray")
        assert read_container(data).channels == (1 if gray else 3), name
        assert is_gray(decoded) or not gray, name


def test_encode_cli_batch_goes_on_past_refused_inputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_colour(16, 16, 2)).save(src / "dup.png")
    Image.fromarray(_colour(16, 16, 3)).save(src / "dup.jpg", quality=95)
    Image.new("RGB", (65537, 1)).save(src / "wide.png")
    _bomb(src / "bomb.png")
    out = tmp_path / "out"
    proc = _run([str(TESTS / "toy_encode.py"), f"--config={TESTS / 'toy_config.py'}",
                 "--noprogress", f"--input={src}", f"--output={out}", "--bucket_multiple=16"])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and any("wide.png" in e for e in errors)
    assert any("bomb.png" in e for e in errors)
    rows = (out / "results.tsv").read_text().splitlines()[1:]
    assert sorted(r.split("\t")[0] for r in rows) == ["dup.jpg", "dup.png"]
    assert (out / "dup.png.nlc").is_file() and (out / "dup.jpg.nlc").is_file()
