"""Mean-scale hyperprior rate–distortion on Kodak: our trained models against CompressAI's
published ``mbt2018-mean`` / ``bmshj2018-hyperprior`` curves, Cool-chic 5.0.1, JPEG and WebP.

    python benchmarks/hyperprior_rd.py --per_lambda runs/l1,runs/l2,runs/l3 \\
        [--variable_rate runs/vr] [--images ../shared/data/kodak] [--max_images 0] \\
        [--files /tmp/hp_files] [--output benchmarks/results/hyperprior_rd]

Every image is coded for real with each trained model (each λ of the variable-rate model):
``.nlc`` bytes from :class:`nlc_jax.codecs.hyperprior.HyperpriorCodec`, decoded again from the
bytes and checked bit-exact against the encoder's reconstruction; the rate is the file size
(container, header and both streams). Encode and decode are timed per image after one warm-up
image per model (compilation excluded; reported separately). Writes ``<output>.tsv`` (per-image
records), ``<output>.json`` (curves, BD-rates, timings, training budgets) and
``<output>_psnr_db.png``, and prints a table.

BD-rate and BD-PSNR (pchip, ``nlc_jax.metrics.bd``) are of the mean curves against CompressAI's
``mbt2018-mean``, of our curves against every other curve, and of the variable-rate model against
the per-λ models; each is NaN with its reason where the curves do not overlap (BD-rate needs a
common PSNR range, BD-PSNR a common rate range). Cool-chic points are
the published 5.0.1 ones (``../shared/reference``), and ours from ``--coolchic_tsv`` when a
COOL-CHIC Kodak run exists (``benchmarks/coolchic_rd.py`` writes ``rd.tsv``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from benchmarks.coolchic_rd import OURS as COOLCHIC_OURS  # noqa: E402
from nlc_jax.codecs.hyperprior import make_codec  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.classic_codecs import DEFAULT_QUALITIES, DISPLAY_NAMES, ladder  # noqa: E402
from nlc_jax.metrics.plots import plot_rd  # noqa: E402
from nlc_jax.metrics.psnr import psnr_exact  # noqa: E402
from nlc_jax.metrics.rd import (  # noqa: E402
    METRICS,
    Curve,
    bd_pair,
    make_curve,
    read_tsv,
    reference_records,
    write_tsv,
)
from nlc_jax.metrics.round_trip import timed_round_trips  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference"
ANCHOR = "CompressAI mbt2018-mean"
BMSHJ = "CompressAI bmshj2018-hyperprior"
COMPRESSAI = {ANCHOR: "compressai-kodak-compressai-mbt2018-mean_mse_cpu.json",
              BMSHJ: "compressai-kodak-compressai-bmshj2018-hyperprior_mse_cpu.json"}
COOLCHIC_REF = "Cool-chic 5.0.1 (published)"
PER_LAMBDA = "ours: hyperprior, one model per λ"
VARIABLE = "ours: hyperprior, variable-rate model"


def published_curve(path: Path, name: str) -> tuple[Curve, dict]:
    """A CompressAI results JSON → (mean PSNR curve, its published timings)."""
    results = json.loads(path.read_text())["results"]
    bpp = np.asarray(results["bpp"], np.float64)
    values = {m: np.full(bpp.shape, np.nan) for m in METRICS}
    values["psnr_db"] = np.asarray(results["psnr-rgb"], np.float64)
    curve = Curve(codec=name, points=tuple(f"q{i + 1}" for i in range(bpp.size)), bpp=bpp,
                  values=values, n_images=24)
    timing = {"encode_s_mean": float(np.mean(results["encoding_time"])),
              "decode_s_mean": float(np.mean(results["decoding_time"]))}
    return curve, timing


def training_budget(workdir: Path) -> dict:
    """Size, λ's and budget of a training run from its ``config.json`` and ``metrics.jsonl``."""
    config = json.loads((workdir / "config.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    train = [r for r in rows if r["split"] == "train"]
    steps = int(train[-1]["step"]) if train else 0
    span = train[-1]["time"] - train[0]["time"] if len(train) > 1 else float("nan")
    per_step = span / (train[-1]["step"] - train[0]["step"]) if len(train) > 1 else float("nan")
    export = workdir / "export" / "model.json"
    # config.json is written when a run starts (rewritten on resume), the export when it ends.
    wall = (export.stat().st_mtime - (workdir / "config.json").stat().st_mtime
            if export.exists() else float("nan"))
    return {"workdir": str(workdir), "n": config["model"]["n"], "m": config["model"]["m"],
            "lmbdas": list(config["lmbdas"]) or [config["lmbda"]], "steps": steps,
            "batch_size": config["batch_size"], "crop": config["crop"],
            "images_seen": steps * int(config["batch_size"]),
            "learning_rate": config["learning_rate"], "data": config["data"],
            "seconds_per_step": per_step, "train_seconds_estimate": per_step * steps,
            "wall_seconds": wall,
            "last_train_metrics": {k: train[-1][k] for k in ("loss", "bpp", "psnr")} if train
            else {}}


def code_model(workdir: Path, rate_index: int, sources, files: Path | None, codec_name: str,
               point: str) -> tuple[list[dict], dict]:
    """Encode + decode every image with one model at one rate index → (records, timings)."""
    codec = make_codec({"checkpoint": str(workdir), "rate_index": rate_index})
    trips, timing = timed_round_trips(codec, sources, None if files is None
                                      else files / f"{Path(workdir).name}_r{rate_index}",
                                      f"{workdir}, rate {rate_index}")
    records = [{"codec": codec_name, "point": point, "image": name,
                "bpp": 8.0 * len(data) / (image.shape[0] * image.shape[1]),
                "psnr_db": psnr_exact(image, decoded)}
               for name, image, data, decoded in trips]
    return records, timing


def classic_records(sources) -> list[dict]:
    """JPEG and WebP (Pillow) per image at :data:`DEFAULT_QUALITIES`."""
    images = {src.name: src.load() for src in sources}
    return [{"codec": DISPLAY_NAMES[codec], "point": f"q{q}", "image": name, "bpp": bpp,
             "psnr_db": psnr_exact(images[name], decoded)}
            for codec in ("jpeg", "webp")
            for name, q, decoded, bpp in ladder(images, codec, DEFAULT_QUALITIES)]


def print_bd(name: str, v: dict) -> None:
    """One BD line, with the reasons of undefined values."""
    reasons = "; ".join(v[k] for k in ("bd_rate_pct_undefined", "bd_psnr_db_undefined") if k in v)
    print(f"  {name:42} BD-rate {v['bd_rate_pct']:+8.1f}%  BD-PSNR {v['bd_psnr_db']:+6.2f} dB"
          + (f"  ({reasons})" if reasons else ""))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per_lambda", required=True,
                   help="comma-separated training workdirs (or export/ dirs), one model per λ")
    p.add_argument("--variable_rate", default="", help="workdir of a variable-rate model")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=0)
    p.add_argument("--files", type=Path, default=None, help="also keep the .nlc files here")
    p.add_argument("--coolchic_tsv", type=Path, default=None,
                   help="our COOL-CHIC Kodak records (rd.tsv of benchmarks/coolchic_rd.py)")
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/hyperprior_rd")
    args = p.parse_args(argv)

    sources = open_inputs(args.images)
    if args.max_images:
        sources = sources[:args.max_images]
    names = [s.name for s in sources]

    records, timings, budgets = [], {}, {}
    for workdir in [Path(w) for w in args.per_lambda.split(",") if w]:
        budget = training_budget(workdir)
        point = f"{budget['lmbdas'][0]:g}"
        recs, timings[f"per_lambda λ={point}"] = code_model(workdir, 0, sources, args.files,
                                                           PER_LAMBDA, point)
        records += recs
        budgets[f"per_lambda λ={point}"] = budget
    if args.variable_rate:
        workdir = Path(args.variable_rate)
        budget = training_budget(workdir)
        budgets["variable_rate"] = budget
        for r, lmbda in enumerate(budget["lmbdas"]):
            recs, timings[f"variable_rate λ={lmbda:g}"] = code_model(
                workdir, r, sources, args.files, VARIABLE, f"{lmbda:g}")
            records += recs
    records += classic_records(sources)
    coolchic_ref = reference_records(REFERENCE / "coolchic-5.0.1-kodak.tsv", names, COOLCHIC_REF)
    records += coolchic_ref
    ours_coolchic = []
    if args.coolchic_tsv is not None:
        # coolchic_rd.py's other rows are references (Cool-chic 5.0.1, WebP)
        ours_coolchic = [dict(r, codec="ours: COOL-CHIC") for r in read_tsv(args.coolchic_tsv)
                         if r["image"] in names and r["codec"] == COOLCHIC_OURS]
        if not ours_coolchic:
            sys.exit(f"error: {args.coolchic_tsv} has no COOL-CHIC rows for these images")
        records += ours_coolchic

    curves = []
    published_timing = {}
    for name, file in COMPRESSAI.items():
        curve, published_timing[name] = published_curve(REFERENCE / file, name)
        curves.append(curve)
    codecs = [PER_LAMBDA] + ([VARIABLE] if args.variable_rate else []) + [COOLCHIC_REF]
    codecs += sorted({r["codec"] for r in ours_coolchic})
    codecs += [DISPLAY_NAMES["jpeg"], DISPLAY_NAMES["webp"]]
    curves += [make_curve(records, c, names) for c in codecs]
    by_name = {c.codec: c for c in curves}
    anchor = by_name[ANCHOR]
    bd = {c.codec: bd_pair(anchor, c) for c in curves if c.codec != ANCHOR}
    ours = [c for c in (PER_LAMBDA, VARIABLE) if c in by_name]
    # our curves against every other one (JPEG/WebP overlap where CompressAI's curves do not)
    bd_ours = {o: {a.codec: bd_pair(a, by_name[o]) for a in curves if a.codec not in ours}
               for o in ours}
    variable_vs_per_lambda = (bd_pair(by_name[PER_LAMBDA], by_name[VARIABLE])
                              if args.variable_rate else None)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(args.output.with_suffix(".tsv"), records)
    dataset = f"Kodak ({len(names)} images)" if len(names) != 24 else "Kodak"
    plot_rd(curves, "psnr_db", f"{args.output}_psnr_db.png",
            bd_rates={k: v["bd_rate_pct"] for k, v in bd.items()}, bd_anchor=ANCHOR,
            dataset=dataset)
    summary = {
        "images": names, "load_average": os.getloadavg(), "machine": machine_facts(),
        "training": budgets, "timing_ours": timings, "timing_compressai_published":
            published_timing,
        "curves": {c.codec: {"points": list(c.points), "bpp": c.bpp.tolist(),
                             "psnr_db": c.values["psnr_db"].tolist()} for c in curves},
        "bd_vs_mbt2018_mean": bd,
        "bd_ours_vs_each_curve": bd_ours,
        "bd_variable_rate_vs_per_lambda": variable_vs_per_lambda,
    }
    atomic_write_bytes(args.output.with_suffix(".json"),
                       json.dumps(summary, indent=1, allow_nan=True).encode())

    print(f"{'codec':42} {'point':>8} {'bpp':>7} {'PSNR':>7}")
    for c in curves:
        for point, bpp, q in zip(c.points, c.bpp, c.values["psnr_db"], strict=True):
            print(f"{c.codec:42} {point:>8} {bpp:7.4f} {q:7.2f}")
    print(f"\nBD vs {ANCHOR}:")
    for name, v in bd.items():
        print_bd(name, v)
    for o, against in bd_ours.items():
        print(f"BD of {o} against:")
        for name, v in against.items():
            print_bd(name, v)
    if variable_vs_per_lambda is not None:
        print("variable-rate model against the per-λ models:")
        print_bd(VARIABLE, variable_vs_per_lambda)
    for name, t in timings.items():
        print(f"  {name:28} encode {t['encode_s_mean']:.3f} s  decode {t['decode_s_mean']:.3f} s"
              f"  (first image with compilation {t['warmup_encode_decode_s']:.1f} s)")


if __name__ == "__main__":
    main()
