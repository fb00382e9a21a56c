"""The lossless entropy-coding demo: real images through a real .nlc container."""

from pathlib import Path

import numpy as np
import pytest

from nlc_jax.bitstream import BitstreamError, read_container
from nlc_jax.data.images import load_image, save_png
from nlc_jax.entropy import demo

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_colour_transform_is_reversible():
    rgb = np.random.default_rng(0).integers(0, 256, (17, 13, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 255]]
    np.testing.assert_array_equal(demo.ycocg_to_rgb(demo.rgb_to_ycocg(rgb)), rgb)


def test_round_trip_on_sample_crop():
    image = load_image(SAMPLES / "kodim23_256.png")[:48, :40]
    data = demo.encode(image)
    container = read_container(data)
    assert (container.codec, container.height, container.width) == ("entropy_demo", 48, 40)
    np.testing.assert_array_equal(demo.decode(data), image)
    assert len(data) < 0.8 * image.size  # well below the raw 8 bits per sample


def test_cli_writes_files_and_reports(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    save_png(src / "crop.png", load_image(SAMPLES / "kodim01_256.png")[:24, :32])
    assert demo.main(["--input", str(src), "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "crop.png" in out and "yes" in out
    assert (tmp_path / "out" / "crop.nlc").is_file()
    assert (tmp_path / "out" / "summary.json").is_file()
    assert demo.main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_corrupt_files_raise_bitstream_error():
    image = load_image(SAMPLES / "kodim15_256.png")[:16, :16]
    data = bytearray(demo.encode(image))
    data[20] ^= 0x40
    with pytest.raises(BitstreamError, match="checksum"):
        demo.decode(bytes(data))
