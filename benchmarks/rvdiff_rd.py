"""Rate-variable diffusion codec: one model over many rates × sampler steps × α(t) schedules on
Kodak / CLIC: bpp vs PSNR, MS-SSIM, LPIPS (and patch FID), decode time per setting, BD-rate of
the one model against separately trained per-rate models, against its own N = 0 decode and
against the anchors (JPEG / WebP coded here, MS-ILLM's published Kodak points, other codecs'
per-image records read from their TSVs).

    python benchmarks/rvdiff_rd.py --checkpoint runs/rvdiff_cpu \\
        [--images ../shared/data/kodak] [--max_images 0 | --names kodim01,…] [--crop 0] \\
        [--rates 0,0.14,0.29,0.43,0.57,0.71,0.86,1] [--steps 2,0] [--alphas 0.5:1] [--seed 0] \\
        [--per_rate runs/rv_t0.2:0.2,runs/rv_t0.8:0.8] [--classic jpeg:1,5,10;webp:0,5,10] \\
        [--compare benchmarks/results/hyperprior_rd.tsv,...] [--published msillm.csv:kodak] \\
        [--fid] [--no_lpips] [--output benchmarks/results/rvdiff_rd]

Every image is coded for real at every (rate, steps, α) setting (``.nlc`` bytes from
:class:`nlc_jax.codecs.rvdiff.RvdiffCodec`; rate = file size), decoded again from the bytes
(timed; the first image of each of N = 0 and N ≥ 1 is coded once before, to compile the
networks, which are jit-compiled once for every rate) and checked equal to the encoder's
reconstruction.
The first ``--steps`` / ``--alphas`` setting is the *main* one: every BD number is of that curve.

* ``--alphas`` takes ``alpha_max:alpha_power`` pairs (the α(t) ablation; α only matters at N ≥ 2).
* ``--per_rate`` adds models trained at one rate each (``--config.train_rate``), coded at that
  rate with the main setting; BD-rate (pchip, PSNR and LPIPS) of the one model against them.
  With ``--steps ''`` no one-model coding is done and its records come from ``--compare``
  (a TSV this script wrote), so the per-rate models can be measured after the main run.
* ``--classic`` codes JPEG / WebP (Pillow) at the given qualities, their lowest included.
* ``--compare`` adds the per-image records of other benchmarks: TSVs (``nlc_jax.metrics.rd``
  layout) or JSONs with a ``records`` list (e.g. ``clric_rd.json``); only the images coded here,
  and not the codecs coded here. A codec missing one of the images has no curve.
* ``--published`` adds dataset-mean curves of a published CSV (MS-ILLM's layout) for one
  dataset; use it only when the images are that whole dataset.

Writes ``<output>.tsv`` (per-image records), ``<output>.json`` (mean curves, BD numbers, the
autoencoder's own round trip as the quality ceiling, patch FID, timings, settings, machine) and
``<output>_{psnr_db,lpips}.png``, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
from ml_collections import config_dict  # noqa: E402

from nlc_jax.codecs.rvdiff import make_codec  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.rd import write_tsv  # noqa: E402
from nlc_jax.metrics.rd_report import (  # noqa: E402
    ReportArgumentError,
    bd_against_all,
    classic_records,
    compared_records,
    curve_json,
    curves_of,
    image_quality,
    parse_classic,
    patch_fids,
    plot_curves,
    select_sources,
)

PER_RATE = "per-rate models"
DEFAULT_CLASSIC = "jpeg:1,3,5,10,20,30,50,75;webp:0,2,5,10,20,30,50,75"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _alphas(text: str) -> list[tuple[float, float]]:
    pairs = []
    for item in text.split(","):
        amax, _, apow = item.partition(":")
        pairs.append((float(amax), float(apow or 1.0)))
    return pairs


def _label(steps: int, alpha: tuple[float, float]) -> str:
    return f"rvdiff N={steps} a={alpha[0]:g}:{alpha[1]:g}"


def _code(codec, image: np.ndarray, lp, timed: bool) -> tuple[dict, np.ndarray]:
    t0 = time.perf_counter()
    result = codec.encode(image)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = codec.decode(result.data)
    decode_s = time.perf_counter() - t0
    if not np.array_equal(decoded, result.reconstruction):
        raise SystemExit("error: a decoded file differs from the encoder's reconstruction")
    h, w = image.shape[:2]
    record = {"bpp": 8.0 * len(result.data) / (h * w), **image_quality(image, decoded, lp)}
    if timed:
        record.update(encode_s=encode_s, decode_s=decode_s)
    return record, decoded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="training workdir or its export/")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=0, help="first N images (0: all)")
    p.add_argument("--names", default="", help="only these images (comma-separated stems)")
    p.add_argument("--crop", type=int, default=0, help="top-left N×N crop (0: whole image)")
    p.add_argument("--rates", default="0,0.14,0.29,0.43,0.57,0.71,0.86,1")
    p.add_argument("--steps", default="2,0,1,4,8", help="N values; the first is the main one")
    p.add_argument("--alphas", default="0.5:1", help="alpha_max:alpha_power pairs")
    p.add_argument("--seed", type=int, default=0, help="noise seed written into the files")
    p.add_argument("--per_rate", default="", help="dir:t,... models trained at one rate each")
    p.add_argument("--classic", default="", help=f"JPEG/WebP ladders, e.g. {DEFAULT_CLASSIC!r}")
    p.add_argument("--compare", default="", help="TSVs of other codecs' per-image records")
    p.add_argument("--published", default="", help="CSV:dataset of published mean curves")
    p.add_argument("--weights_dir", default="")
    p.add_argument("--fid", action="store_true", help="patch FID per setting (Inception)")
    p.add_argument("--no_lpips", action="store_true")
    p.add_argument("--output", default=str(ROOT / "benchmarks/results/rvdiff_rd"))
    args = p.parse_args()
    rates, alphas = _floats(args.rates), _alphas(args.alphas)
    steps_list = [int(v) for v in args.steps.split(",") if v]
    try:
        classic = parse_classic(args.classic)
        sources = select_sources(open_inputs(args.images), args.names, args.max_images)
    except ReportArgumentError as err:
        raise SystemExit(f"error: {err}") from None
    images = {s.name: s.load() for s in sources}
    if args.crop:
        images = {k: v[:args.crop, :args.crop] for k, v in images.items()}
    names = list(images)
    lp = None
    if not args.no_lpips:
        from nlc_jax.metrics.lpips import cached_lpips_params

        lp = cached_lpips_params("alex")

    def codec_for(checkpoint: str, rate: float, steps: int, alpha: tuple[float, float],
                  autoencoder=None):
        return make_codec(config_dict.ConfigDict(
            {"checkpoint": checkpoint, "rate": rate, "steps": steps, "alpha_max": alpha[0],
             "alpha_power": alpha[1], "noise_seed": args.seed,
             "weights_dir": args.weights_dir}), autoencoder=autoencoder)

    records, timings, decoded_sets = [], {}, {}
    autoencoder, warmed = None, set()
    main_label = _label(steps_list[0] if steps_list else 2, alphas[0])
    for steps in steps_list:
        for alpha in alphas if steps > 1 else alphas[:1]:  # α only matters with N ≥ 2
            label = _label(steps, alpha)
            for rate in rates:
                codec = codec_for(args.checkpoint, rate, steps, alpha, autoencoder)
                autoencoder = codec.autoencoder
                point = f"t{rate:.3f}"
                if min(steps, 1) not in warmed:  # compile (once: t is an argument, not static)
                    _code(codec, images[names[0]], None, timed=False)
                    warmed.add(min(steps, 1))
                times = []
                for name in names:
                    record, decoded = _code(codec, images[name], lp, timed=True)
                    records.append({"codec": label, "point": point, "image": name, **record})
                    times.append((record["encode_s"], record["decode_s"]))
                    decoded_sets.setdefault((label, point), []).append(decoded)
                enc, dec = np.mean(times, axis=0)
                timings[f"{label} {point}"] = {"encode_s": float(enc), "decode_s": float(dec)}
                last = records[-len(names):]
                print(f"{label:28s} t={rate:.3f}  bpp {np.mean([r['bpp'] for r in last]):.4f}  "
                      f"PSNR {np.mean([r['psnr_db'] for r in last]):6.2f}  "
                      f"LPIPS {np.mean([r.get('lpips', np.nan) for r in last]):.4f}  "
                      f"decode {dec:.2f} s", flush=True)

    if args.per_rate:
        steps, alpha = (steps_list or [2])[0], alphas[0]
        for item in args.per_rate.split(","):
            directory, _, rate = item.rpartition(":")
            codec = codec_for(directory, float(rate), steps, alpha, autoencoder)
            autoencoder = codec.autoencoder
            point = f"t{float(rate):.3f}"
            for name in names:
                record, decoded = _code(codec, images[name], lp, timed=False)
                records.append({"codec": PER_RATE, "point": point, "image": name, **record})
                decoded_sets.setdefault((PER_RATE, point), []).append(decoded)
            print(f"{PER_RATE} ({directory}) t={float(rate):.3f}: bpp "
                  f"{np.mean([r['bpp'] for r in records[-len(names):]]):.4f}", flush=True)

    records += classic_records(images, classic, lp, decoded_sets)
    records += compared_records(args.compare, names, {r["codec"] for r in records})

    round_trip = {}
    if autoencoder is not None:  # the autoencoder's own round trip: every setting's ceiling
        ceiling = []
        for n in names:
            up = autoencoder.decode(autoencoder.encode(images[n]), *images[n].shape[:2])
            ceiling.append(image_quality(images[n], up, lp))
            decoded_sets.setdefault((f"{autoencoder.name} round trip", "ae"), []).append(up)
        round_trip = {k: float(np.mean([q[k] for q in ceiling])) for k in ceiling[0]}
        print(f"{autoencoder.name} round trip: " + ", ".join(
            f"{k} {v:.4f}" for k, v in round_trip.items()))

    curves = curves_of(records, names, args.published)
    bd = bd_against_all(curves, main_label)
    fids = patch_fids([images[n] for n in names], decoded_sets) if args.fid else {}

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(out.with_suffix(".tsv"), records)
    dataset = f"{Path(args.images).name} ({len(names)} images" + (
        f", {args.crop}² crops)" if args.crop else ")")
    plot_curves(curves, out, dataset)
    summary = {"command": " ".join(sys.argv), "checkpoint": args.checkpoint,
               "images": args.images, "names": names, "crop": args.crop, "rates": rates,
               "steps": steps_list, "alphas": [list(a) for a in alphas], "seed": args.seed,
               "main": main_label, "curves": {k: curve_json(c) for k, c in curves.items()},
               "bd": bd, "autoencoder_round_trip": round_trip, "patch_fid": fids,
               "timing_per_image": timings, "load_average": os.getloadavg(),
               "machine": machine_facts()}
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(summary, indent=1).encode())
    print(f"wrote {out.with_suffix('.tsv')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
