"""encode.py end to end (subprocesses, toy codec): sweep outputs, results.tsv, errors, resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from toy_codec import ToyCodec, subprocess_env

from nlc_jax.fit.pipeline import COLUMNS

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _encode(args: list[str], **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(TESTS / "toy_encode.py"),
           f"--config={TESTS / 'toy_config.py'}", "--noprogress", *args]
    return subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600, **kw)


def _images(folder: Path, sizes) -> dict[str, np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(1)
    out = {}
    for i, (h, w) in enumerate(sizes):
        img = np.clip(rng.normal(128, 40, (h // 4, w // 4, 3)), 0, 255).astype(np.uint8)
        img = np.repeat(np.repeat(img, 4, 0), 4, 1)
        Image.fromarray(img).save(folder / f"img{i}.png")
        out[f"img{i}"] = img
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    return [dict(zip(COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]


def test_sweep_outputs_rows_and_bad_input(tmp_path):
    images = _images(tmp_path / "in", [(16, 24), (24, 16)])
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    proc = _encode([f"--input={tmp_path / 'in'}", f"--output={out}", "--batch_size=4",
                    "--lmbdas=0.0005,0.004", "--bucket_multiple=32"])
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0], proc.stderr
    rows = _rows(out / "results.tsv")
    assert sorted((r["image"], float(r["lmbda"])) for r in rows) == [
        ("img0", 0.0005), ("img0", 0.004), ("img1", 0.0005), ("img1", 0.004)]
    codec = ToyCodec()
    for r in rows:
        path = out / f"{r['image']}_lmbda{float(r['lmbda']):g}.nlc"
        image = images[r["image"]]
        data = path.read_bytes()
        assert float(r["bpp"]) == pytest.approx(8 * len(data) / image[..., 0].size, rel=1e-5)
        recon = codec.decode(data)
        mse = np.mean((recon.astype(float) - image) ** 2)
        assert float(r["psnr_db"]) == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-3)
        assert r["device"].startswith("cpu") and r["batch_id"] == "0-0"
        assert float(r["mac_per_pixel"]) == 9.0 and float(r["encode_s"]) > 0
    # smaller λ → more bits, for each image
    by = {(r["image"], float(r["lmbda"])): float(r["bpp"]) for r in rows}
    assert by[("img0", 0.0005)] > by[("img0", 0.004)]
    assert "padding wastes" in proc.stderr
    assert not list(out.glob(".*.tmp")) and not (out / ".inflight").exists()

    again = _encode([f"--input={tmp_path / 'in' / 'img*.png'}", f"--output={out}",
                     "--lmbdas=0.0005,0.004"])
    assert again.returncode == 0, again.stderr
    assert "wrote 0 file(s)" in again.stderr and len(_rows(out / "results.tsv")) == 4


@pytest.mark.parametrize("args, message", [
    (["--lmbdas=0.001,abc"], "--lmbdas must be comma-separated numbers"),
    (["--lmbdas=-1"], "every lambda must be a finite number > 0"),
    (["--batch_size=0"], "--batch_size must be >= 1"),
    (["--input=/nonexistent/dir"], "/nonexistent/dir: no such file or directory"),
    (["--input=tfds:kodak"], "tfds"),
])
def test_bad_flags_one_line_error(tmp_path, args, message):
    base = [f"--input={tmp_path}", f"--output={tmp_path / 'o'}"]
    proc = _encode(base + args)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("encode.py: error:") and message in last, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_kill9_during_checkpointed_encode_then_resume(tmp_path):
    images = _images(tmp_path / "in", [(16, 16), (16, 16), (32, 16)])
    out = tmp_path / "out"
    args = [f"--input={tmp_path / 'in'}", f"--output={out}", "--batch_size=2",
            "--checkpoint_every=0.001", "--chunk_steps=5", "--config.steps=400"]
    cmd = [sys.executable, str(TESTS / "toy_encode.py"), f"--config={TESTS / 'toy_config.py'}",
           "--noprogress", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    meta = out / ".inflight" / "meta.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.exists() and '"phase_index": 1' in meta.read_text():
            break
        time.sleep(0.2)
    assert proc.poll() is None, "encode finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(out.glob("*.nlc")) and not list(out.glob(".*.tmp"))

    done = _encode(args)
    assert done.returncode == 0, done.stderr
    assert "resumed from its checkpoint" in done.stderr
    rows = _rows(out / "results.tsv")
    assert sorted(r["image"] for r in rows) == sorted(images)
    for name in images:
        assert ToyCodec().decode((out / f"{name}.nlc").read_bytes()).shape == images[name].shape
    assert not (out / ".inflight").exists() and not list(out.glob(".*.tmp"))
