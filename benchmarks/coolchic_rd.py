"""COOL-CHIC rate–distortion against Cool-chic 5.0.1's published per-image Kodak results.

    python benchmarks/coolchic_rd.py --images ../shared/data/kodak --preset hop \\
        --lmbdas 0.0004,0.001,0.004,0.02 [--max_images 3] [--n_itr 2000] [--output bench_out/rd]

Encodes every image at every λ with the batched engine (files and ``results.tsv`` in
``--output``; a rerun resumes), decodes every file and checks that its pixels equal the
encoder's reconstruction (``nlc_jax.fit.verify``: array comparison; a diverged fit or a
mismatch stops the run with one ``error:`` line), then writes:

* ``rd.tsv``: per-image records (ours and the reference's rows for the same images);
* ``rd.png``: mean RD curves of ours, Cool-chic 5.0.1 and Pillow WebP on the same axes;
* ``rd.json``: BD-rate vs Cool-chic 5.0.1 per image and mean (and the BD-rate of the mean
  curves), BD-rate of WebP vs ours, decode times, the machine (CPU, cores, load, JAX);

and prints a table. The reference is ``../shared/reference/coolchic-5.0.1-kodak.tsv``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import nlc_jax  # noqa: E402
from nlc_jax.codecs.coolchic import mac_per_pixel  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.fit.pipeline import EncodeSettings  # noqa: E402
from nlc_jax.fit.verify import VerifyError, encode_and_verify  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.plots import plot_rd  # noqa: E402
from nlc_jax.metrics.rd import bd_pair, make_curve, reference_records, write_tsv  # noqa: E402
from nlc_jax.metrics.rd_report import classic_records  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/coolchic-5.0.1-kodak.tsv"
OURS, REF, WEBP = "nlc_jax coolchic", "Cool-chic 5.0.1", "WebP (Pillow)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True)
    p.add_argument("--preset", default="fast")
    p.add_argument("--lmbdas", default="0.0004,0.001,0.004,0.02")
    p.add_argument("--max_images", type=int, default=0)
    p.add_argument("--n_itr", type=int, default=0, help="override recipe.n_itr (0: preset's)")
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--final_steps", type=int, default=0)
    p.add_argument("--n_candidates", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)

    config = nlc_jax.load_config("coolchic", args.preset)
    for key in ("n_itr", "warmup_steps", "final_steps", "n_candidates"):
        if getattr(args, key):
            config.recipe[key] = getattr(args, key)
    lmbdas = tuple(float(x) for x in args.lmbdas.split(","))
    out = args.output or Path("bench_out") / f"coolchic_rd_{args.preset}"
    sources = open_inputs(args.images)
    if args.max_images:
        sources = sources[:args.max_images]
    codec = nlc_jax.make_codec(config)
    settings = EncodeSettings(lmbdas=lmbdas, batch_size=args.batch_size)
    t0 = time.perf_counter()
    try:
        files = encode_and_verify(codec, sources, out, settings)
    except VerifyError as err:
        sys.exit(f"error: {err}")
    encode_s = time.perf_counter() - t0

    records = [{"codec": OURS, "point": f"{f.lmbda:g}", "image": f.image, "bpp": f.bpp,
                "psnr_db": f.psnr_db} for f in files]
    decode_s = [f.decode_s for f in files]
    records += classic_records({s.name: s.load() for s in sources},
                               {"webp": [5, 20, 40, 60, 80, 95]}, lpips_params=None)
    names = [s.name for s in sources]
    reference = reference_records(args.reference, names, REF)
    records += reference
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "rd.tsv", records)

    per_image = {n: bd_pair(make_curve(records, REF, [n]), make_curve(records, OURS, [n]))
                 ["bd_rate_pct"] for n in names}
    curves = [make_curve(records, c, names) for c in (OURS, REF, WEBP)]
    mean_curve_bd = {c.codec: bd_pair(curves[1], c)["bd_rate_pct"] for c in curves[::2]}
    plot_rd(curves, "psnr_db", out / "rd.png", bd_rates=mean_curve_bd, bd_anchor=REF,
            dataset=f"Kodak ({len(names)} images)")
    summary = {
        "preset": args.preset, "recipe": config.recipe.to_dict(), "lmbdas": lmbdas,
        "mac_per_pixel": mac_per_pixel(codec.arch),
        "bd_rate_vs_coolchic_per_image": per_image,
        "bd_rate_vs_coolchic_mean_of_images": float(np.nanmean(list(per_image.values()))),
        "bd_rate_vs_coolchic_of_mean_curves": mean_curve_bd[OURS],
        "bd_rate_webp_vs_coolchic_of_mean_curves": mean_curve_bd[WEBP],
        "bd_rate_webp_vs_ours": bd_pair(curves[0], curves[2])["bd_rate_pct"],
        "encode_s_total": encode_s, "decode_s_mean": float(np.mean(decode_s)),
        "decode_s_max": float(np.max(decode_s)), "decoded_equals_encoder": len(files),
        "machine": machine_facts(),
    }
    (out / "rd.json").write_text(json.dumps(summary, indent=2))
    print(f"{'image':<10}{'lmbda':>8}{'bpp':>8}{'PSNR':>8}   ref bpp  ref PSNR")
    ref_by = {(r["image"], r["point"]): r for r in reference}
    for r in records:
        if r["codec"] == OURS:
            ref = ref_by.get((r["image"], r["point"]))
            tail = f"{ref['bpp']:9.3f}{ref['psnr_db']:9.2f}" if ref else ""
            print(f"{r['image']:<10}{r['point']:>8}{r['bpp']:8.3f}{r['psnr_db']:8.2f} {tail}")
    for n, v in per_image.items():
        print(f"BD-rate vs Cool-chic 5.0.1, {n}: {v:+.1f}%")
    print(f"BD-rate vs Cool-chic 5.0.1, mean over images: "
          f"{summary['bd_rate_vs_coolchic_mean_of_images']:+.1f}%; of the mean curves: "
          f"{summary['bd_rate_vs_coolchic_of_mean_curves']:+.1f}%; WebP vs ours: "
          f"{summary['bd_rate_webp_vs_ours']:+.1f}%")
    print(f"decode: mean {summary['decode_s_mean']:.2f} s, max {summary['decode_s_max']:.2f} s; "
          f"wrote {out / 'rd.tsv'}, {out / 'rd.png'}, {out / 'rd.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
