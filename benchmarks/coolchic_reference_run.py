"""Run the reference Cool-chic codec (an external checkout) on Kodak crops; record numbers only.

    python benchmarks/coolchic_reference_run.py --coolchic_dir /work/coolchic-ref \\
        [--python /work/coolchic-ref/.venv/bin/python] [--kodak ../shared/data/kodak] \\
        [--images kodim01,kodim04,...] [--box 256,128,512,384] [--lmbdas 1e-4,1e-3,4e-3,2e-2] \\
        [--n_itr 2000] [--preset hop] [--core 0] [--workdir /work/coolchic-ref/runs]

No Cool-chic code lives in this repository: ``--coolchic_dir`` is a checkout of it (with
``cc_encode.py``, ``cc_decode.py`` and ``cfg/dec/intra/<preset>.cfg``) and ``--python`` an
interpreter that can run it. For every image (outer loop) and every λ (inner loop, so complete
per-image RD curves accumulate) this script

1. crops the image to ``--box`` (left, top, right, bottom; checked to lie inside the image) and
   saves the crop as PNG under ``--workdir``;
2. runs ``cc_encode.py`` in a fresh work folder, then ``cc_decode.py`` on the written ``.cool``
   file, both pinned to ``--core`` with ``OMP_NUM_THREADS=1``;
3. appends one row to ``--output`` (TSV, rewritten atomically) and rewrites the JSON summary
   beside it (same stem, ``.json``).

How the numbers are obtained:

- ``bytes``: size of the ``.cool`` file; ``bpp = 8 * bytes / (width * height)``.
- ``psnr_db``: our own 8-bit RGB PSNR, ``10 log10(255^2 / MSE)`` over all pixels and channels,
  between the crop and the PNG written by ``cc_decode.py``.
- ``enc_psnr_db`` / ``enc_bpp``: what the encoder itself reports after decoding its bitstream
  (its ``0000-results_decoder.tsv``); ``nn_bpp`` / ``latent_bpp``: its estimate of the split
  after weight quantization and RDOQ (``0000-results_encoder.tsv``).
- ``train_s``: the encoder log's cumulative ``time_sec`` at the end of its last training phase
  (warm-up candidates and validation passes included, weight quantization excluded);
  ``s_per_step = train_s / n_itr`` (the log prints no per-step time).
  ``quantize_s`` / ``rdoq_s``: its weight-quantization and RDOQ times.
- ``wall_s``: wall time of the whole ``cc_encode.py`` process; ``decode_wall_s`` that of
  ``cc_decode.py`` (start-up included).

Resumable: runs whose (image, box, lmbda, n_itr, preset) row is already in the TSV are skipped;
an unfinished run is restarted from scratch (its work folder is cleared, since ``cc_encode.py``
skips training when it finds a ``frame_encoder.pt``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ("kodim01", "kodim04", "kodim07", "kodim14", "kodim19", "kodim23")
DEFAULT_LMBDAS = (1e-4, 1e-3, 4e-3, 2e-2)
DEFAULT_BOX = (256, 128, 512, 384)
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "coolchic_5.0.1_crops_hop_2000.tsv"

COLUMNS = (
    "image",
    "box",
    "lmbda",
    "n_itr",
    "preset",
    "bytes",
    "bpp",
    "psnr_db",
    "train_s",
    "s_per_step",
    "wall_s",
    "torch_version",
    "cpu_model",
    # extra columns, after the required ones
    "enc_psnr_db",
    "enc_bpp",
    "nn_bpp",
    "latent_bpp",
    "quantize_s",
    "rdoq_s",
    "decode_wall_s",
    "width",
    "height",
    "core",
    "load1_start",
    "finished_utc",
)
KEY = ("image", "box", "lmbda", "n_itr", "preset")


@dataclass(frozen=True)
class Job:
    """One (image, λ) encode + decode."""

    image: str
    lmbda: float
    box: tuple[int, int, int, int]
    n_itr: int
    preset: str

    @property
    def box_str(self) -> str:
        return ",".join(str(v) for v in self.box)

    @property
    def lmbda_str(self) -> str:
        return f"{self.lmbda:g}"

    @property
    def name(self) -> str:
        return f"{self.image}_{self.preset}_{self.n_itr}_l{self.lmbda_str}"

    def key(self) -> tuple[str, ...]:
        return (self.image, self.box_str, self.lmbda_str, str(self.n_itr), self.preset)


def row_key(row: dict[str, str]) -> tuple[str, ...]:
    """The identity of a TSV row (λ normalised so 0.001 and 1e-3 match)."""
    return (
        row["image"],
        row["box"],
        f"{float(row['lmbda']):g}",
        str(int(row["n_itr"])),
        row["preset"],
    )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() as a fallback)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load1() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of an existing TSV (empty list if it does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Rewrite the whole TSV atomically."""
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    atomic_write(path, "\n".join(lines) + "\n")


