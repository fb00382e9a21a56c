"""Compiled programs kept between runs (``nlc_jax.compilation.use_persistent_cache``): where the
folder is, and that a second ``encode.py`` run loads what the first compiled and writes the same
files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from toy_codec import subprocess_env

from nlc_jax import compilation

TESTS = Path(__file__).parent


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(compilation.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation.cache_dir() == tmp_path / "xdg" / "nlc_jax" / "xla"
    monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "mine"))
    assert compilation.cache_dir() == tmp_path / "mine"
    for off in ("off", "", "0"):
        monkeypatch.setenv(compilation.CACHE_ENV, off)
        assert compilation.cache_dir() is None
        assert compilation.use_persistent_cache() is None


def _encode(folder: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    # every program is kept, however quickly it compiled (JAX keeps only those over 1 s)
    env = dict(subprocess_env(), NLC_JAX_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    cmd = [sys.executable, str(TESTS / "toy_encode.py"), f"--config={TESTS / 'toy_config.py'}",
           "--noprogress", f"--input={folder}", f"--output={out}", "--lmbdas=0.001"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_second_run_loads_the_compiled_programs(tmp_path):
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
        tmp_path / "in" / "a.png")
    cache = tmp_path / "cache"
    first = _encode(tmp_path / "in", tmp_path / "out1", cache)
    assert first.returncode == 0, first.stderr
    entries = sorted(p.name for p in cache.iterdir())
    assert any("jit" in name for name in entries), entries
    second = _encode(tmp_path / "in", tmp_path / "out2", cache)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing compiled anew
    assert (tmp_path / "out1" / "a.nlc").read_bytes() == (tmp_path / "out2" / "a.nlc").read_bytes()


def test_folder_that_cannot_be_created_leaves_the_cache_off(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "file" / "xla"))
    assert compilation.use_persistent_cache() is None
