"""``nlc_jax.fit.beam_runner`` (optional extra ``beam``; skipped without apache-beam): every fit's
file is written once and completely, the results table has one row per file, a rerun encodes
only what is missing, and (``-m slow``) a worker killed mid-run with the DirectRunner in
multi-process mode leaves no partial file and a rerun completes the set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

beam = pytest.importorskip("apache_beam")

from toy_codec import register  # noqa: E402
from toy_config import get_config as toy_config  # noqa: E402

from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.fit import EncodeSettings, FitOptions  # noqa: E402
from nlc_jax.fit.beam_runner import (  # noqa: E402
    ERRORS,
    ROWS,
    TABLE,
    build,
    plan_fits,
    write_errors,
)
from nlc_jax.fit.pipeline import ResultsTable  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LMBDAS = (0.001, 0.004)
# a small COOL-CHIC and a 12-step recipe: the multi-process test checks the runner, not the codec
TINY = ["--config.model.n_levels=4", "--config.model.n_hyper=0", "--config.model.ifce_levels=0",
        "--config.model.arm_stabiliser=False", "--config.model.synthesis_stabiliser=False",
        "--config.recipe.optimizer=adam", "--config.recipe.rdoq_passes=0",
        "--config.recipe.n_itr=12", "--config.recipe.warmup_steps=2",
        "--config.recipe.final_steps=2", "--config.recipe.n_candidates=1"]


def _inputs(folder: Path, sizes=((48, 64), (40, 56), (64, 32), (30, 40))) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        y, x = np.mgrid[0:h, 0:w]
        image = np.stack([x * 3 + i * 20, y * 3, (x + y) * 2], -1) + rng.integers(0, 9, (h, w, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def _encode(inputs: Path, out: Path, settings: EncodeSettings) -> int:
    fits = plan_fits(open_inputs(str(inputs)), settings.lmbdas, settings.seed, out)
    with beam.Pipeline() as p:
        _, errors = build(p, fits, toy_config(), str(out), settings)
        errors | beam.combiners.ToList() | beam.Map(write_errors, str(out))
    return len(fits)


def test_every_file_once_table_and_rerun(tmp_path):
    register()
    inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    settings = EncodeSettings(lmbdas=LMBDAS, batch_size=3, checkpoint_every_s=None,
                              progress=False, options=FitOptions(chunk_steps=10))
    assert _encode(inputs, out, settings) == 10  # 5 inputs × 2 λ, the broken one included
    expected = {f"im{i}_lmbda{lm:g}.nlc" for i in range(4) for lm in LMBDAS}
    assert set(os.listdir(out)) == expected | {TABLE, ERRORS, ROWS}  # no temporary file left
    assert len(os.listdir(out / ROWS)) == len(expected)
    rows = ResultsTable(out / TABLE).rows()
    assert sorted((r["image"], float(r["lmbda"])) for r in rows) == sorted(
        (f"im{i}", lm) for i in range(4) for lm in LMBDAS)
    errors = (out / ERRORS).read_text().splitlines()
    assert len(errors) == 1 and "broken.png" in errors[0]  # one line for both of its fits
    codec = registry.make(toy_config())
    for name in expected:
        stem = name.split("_lmbda")[0]
        decoded = codec.decode((out / name).read_bytes())
        original = np.asarray(Image.open(inputs / f"{stem}.png"))
        assert decoded.shape == original.shape
    before = {n: (out / n).read_bytes() for n in expected}

    # a rerun plans only the missing fits (the broken input's); a deleted file is redone
    assert len(plan_fits(open_inputs(str(inputs)), LMBDAS, 0, out)) == 2
    (out / "im2_lmbda0.004.nlc").unlink()
    assert _encode(inputs, out, settings) == 3
    redone = "im2_lmbda0.004.nlc"
    assert {n: (out / n).read_bytes() for n in expected - {redone}} == {
        n: b for n, b in before.items() if n != redone}  # finished files are not rewritten
    assert codec.decode((out / redone).read_bytes()).shape == (64, 32, 3)
    rows = ResultsTable(out / TABLE).rows()
    assert len(rows) == 8 and len({(r["image"], r["lmbda"]) for r in rows}) == 8


def _descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
    return children + [d for c in children for d in _descendants(c)]


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
def test_killed_worker_leaves_no_partial_file_and_a_rerun_completes(tmp_path):
    inputs, out = _inputs(tmp_path / "in", sizes=((48, 64),) * 6), tmp_path / "out"
    cmd = [sys.executable, "-m", "nlc_jax.fit.beam_runner", "--config",
           "configs/coolchic.py:fast", "--input", str(inputs), "--output", str(out),
           "--lmbdas", ",".join(map(str, LMBDAS)), "--batch_size", "2", "--chunk_steps", "4",
           *TINY, "--runner=DirectRunner", "--direct_running_mode=multi_processing",
           "--direct_num_workers=2"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        if killed is None and list(out.glob("*.nlc")):
            # the SDK worker processes themselves, not the shells that started them
            workers = [p for p in _descendants(proc.pid) if "sdk_worker_main" in _cmdline(p)
                       and not _cmdline(p).startswith(("/bin/sh", "sh "))]
            if workers:
                killed = workers[-1]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    log = proc.communicate(timeout=120)[0].decode(errors="replace")
    assert killed is not None, f"no worker was seen writing: {log[-3000:]}"
    first = {p.name for p in out.glob("*.nlc")}
    for name in first:  # whatever the kill interrupted, every visible file is complete
        assert registry.decode_bytes((out / name).read_bytes()).shape == (48, 64, 3)
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 1, rerun.stdout[-2000:] + rerun.stderr[-3000:]  # broken.png
    assert "broken.png" in (out / ERRORS).read_text()
    expected = {f"im{i}_lmbda{lm:g}.nlc" for i in range(6) for lm in LMBDAS}
    assert {p.name for p in out.glob("*.nlc")} == expected
    rows = ResultsTable(out / TABLE).rows()
    assert sorted((r["image"], r["lmbda"]) for r in rows) == sorted(
        {(r["image"], r["lmbda"]) for r in rows})  # one row per fit
    assert len(rows) == len(expected)
    for name in expected:
        assert registry.decode_bytes((out / name).read_bytes()).shape == (48, 64, 3)


@pytest.mark.parametrize("args, message", [
    (["--config", "configs/coolchic.py:nope"], "unknown coolchic preset"),
    (["--config", "configs/coolchic.py:fast", "--batch_size", "0"], "--batch_size must be >= 1"),
    (["--config", "configs/coolchic.py:fast", "--input", "/nonexistent/*.png"], "/nonexistent"),
])
def test_bad_flags_fail_in_one_line(tmp_path, args, message):
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "out"), *args]
    proc = subprocess.run([sys.executable, "-m", "nlc_jax.fit.beam_runner", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    lines = [x for x in proc.stderr.splitlines() if not x.startswith("WARNING:root")]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
