"""GLC rate–distortion–perception of one trained model: bpp, PSNR, MS-SSIM and LPIPS per image,
rate index and hyper-index coding (fixed-length ``log2 Kz`` bits or the learned categorical
prior).

    python benchmarks/glc_rd.py --checkpoint runs/glc_tc [--images ../shared/data/kodak] \\
        [--max_images 0] [--rate_indices 0,1,2,3] [--hyper_coding fixed,entropy] \\
        [--lpips_net alex] [--files /tmp/glc_files] [--output benchmarks/results/glc_rd]

Every image is coded for real (``.nlc`` bytes of :class:`nlc_jax.codecs.glc.GLCCodec`), decoded
again from the bytes and checked bit-exact against the encoder's reconstruction; the rate is the
file size (container, header, hyper and latent streams). Quality metrics are
``nlc_jax.eval.measure``'s (MS-SSIM is NaN for images under 161 px). Encode and decode are timed
per image after one warm-up image per codec (compilation excluded, reported separately). Writes
``<output>.tsv`` (per-image records, ``nlc_jax.metrics.rd`` columns), ``<output>.json`` (mean
curves per hyper coding, per-image timings, the model's config and training budget, machine
facts) and prints a table. It measures one model; comparisons against other codecs' TSVs go
through ``nlc-eval`` / ``nlc_jax.metrics.rd``.
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

from nlc_jax.bitstream import SectionType  # noqa: E402
from nlc_jax.bitstream.container import read_image_container  # noqa: E402
from nlc_jax.codecs.glc import make_codec  # noqa: E402
from nlc_jax.codecs.weights import load_inference  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.eval import measure  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.lpips import load_lpips_params  # noqa: E402
from nlc_jax.metrics.rd import METRICS, make_curve, write_tsv  # noqa: E402
from nlc_jax.metrics.round_trip import timed_round_trips  # noqa: E402


def codec_name(mode: str) -> str:
    """Display name of the model with one hyper coding."""
    return f"ours: glc ({mode} hyper indices)"


def training_budget(checkpoint: Path) -> dict:
    """Steps, batch, crop and last logged metrics of the run that made ``checkpoint`` (empty
    when ``checkpoint`` is an export folder without its run)."""
    workdir = checkpoint.parent if checkpoint.name == "export" else checkpoint
    if not (workdir / "metrics.jsonl").exists():
        return {}
    config = json.loads((workdir / "config.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    train = [r for r in rows if r["split"] == "train"]
    steps = int(train[-1]["step"]) if train else 0
    return {"workdir": str(workdir), "stage": config.get("stage"), "steps": steps,
            "batch_size": config["batch_size"], "crop": config["crop"],
            "preset": config.get("preset"), "data": config["data"],
            "last_train_metrics": {k: v for k, v in train[-1].items()
                                   if k not in ("step", "split", "time")} if train else {}}


def code_images(checkpoint: Path, rate_index: int, mode: str, sources, lpips_params,
                files: Path | None) -> tuple[list[dict], dict]:
    """Encode + decode + measure every image at one rate index and hyper coding."""
    codec = make_codec({"checkpoint": str(checkpoint), "rate_index": rate_index,
                        "hyper_coding": mode})
    trips, timing = timed_round_trips(codec, sources, None if files is None
                                      else files / f"{mode}_r{rate_index}",
                                      f"rate {rate_index}, {mode}")
    records = []
    for name, image, data, decoded in trips:
        h, w = image.shape[:2]
        container = read_image_container(data, "glc")
        records.append({"codec": codec_name(mode), "point": f"r{rate_index}", "image": name,
                        "bpp": 8.0 * len(data) / (h * w),
                        "bpp_z": 8.0 * len(container.section(SectionType.HYPER)) / (h * w),
                        "bpp_y": 8.0 * len(container.section(SectionType.LATENTS)) / (h * w),
                        **measure(image, decoded, lpips_params)})
    return records, timing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="stage-II/III workdir or its export/")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=0, help="0: all")
    p.add_argument("--rate_indices", default="", help="comma-separated; default: all")
    p.add_argument("--hyper_coding", default="fixed,entropy")
    p.add_argument("--lpips_net", default="alex", help="alex, vgg, or none")
    p.add_argument("--files", default="", help="also keep the .nlc files here")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "glc_rd"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    checkpoint = Path(args.checkpoint)
    _, model_config, digest = load_inference(checkpoint)
    sources = open_inputs(args.images)
    if args.max_images > 0:
        sources = sources[:args.max_images]
    rates = ([int(r) for r in args.rate_indices.split(",")] if args.rate_indices
             else list(range(len(model_config["lmbdas"]))))
    modes = [m for m in args.hyper_coding.split(",") if m]
    lpips_params = None if args.lpips_net == "none" else load_lpips_params(args.lpips_net)
    files = Path(args.files) if args.files else None
    records, timings = [], {}
    for mode in modes:
        for r in rates:
            recs, timing = code_images(checkpoint, r, mode, sources, lpips_params, files)
            records += recs
            timings[f"{mode}_r{r}"] = timing
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(output.with_suffix(".tsv"), records)
    names = [s.name for s in sources]
    curves = {}
    print(f"{'codec':42s} {'point':6s} {'bpp':>8s} {'bpp_z':>8s} " +
          " ".join(f"{m:>10s}" for m in METRICS))
    for mode in modes:
        curve = make_curve(records, codec_name(mode), names)
        bpp_z = {p: float(np.mean([r["bpp_z"] for r in records
                                   if r["codec"] == curve.codec and r["point"] == p]))
                 for p in curve.points}
        curves[mode] = {"points": list(curve.points), "bpp": curve.bpp.tolist(),
                        "bpp_z": [bpp_z[p] for p in curve.points],
                        **{m: curve.values[m].tolist() for m in METRICS}}
        for i, p in enumerate(curve.points):
            print(f"{curve.codec:42s} {p:6s} {curve.bpp[i]:8.4f} {bpp_z[p]:8.4f} " +
                  " ".join(f"{curve.values[m][i]:10.4f}" for m in METRICS))
    summary = {"checkpoint": str(checkpoint), "weights_hash": digest.hex(),
               "model": model_config, "training": training_budget(checkpoint),
               "images": names, "lpips_net": args.lpips_net, "curves": curves,
               "timings": timings, "machine": machine_facts()}
    atomic_write_bytes(output.with_suffix(".json"),
                       json.dumps(summary, indent=1, default=float).encode())
    print(f"wrote {output.with_suffix('.tsv')} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