def crop_image(src: Path, box: tuple[int, int, int, int], dst: Path) -> tuple[int, int]:
    """Crop ``src`` (as 8-bit RGB) to ``box`` and save it as PNG; returns (width, height)."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        left, top, right, bottom = box
        if not (0 <= left < right <= im.width and 0 <= top < bottom <= im.height):
            raise ValueError(f"box {box} does not fit {src.name} ({im.width}x{im.height})")
        crop = im.crop(box)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        crop.save(dst)
    return crop.width, crop.height


def psnr_rgb8(a_path: Path, b_path: Path) -> float:
    """8-bit RGB PSNR over all pixels and channels, 10·log10(255² / MSE)."""
    with Image.open(a_path) as a_im, Image.open(b_path) as b_im:
        a = np.asarray(a_im.convert("RGB"), dtype=np.float64)
        b = np.asarray(b_im.convert("RGB"), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def read_ws_table(path: Path) -> dict[str, str]:
    """A two-line whitespace-separated table (header line, value line) as a dict."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return dict(zip(lines[0].split(), lines[1].split(), strict=False))


def parse_encode_log(text: str) -> dict[str, float]:
    """Training time, last iteration, quantization and RDOQ times from a cc_encode.py log."""
    lines = text.splitlines()
    out: dict[str, float] = {}
    marks = [i for i, ln in enumerate(lines) if ln.startswith("Results at the end of the phase")]
    if marks:
        i = marks[-1]
        header = next(j for j in range(i + 1, len(lines)) if lines[j].split()[:1] == ["loss"])
        table = dict(zip(lines[header].split(), lines[header + 1].split(), strict=False))
        out["train_s"] = float(table["time_sec"])
        out["last_itr"] = float(table["itr"])
    for ln in lines:
        if ln.startswith("Time quantize_model()"):
            out["quantize_s"] = float(ln.split(":", 1)[1].split()[0])
        elif ln.startswith("Time rdoq_model()"):
            out["rdoq_s"] = float(ln.split(":", 1)[1].split()[0])
    return out


