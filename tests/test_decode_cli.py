"""decode.py: files and directories, one-line errors for bad files, the batch goes on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from coolchic_helpers import ROOT, get_config, random_params, smooth_image
from PIL import Image

from nlc_jax.codecs.coolchic import CoolChic


def test_decode_cli(tmp_path):
    codec = CoolChic(get_config("fast"))
    image = smooth_image(11, 9, seed=3)
    result = codec.finalize(random_params(codec, 11, 9, seed=7), codec.prepare_target(image),
                            image, 1e-3)
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.nlc").write_bytes(result.data)
    (src / "truncated.nlc").write_bytes(result.data[:-7])
    (src / "garbage.nlc").write_bytes(b"not a file at all")

    run = subprocess.run([sys.executable, str(ROOT / "decode.py"), str(src), "--output",
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                         env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 2, run.stderr
    assert any("truncated.nlc" in e for e in errors) and any("garbage.nlc" in e for e in errors)
    assert "Traceback" not in run.stderr
    decoded = np.asarray(Image.open(tmp_path / "out" / "good.png"))
    np.testing.assert_array_equal(decoded, result.reconstruction)

    one = subprocess.run([sys.executable, str(ROOT / "decode.py"), str(src / "good.nlc"),
                          "--output", str(tmp_path / "single.png")], capture_output=True,
                         text=True, cwd=ROOT, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert one.returncode == 0, one.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "single.png")),
                                  result.reconstruction)
