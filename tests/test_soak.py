"""Interruptions (issue 22): ``encode.py`` SIGKILLed 20 times at random moments and resumed, and
``train.py`` killed and resumed to the same final parameters as an uninterrupted run. Both slow
(subprocesses that compile); the figures are in docs/reliability.md."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from toy_codec import ToyCodec, subprocess_env
from train_helpers import run_train

from nlc_jax.fit.pipeline import COLUMNS

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def _rows(path: Path) -> list[list[str]]:
    """``results.tsv`` rows; asserts the header and that no row is torn."""
    if not path.exists():
        return []
    text = path.read_text()
    assert not text or text.endswith("\n"), "torn last row"
    lines = text.splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(COLUMNS) for r in rows), "torn row"
    return rows


def _check_outputs(out: Path, names: set[str], seen: dict[str, tuple[int, bytes]]) -> None:
    """Every ``.nlc`` decodes, no row or file is duplicated, and a finished file never changes
    (the image was not refitted)."""
    rows = _rows(out / "results.tsv")
    images = [r[0] for r in rows]
    assert len(images) == len(set(images)), f"duplicate rows: {images}"
    files = {p.stem: p for p in out.glob("*.nlc")}
    assert set(files) <= names and set(images) <= set(files)
    for name, path in files.items():
        data = path.read_bytes()
        ToyCodec().decode(data)  # a partial file would not decode
        inode = path.stat().st_ino
        if name in seen:
            assert seen[name] == (inode, data), f"{name} was rewritten (refitted)"
        seen[name] = (inode, data)


@pytest.mark.slow  # 21 encode.py processes, each importing jax and compiling (~3 min)
def test_encode_killed_20_times_at_random_moments_resumes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(22)
    names = set()
    for i in range(10):
        h, w = (16, 16) if i % 3 else (32, 16)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src / f"im{i}.png")
        names.add(f"im{i}")
    out = tmp_path / "out"
    cmd = [sys.executable, str(TESTS / "toy_encode.py"), f"--config={TESTS / 'toy_config.py'}",
           "--noprogress", f"--input={src}", f"--output={out}", "--batch_size=2",
           "--checkpoint_every=0.001", "--chunk_steps=5", "--config.steps=100"]
    seen: dict[str, tuple[int, bytes]] = {}
    kills = 0
    for _ in range(40):
        if kills == 20:
            break
        proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=float(rng.uniform(2.0, 12.0)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        _check_outputs(out, names, seen)
        if proc.returncode == 0:
            break
    assert kills >= 10, f"only {kills} kills: the encode finished too early"
    done = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr
    _check_outputs(out, names, seen)
    assert sorted(r[0] for r in _rows(out / "results.tsv")) == sorted(names)
    assert not (out / ".inflight").exists() and not list(out.glob(".*.tmp"))


@pytest.mark.slow  # train.py three times, each compiling the step (~2 min)
def test_train_killed_and_resumed_gives_the_same_final_parameters(tmp_path):
    from safetensors.numpy import load_file

    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        base = rng.integers(0, 256, (9, 9, 3)).repeat(8, 0).repeat(8, 1)[:70, :70]
        Image.fromarray(base.astype(np.uint8)).save(data / f"im{i}.png")
    flags = [f"--config={ROOT / 'nlc_jax' / 'configs' / 'hyperprior.py'}:tiny", f"--config.data={data}",
             "--config.model.n=8", "--config.model.m=8", "--config.crop=64",
             "--config.batch_size=4", "--config.num_steps=40", "--config.warmup_steps=0",
             "--config.log_every=1", "--config.checkpoint_every=2", "--config.eval_images=0",
             "--config.progress=False", "--config.data_threads=1"]

    def train(workdir: Path, kill_at_step: int | None = None):
        return run_train(workdir, flags, kill_at_step)

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert train(straight).returncode == 0
    for step in (6, 20):  # two kills, each after a checkpoint, at a random moment of a step
        train(killed, kill_at_step=step)
        assert not (killed / "export").exists()
    done = train(killed)
    assert done.returncode == 0, done.stderr[-2000:]
    want = load_file(str(straight / "export" / "params.safetensors"))
    got = load_file(str(killed / "export" / "params.safetensors"))
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)  # exact, not close