def torch_version(python: str) -> str:
    """torch.__version__ of the Cool-chic interpreter."""
    res = subprocess.run(
        [python, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip()


def timed_run(cmd: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> float:
    """Run ``cmd`` with its output in ``log_path`` (raising if it fails); wall seconds."""
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0


def pinned(core: int, cmd: list[str]) -> list[str]:
    """``cmd`` pinned to one core with taskset (if available)."""
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + cmd


def run_job(
    job: Job,
    crop: Path,
    size: tuple[int, int],
    coolchic_dir: Path,
    python: str,
    workdir: Path,
    core: int,
    facts: dict[str, str],
) -> dict[str, str]:
    """Encode and decode one crop at one λ; returns the TSV row."""
    run_dir = workdir / job.name
    shutil.rmtree(run_dir, ignore_errors=True)
    enc_wd = run_dir / "wd"
    enc_wd.mkdir(parents=True)
    cool = run_dir / "out.cool"
    decoded = run_dir / "decoded.png"
    cfg = coolchic_dir / "cfg" / "dec" / "intra" / f"{job.preset}.cfg"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    load_start = load1()

    enc_cmd = pinned(
        core,
        [
            python,
            str(coolchic_dir / "cc_encode.py"),
            "-i", str(crop.resolve()),
            "-o", str(cool.resolve()),
            "--workdir", str(enc_wd.resolve()),
            "--lmbda", job.lmbda_str,
            "--n_itr", str(job.n_itr),
            "--dec_cfg_residue", str(cfg.resolve()),
        ],
    )  # fmt: skip
    wall_s = timed_run(enc_cmd, run_dir / "encode.log", coolchic_dir, env)

    dec_cmd = pinned(
        core,
        [python, str(coolchic_dir / "cc_decode.py"), "-i", str(cool.resolve()),
         "-o", str(decoded.resolve())],
    )  # fmt: skip
    decode_wall_s = timed_run(dec_cmd, run_dir / "decode.log", coolchic_dir, env)

    n_bytes = cool.stat().st_size
    width, height = size
    bpp = 8.0 * n_bytes / (width * height)
    psnr = psnr_rgb8(crop, decoded)
    log_facts = parse_encode_log((run_dir / "encode.log").read_text())
    if int(log_facts.get("last_itr", -1)) != job.n_itr:
        print(f"warning: {job.name}: last logged itr {log_facts.get('last_itr')} != n_itr")
    train_s = log_facts.get("train_s", float("nan"))
    enc_dec = read_ws_table(enc_wd / "0000-results_decoder.tsv")
    enc_enc = read_ws_table(enc_wd / "0000-results_encoder.tsv")
    return {
        "image": job.image,
        "box": job.box_str,
        "lmbda": job.lmbda_str,
        "n_itr": str(job.n_itr),
        "preset": job.preset,
        "bytes": str(n_bytes),
        "bpp": f"{bpp:.5f}",
        "psnr_db": f"{psnr:.4f}",
        "train_s": f"{train_s:.1f}",
        "s_per_step": f"{train_s / job.n_itr:.4f}",
        "wall_s": f"{wall_s:.1f}",
        "torch_version": facts["torch_version"],
        "cpu_model": facts["cpu_model"],
        "enc_psnr_db": f"{float(enc_dec['psnr_db']):.4f}",
        "enc_bpp": f"{float(enc_dec['rate_bpp']):.5f}",
        "nn_bpp": f"{float(enc_enc['nn_bpp']):.5f}",
        "latent_bpp": f"{float(enc_enc['latent_bpp']):.5f}",
        "quantize_s": f"{log_facts.get('quantize_s', float('nan')):.1f}",
        "rdoq_s": f"{log_facts.get('rdoq_s', float('nan')):.1f}",
        "decode_wall_s": f"{decode_wall_s:.2f}",
        "width": str(width),
        "height": str(height),
        "core": str(core),
        "load1_start": f"{load_start:.2f}",
        "finished_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_summary(path: Path, rows: list[dict[str, str]], facts: dict[str, object]) -> None:
    """JSON beside the TSV: machine facts, settings and a short digest of the rows."""
    steps = [float(r["s_per_step"]) for r in rows if r.get("s_per_step")]
    summary = dict(facts)
    summary.update(
        {
            "updated_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "nproc": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "rows": len(rows),
            "s_per_step_median": float(np.median(steps)) if steps else None,
            "results": [
                {k: r[k] for k in ("image", "lmbda", "bpp", "psnr_db", "s_per_step")} for r in rows
            ],
        }
    )
    atomic_write(path, json.dumps(summary, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coolchic_dir", type=Path, default=Path("/work/coolchic-ref"))
    p.add_argument("--python", default=None, help="default: <coolchic_dir>/.venv/bin/python")
    p.add_argument("--kodak", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    p.add_argument("--images", default=",".join(DEFAULT_IMAGES))
    p.add_argument("--box", default=",".join(str(v) for v in DEFAULT_BOX),
                   help="left,top,right,bottom, the same for every image")  # fmt: skip
    p.add_argument("--lmbdas", default=",".join(f"{v:g}" for v in DEFAULT_LMBDAS))
    p.add_argument("--n_itr", type=int, default=2000)
    p.add_argument("--preset", default="hop", help="cfg/dec/intra/<preset>.cfg")
    p.add_argument("--core", type=int, default=0, help="CPU core to pin Cool-chic to")
    p.add_argument("--workdir", type=Path, default=None, help="default: <coolchic_dir>/runs")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--coolchic_commit", default="", help="recorded in the JSON summary")
    p.add_argument("--max_runs", type=int, default=0, help="stop after this many new runs (0: all)")
    p.add_argument("--dry_run", action="store_true", help="print the plan, run nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    coolchic_dir: Path = args.coolchic_dir.resolve()
    python: str = args.python or str(coolchic_dir / ".venv" / "bin" / "python")
    workdir: Path = (args.workdir or coolchic_dir / "runs").resolve()
    box = tuple(int(v) for v in args.box.split(","))
    if len(box) != 4:
        raise SystemExit("--box needs left,top,right,bottom")
    images = [s.strip() for s in args.images.split(",") if s.strip()]
    lmbdas = [float(s) for s in args.lmbdas.split(",") if s.strip()]
    jobs = [Job(im, lm, box, args.n_itr, args.preset) for im in images for lm in lmbdas]

    rows = read_rows(args.output)
    done = {row_key(r) for r in rows}
    todo = [j for j in jobs if j.key() not in done]
    print(f"{len(jobs)} runs planned, {len(jobs) - len(todo)} already in {args.output}")
    if args.dry_run:
        for j in todo:
            print("  todo:", j.name)
        return 0

    for name in ("cc_encode.py", "cc_decode.py", f"cfg/dec/intra/{args.preset}.cfg"):
        if not (coolchic_dir / name).exists():
            raise SystemExit(f"{coolchic_dir / name} not found")
    facts: dict[str, str] = {"torch_version": torch_version(python), "cpu_model": cpu_model()}
    summary_facts: dict[str, object] = {
        "codec": "Cool-chic (reference, external checkout)",
        "coolchic_dir": str(coolchic_dir),
        "coolchic_commit": args.coolchic_commit,
        "python": python,
        "torch_version": facts["torch_version"],
        "cpu_model": facts["cpu_model"],
        "platform": platform.platform(),
        "threads": "OMP_NUM_THREADS=1",
        "core": args.core,
        "preset": args.preset,
        "n_itr": args.n_itr,
        "box": list(box),
        "images": images,
        "lmbdas": lmbdas,
        "bpp": "8 * .cool file bytes / pixels",
        "psnr_db": "ours: 8-bit RGB, 10 log10(255^2/MSE), crop vs cc_decode.py output",
        "s_per_step": "encoder log time_sec at end of last training phase / n_itr",
    }
    summary_path = args.output.with_suffix(".json")

    crops: dict[str, tuple[Path, tuple[int, int]]] = {}
    for im in images:  # check every box before spending hours
        crop = workdir / "crops" / f"{im}_{'_'.join(str(v) for v in box)}.png"
        crops[im] = (crop, crop_image(args.kodak / f"{im}.png", box, crop))

    n_new = 0
    for job in todo:
        if args.max_runs and n_new >= args.max_runs:
            break
        crop, size = crops[job.image]
        print(f"[{datetime.now(UTC):%H:%M:%S}] start {job.name}", flush=True)
        row = run_job(job, crop, size, coolchic_dir, python, workdir, args.core, facts)
        rows = read_rows(args.output)  # re-read: keep rows another process may have added
        if job.key() not in {row_key(r) for r in rows}:
            rows.append(row)
        write_rows(args.output, rows)
        write_summary(summary_path, rows, summary_facts)
        n_new += 1
        print(
            f"[{datetime.now(UTC):%H:%M:%S}] done {job.name}: {row['bpp']} bpp "
            f"{row['psnr_db']} dB (encoder: {row['enc_bpp']} bpp {row['enc_psnr_db']} dB) "
            f"{row['s_per_step']} s/step, wall {row['wall_s']} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
