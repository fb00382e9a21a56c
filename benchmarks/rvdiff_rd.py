"""Rate-variable diffusion codec: one model over many rates × sampler steps × α(t) schedules on
Kodak / CLIC: bpp vs PSNR, MS-SSIM, LPIPS (and patch FID), decode time per setting, and BD-rate
of the one model against separately trained per-rate models.

    python benchmarks/rvdiff_rd.py --checkpoint runs/rvdiff_cpu \\
        [--images ../shared/data/kodak] [--max_images 0] [--crop 0] \\
        [--rates 0,0.14,0.29,0.43,0.57,0.71,0.86,1] [--steps 0,1,2,4,8] \\
        [--alphas 0.5:1] [--seed 0] [--per_rate runs/rv_t0.2:0.2,runs/rv_t0.6:0.6] \\
        [--fid] [--no_lpips] [--output benchmarks/results/rvdiff_rd]

Every image is coded for real at every (rate, steps, α) setting (``.nlc`` bytes from
:class:`nlc_jax.codecs.rvdiff.RvdiffCodec`; rate = file size), decoded again from the bytes
(timed, after one warm-up image per setting) and checked equal to the encoder's reconstruction.
``--alphas`` takes ``alpha_max:alpha_power`` pairs (the α(t) ablation). ``--per_rate`` adds
models trained at one rate each (``--config.train_rate``), coded at that rate with the first
steps/α setting; BD-rate (pchip, PSNR and LPIPS) of the one model against them is reported.
Writes ``<output>.tsv`` (per-image records, ``nlc_jax.metrics.rd`` columns) and
``<output>.json`` (mean curves, BD numbers, the autoencoder's own round trip as the quality
ceiling, timings, settings, machine) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from nlc_jax.metrics.ms_ssim import MIN_SIDE, ms_ssim, ms_ssim_db  # noqa: E402
from nlc_jax.metrics.psnr import psnr_exact  # noqa: E402
from nlc_jax.metrics.rd import METRICS, bd_pair, make_curve, write_tsv  # noqa: E402


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


def _quality(image: np.ndarray, decoded: np.ndarray, lp) -> dict[str, float]:
    out = {"psnr_db": float(psnr_exact(image, decoded))}
    if min(image.shape[:2]) >= MIN_SIDE:
        value = float(ms_ssim(image, decoded))
        out.update(ms_ssim=value, ms_ssim_db=float(ms_ssim_db(value)))
    if lp is not None:
        from nlc_jax.metrics.lpips import lpips

        out["lpips"] = float(lpips(image, decoded, lp))
    return out


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
    record = {"bpp": 8.0 * len(result.data) / (h * w), **_quality(image, decoded, lp)}
    if timed:
        record.update(encode_s=encode_s, decode_s=decode_s)
    return record, decoded


def _fid_features():
    try:
        from nlc_jax.metrics.fid import extract_patches
        from nlc_jax.metrics.inception import inception_features, load_inception_params
        params = load_inception_params()
    except Exception as err:  # the Inception weights are an optional install
        print(f"patch FID skipped: {err}", file=sys.stderr)
        return None
    return lambda images: inception_features(
        params, np.concatenate([extract_patches(im) for im in images]))


def _mean_curve(records: list[dict], label: str, names: list[str]) -> dict:
    curve = make_curve(records, label, names)
    return {"points": list(curve.points), "bpp": curve.bpp.tolist(),
            **{m: curve.values[m].tolist() for m in METRICS if m in curve.values}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="training workdir or its export/")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=0, help="first N images (0: all)")
    p.add_argument("--crop", type=int, default=0, help="top-left N×N crop (0: whole image)")
    p.add_argument("--rates", default="0,0.14,0.29,0.43,0.57,0.71,0.86,1")
    p.add_argument("--steps", default="0,1,2,4,8")
    p.add_argument("--alphas", default="0.5:1", help="alpha_max:alpha_power pairs")
    p.add_argument("--seed", type=int, default=0, help="noise seed written into the files")
    p.add_argument("--per_rate", default="", help="dir:t,... models trained at one rate each")
    p.add_argument("--weights_dir", default="")
    p.add_argument("--fid", action="store_true", help="patch FID per setting (Inception)")
    p.add_argument("--no_lpips", action="store_true")
    p.add_argument("--output", default=str(ROOT / "benchmarks/results/rvdiff_rd"))
    args = p.parse_args()
    rates, alphas = _floats(args.rates), _alphas(args.alphas)
    steps_list = [int(v) for v in args.steps.split(",")]
    sources = open_inputs(args.images)[:args.max_images or None]
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
    autoencoder = None
    for steps in steps_list:
        for alpha in alphas if steps > 1 else alphas[:1]:  # α only matters with N ≥ 2
            label = _label(steps, alpha)
            for rate in rates:
                codec = codec_for(args.checkpoint, rate, steps, alpha, autoencoder)
                autoencoder = codec.autoencoder
                point = f"t{rate:.3f}"
                _code(codec, images[names[0]], None, timed=False)  # warm-up (compilation)
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
    # the autoencoder's own round trip: the quality ceiling of every setting
    ceiling = [_quality(images[n], autoencoder.decode(autoencoder.encode(images[n]),
                                                      *images[n].shape[:2]), lp) for n in names]
    round_trip = {k: float(np.mean([q[k] for q in ceiling])) for k in ceiling[0]}
    print(f"{autoencoder.name} round trip: " + ", ".join(f"{k} {v:.4f}"
                                                         for k, v in round_trip.items()))
    curves = {label: _mean_curve(records, label, names)
              for label in dict.fromkeys(r["codec"] for r in records)}

    bd = {}
    if args.per_rate:
        steps, alpha = steps_list[0], alphas[0]
        for item in args.per_rate.split(","):
            directory, _, rate = item.rpartition(":")
            codec = codec_for(directory, float(rate), steps, alpha, autoencoder)
            for name in names:
                record, _ = _code(codec, images[name], lp, timed=False)
                records.append({"codec": "per-rate models", "point": f"t{float(rate):.3f}",
                                "image": name, **record})
        anchor = make_curve(records, "per-rate models", names)
        one = make_curve(records, _label(steps, alpha), names)
        curves["per-rate models"] = _mean_curve(records, "per-rate models", names)
        for metric in ("psnr_db", "lpips"):
            if anchor.has(metric) and one.has(metric):
                # LPIPS falls as quality rises: BD on -LPIPS keeps "higher is better"
                flip = -1.0 if metric == "lpips" else 1.0
                a, o = (dataclasses.replace(c, values={metric: flip * c.values[metric]})
                        for c in (anchor, one))
                bd[f"one model vs per-rate ({metric})"] = bd_pair(a, o, metric)

    fids = {}
    if args.fid:
        feats = _fid_features()
        if feats is not None:
            from nlc_jax.metrics.fid import fid

            reference = feats([images[n] for n in names])
            fids = {f"{label} {point}": fid(reference, feats(decoded))
                    for (label, point), decoded in decoded_sets.items()}

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(out.with_suffix(".tsv"), records)
    summary = {"checkpoint": args.checkpoint, "images": args.images, "names": names,
               "crop": args.crop, "rates": rates, "steps": steps_list,
               "alphas": [list(a) for a in alphas], "seed": args.seed, "curves": curves,
               "bd": bd, "autoencoder_round_trip": round_trip, "patch_fid": fids, "timing_per_image": timings,
               "machine": machine_facts()}
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(summary, indent=1).encode())
    print(f"wrote {out.with_suffix('.tsv')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
