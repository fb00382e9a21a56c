"""A full disk during ``encode.py`` (issue 22): one clear line and exit status 1, no partial
``.nlc`` or temporary file, and a rerun with space resumes to every file. Simulated everywhere
(``ENOSPC`` from the file system's ``fsync`` after a few files), and for real on a small tmpfs
where this process may mount one (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from toy_codec import ToyCodec, subprocess_env

from nlc_jax.fit.pipeline import COLUMNS

TESTS = Path(__file__).parent
ROOT = TESTS.parent
_SIMULATED = """
import errno, os, sys
from toy_codec import register
import encode
calls, real_fsync = [0], os.fsync
def fsync(fd):
    calls[0] += 1
    if calls[0] > {after}:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)
os.fsync = fsync
register()
sys.argv = ["encode.py"] + sys.argv[1:]
encode.run()
"""


def _inputs(folder: Path, n: int = 6) -> set[str]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png")
    return {f"im{i}" for i in range(n)}


def _flags(src: Path, out: Path) -> list[str]:
    return [f"--config={TESTS / 'toy_config.py'}", "--noprogress", f"--input={src}",
            f"--output={out}", "--batch_size=2", "--checkpoint_every=0"]


def _check_after_full(proc: subprocess.CompletedProcess, out: Path) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("encode.py: error: ") and "No space left on device" in last, last
    assert "rerun to resume" in last
    assert not list(out.glob(".*.tmp")), "a temporary file was left"
    for path in out.glob("*.nlc"):
        ToyCodec().decode(path.read_bytes())  # no partial file


def _check_resumed(out: Path, names: set[str]) -> None:
    lines = (out / "results.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [line.split("\t")[0] for line in lines[1:] if len(line.split("\t")) == len(COLUMNS)]
    assert sorted(rows) == sorted(names)  # one row each, none duplicated
    for name in names:
        ToyCodec().decode((out / f"{name}.nlc").read_bytes())
    assert not list(out.glob(".*.tmp"))


def test_disk_full_simulated_is_one_line_and_resumable(tmp_path):
    names = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    flags = _flags(tmp_path / "in", out)
    proc = subprocess.run([sys.executable, "-c", _SIMULATED.format(after=3), *flags], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    _check_after_full(proc, out)
    assert 0 < len(list(out.glob("*.nlc"))) < len(names)
    done = subprocess.run([sys.executable, str(TESTS / "toy_encode.py"), *flags], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    _check_resumed(out, names)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.slow  # two more encode.py runs; needs root
def test_disk_full_on_a_small_tmpfs(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "40k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        names = _inputs(tmp_path / "in", n=12)
        out = disk / "out"
        flags = _flags(tmp_path / "in", out)
        proc = subprocess.run([sys.executable, str(TESTS / "toy_encode.py"), *flags], cwd=ROOT,
                              env=subprocess_env(), capture_output=True, text=True, timeout=600)
        _check_after_full(proc, out)
        kept = {p.name: p.read_bytes() for p in out.glob("*.nlc")}
        assert 0 < len(kept) < len(names)
        moved = tmp_path / "roomy"
        shutil.copytree(out, moved)  # space found: the same output folder on a roomier disk
        done = subprocess.run([sys.executable, str(TESTS / "toy_encode.py"),
                               *_flags(tmp_path / "in", moved)], cwd=ROOT, env=subprocess_env(),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        _check_resumed(moved, names)
        for name, data in kept.items():  # finished files were not refitted
            assert (moved / name).read_bytes() == data
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
