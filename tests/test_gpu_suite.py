"""``benchmarks/gpu_suite.py``: the ``--dry`` run on the CPU writes its JSON, table and files;
``--verify`` decodes the files bit-exactly and reports a reconstruction that differs; the files a
device run returned (``benchmarks/results/gpu_suite/``, once committed) decode bit-exactly here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_suite.py"
DEVICE_RESULTS = ROOT / "benchmarks" / "results" / "gpu_suite"


def _suite(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}  # also on a GPU machine: never a full run
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=1200)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu_suite")
    proc = _suite("--dry", "--out", str(out), "--budget_s", "1200")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def test_dry_run_measures_every_section(dry_run):
    results = json.loads((dry_run / "gpu_suite.json").read_text())
    sections = results["sections"]
    runs = sections["throughput"]["runs"]
    assert [(r["preset"], r["batch"]) for r in runs] == [("fast", 1), ("fast", 2)]
    for r in runs:
        assert r["image_steps_per_s"] > 0 and r["memory_per_fit_mib"] > 0
        assert r["images_per_hour"] < r["image_steps_per_s"] * 3600  # a recipe is many steps
    assert runs[0]["vs_batch1"] == 1.0
    assert runs[1]["vs_batch1"] == pytest.approx(
        runs[1]["image_steps_per_s"] / runs[0]["image_steps_per_s"])
    proj = sections["projection"]
    assert proj["fits"] == 3 * 4  # the three samples × 4 λ
    assert proj["total_s"] > proj["fit_s"] > 0 and proj["best_batch"] in (1, 2)
    files = sections["files"]["fast"]
    assert files["fits"] == 6 and len(files["bpp"]) == 6 and files["finalize_s_per_file"] > 0
    assert [r["model"] for r in sections["autoencoders"]["rows"]] == ["taef2"]
    assert [r["batch"] for r in sections["clric"]["runs"]] == [1]
    assert results["skipped"] == ["kodak_full: --dry"]
    table = (dry_run / "gpu_suite.md").read_text()
    assert "| fast | 2 |" in table and "## projection" in table and "| taef2 |" in table


def test_verify_decodes_the_files_bit_exact(dry_run, tmp_path):
    proc = _suite("--verify", str(dry_run), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["files"] == 6 and report["all_exact"]
    assert all(r["max_abs_diff"] == 0 and r["nlc_sha256_match"] for r in report["rows"])


def test_verify_reports_a_reconstruction_that_differs(dry_run, tmp_path):
    src = dry_run / "gpu_files_fast.tar"
    with tarfile.open(src) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    name = next(n for n in members if n.endswith(".png"))
    recon = np.asarray(Image.open(io.BytesIO(members[name]))).copy()
    recon[0, 0, 0] ^= 1
    png = io.BytesIO()
    Image.fromarray(recon).save(png, format="PNG")
    members[name] = png.getvalue()
    with tarfile.open(tmp_path / src.name, "w") as tar:
        for n, data in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = _suite("--verify", str(tmp_path), "--out", str(tmp_path))
    assert proc.returncode == 1
    assert "MISMATCH" in proc.stdout and "5/6 files bit-exact" in proc.stdout
    bad = [r for r in json.loads((tmp_path / "verify.json").read_text())["rows"]
           if not r["exact"]]
    assert len(bad) == 1 and bad[0]["max_abs_diff"] == 1 and bad[0]["differing_pixels"] == 1


def test_bad_invocations_fail_in_one_line(tmp_path):
    proc = _suite("--verify", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "no gpu_files_*.tar" in proc.stderr
    proc = _suite("--out", str(tmp_path))
    assert proc.returncode == 2 and "no accelerator" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.skipif(not any(DEVICE_RESULTS.glob("gpu_files_*.tar")),
                    reason="no device run's files committed in benchmarks/results/gpu_suite/")
def test_device_files_decode_bit_exact_here(tmp_path):
    proc = _suite("--verify", str(DEVICE_RESULTS), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
