"""Noise-to-Latent rate–distortion and decode speed against our COOL-CHIC and Cool-chic 5.0.1.

    python benchmarks/noise2latent_rd.py --images ../shared/data/kodak --max_images 4 \\
        --crop 256 --n_itr 1000 --lmbdas 0.0004,0.001,0.004,0.02 \\
        [--preset fast] [--coolchic_preset fast] [--output benchmarks/results/noise2latent_rd]

Both codecs fit the same images (centre crops of ``--crop`` pixels, or full images with
``--crop 0``) at the same λ's with the same number of iterations, all λ of a batch in one
vmapped fit (``nlc_jax.fit``). Every file is decoded again and its pixels checked against the
encoder's reconstruction (``nlc_jax.fit.verify``: array comparison; a diverged fit or a mismatch
stops the run with one ``error:`` line). Writes ``<output>.tsv`` (per-image records), ``<output>.json`` (BD-rates, MAC/pixel,
timings, the machine) and ``<output>_psnr_db.png``, and prints a table.

BD-rates (pchip, ``nlc_jax.metrics.bd``) of the mean curves: Noise-to-Latent against our
COOL-CHIC and against Pillow WebP on the same images, and against Cool-chic 5.0.1's published
points (``../shared/reference/coolchic-5.0.1-kodak.tsv``) — those are *full* Kodak images, so
with crops that number compares different pictures and is reported as indicative only.

Decode time: the mean over the fitted files, plus a full 768×512 decode of each codec on a file
from perturbed initial parameters (a timing file: the work per pixel does not depend on the fit
for Noise-to-Latent; for COOL-CHIC it grows a little with the latent rate).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[1]

import jax  # noqa: E402
import numpy as np  # noqa: E402

import nlc_jax  # noqa: E402
from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.codecs.coolchic import mac_per_pixel as coolchic_macs  # noqa: E402
from nlc_jax.codecs.noise2latent import mac_per_pixel as noise2latent_macs  # noqa: E402
from nlc_jax.data.datasets import ImageSource, open_inputs  # noqa: E402
from nlc_jax.data.images import centre_crop  # noqa: E402
from nlc_jax.fit.buckets import BucketPolicy  # noqa: E402
from nlc_jax.fit.pipeline import EncodeSettings  # noqa: E402
from nlc_jax.fit.verify import VerifyError, encode_and_verify  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.plots import plot_rd  # noqa: E402
from nlc_jax.metrics.rd import bd_pair, make_curve, reference_records, write_tsv  # noqa: E402
from nlc_jax.metrics.rd_report import classic_records  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "coolchic-5.0.1-kodak.tsv"
N2L, COOLCHIC, REF, WEBP = ("nlc_jax noise2latent", "nlc_jax coolchic", "Cool-chic 5.0.1",
                            "WebP (Pillow)")
MACS = {N2L: noise2latent_macs, COOLCHIC: coolchic_macs}


def fit_and_decode(codec, sources, lmbdas, out: Path, label: str, batch_size: int
                   ) -> tuple[list[dict], dict]:
    """Encode every source at every λ, decode every file → (records, timings)."""
    settings = EncodeSettings(lmbdas=lmbdas, batch_size=batch_size, progress=False,
                              policy=BucketPolicy(multiple=16), checkpoint_every_s=None)
    try:
        files = encode_and_verify(codec, sources, out, settings)
    except VerifyError as err:
        sys.exit(f"error: {label}: {err}")
    # Per-batch encode seconds as results.tsv recorded them (a rerun resumes and fits nothing).
    with open(out / "results.tsv") as f:
        batches = {row["batch_id"]: float(row["encode_s"])
                   for row in csv.DictReader(f, delimiter="\t")}
    records = [{"codec": label, "point": f"{f.lmbda:g}", "image": f.image, "bpp": f.bpp,
                "psnr_db": f.psnr_db} for f in files]
    decode_s = [f.decode_s for f in files]
    seconds = list(batches.values())
    return records, {"encode_s_per_batch": seconds, "fits_per_batch": batch_size,
                     "encode_s_per_fit_after_compile": float(np.median(seconds[1:] or seconds))
                     / batch_size,
                     "decode_s_mean": float(np.mean(decode_s)),
                     "decode_s_max": float(np.max(decode_s))}


def full_size_decode_s(codec, height: int = 512, width: int = 768, repeats: int = 3) -> float:
    """Best-of-``repeats`` decode time of a ``height × width`` file from perturbed initial
    parameters (a timing file)."""
    params = codec.init(jax.random.key(0), (height, width, 3))
    keys = iter(jax.random.split(jax.random.key(1), 256))
    params = {k: (v if k in ("noise", "seed", "latents") else
                  jax.tree.map(lambda a: a + 0.05 * jax.random.normal(next(keys), a.shape), v))
              for k, v in params.items()}
    if "latents" in params:  # COOL-CHIC: latents of a plausible size
        params["latents"] = tuple(0.05 * jax.random.normal(next(keys), z.shape)
                                  for z in params["latents"])
    image = np.zeros((height, width, 3), np.uint8)
    data = codec.finalize(params, codec.prepare_target(image), image, 1e-3).data
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        registry.decode_bytes(data)
        times.append(time.perf_counter() - t)
    return min(times)


def bd(records: list[dict], names: list[str], anchor: str, test: str) -> dict:
    """BD-rate (%) and BD-PSNR (dB) of ``test``'s mean curve against ``anchor``'s
    (:func:`nlc_jax.metrics.rd.bd_pair`: NaN with the reason when undefined)."""
    return bd_pair(make_curve(records, anchor, names), make_curve(records, test, names))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=4)
    p.add_argument("--crop", type=int, default=256, help="centre crop side (0: full images)")
    p.add_argument("--preset", default="fast", help="noise2latent preset")
    p.add_argument("--coolchic_preset", default="fast")
    p.add_argument("--n_itr", type=int, default=0,
                   help="recipe overrides (this and the next three) apply to both codecs; 0: the "
                        "preset's")
    p.add_argument("--n_candidates", type=int, default=0)
    p.add_argument("--warmup_steps", type=int, default=0)
    p.add_argument("--final_steps", type=int, default=0)
    p.add_argument("--lmbdas", default="0.0004,0.001,0.004,0.02")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--output", type=Path, default=Path("bench_out/noise2latent_rd"))
    args = p.parse_args(argv)

    lmbdas = tuple(float(x) for x in args.lmbdas.split(","))
    sources = open_inputs(args.images)[:args.max_images or None]
    sources = [ImageSource(s.name, array=np.ascontiguousarray(centre_crop(s.load(), args.crop)))
               for s in sources]
    names = [s.name for s in sources]
    configs = {N2L: nlc_jax.load_config("noise2latent", args.preset),
               COOLCHIC: nlc_jax.load_config("coolchic", args.coolchic_preset)}
    records, summary = [], {"images": names, "crop": args.crop, "lmbdas": lmbdas}
    work = args.output.parent / (args.output.name + "_files")
    for label, config in configs.items():
        for key in ("n_itr", "n_candidates", "warmup_steps", "final_steps"):
            if getattr(args, key):
                config.recipe[key] = getattr(args, key)
        codec = registry.make(config)
        files = work / f"{codec.name}_{config.preset}_{config.recipe.n_itr}"  # reruns resume
        recs, timing = fit_and_decode(codec, sources, lmbdas, files, label, args.batch_size)
        records += recs
        summary[label] = {
            "preset": config.preset, "recipe": config.recipe.to_dict(),
            "mac_per_pixel": MACS[label](codec.arch),
            **timing, "decode_s_768x512_timing_file": full_size_decode_s(codec)}
    records += classic_records({s.name: s.load() for s in sources},
                               {"webp": [1, 5, 10, 20, 40, 60, 80, 95]}, lpips_params=None)
    reference = reference_records(REFERENCE, names, REF)
    records += reference
    summary["bd_vs_coolchic"] = bd(records, names, COOLCHIC, N2L)
    summary["bd_vs_webp"] = bd(records, names, WEBP, N2L)
    summary["bd_coolchic_vs_webp"] = bd(records, names, WEBP, COOLCHIC)
    summary["bd_vs_coolchic_5_0_1_published"] = {
        **bd(records, names, REF, N2L),
        "note": "full Kodak images" if not args.crop else
                f"indicative only: ours on {args.crop}² centre crops, the reference on full images"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(args.output.with_suffix(".tsv"), records)
    curves = [make_curve(records, c, names) for c in (N2L, COOLCHIC, WEBP, REF)]
    plot_rd(curves, "psnr_db", Path(f"{args.output}_psnr_db.png"),
            bd_rates={c.codec: bd(records, names, COOLCHIC, c.codec)["bd_rate_pct"]
                      for c in curves if c.codec != COOLCHIC},
            bd_anchor=COOLCHIC,
            dataset=f"Kodak, {len(names)} images" + (f", {args.crop}² crops" if args.crop else ""))
    summary["machine"] = machine_facts()
    args.output.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=float))

    print(f"{'codec':<22}{'image':<9}{'λ':>8}{'bpp':>8}{'PSNR':>8}")
    for r in records:
        if r["codec"] in (N2L, COOLCHIC):
            print(f"{r['codec']:<22}{r['image']:<9}{r['point']:>8}{r['bpp']:8.3f}"
                  f"{r['psnr_db']:8.2f}")
    for label in (N2L, COOLCHIC):
        s = summary[label]
        print(f"{label}: {s['mac_per_pixel']:.0f} MAC/px, encode "
              f"{s['encode_s_per_fit_after_compile']:.1f} s per fit (batched), decode {s['decode_s_mean']:.3f} s per file, "
              f"{s['decode_s_768x512_timing_file']:.3f} s at 768×512")
    for key in ("bd_vs_coolchic", "bd_vs_webp", "bd_coolchic_vs_webp",
                "bd_vs_coolchic_5_0_1_published"):
        print(f"{key}: BD-rate {summary[key]['bd_rate_pct']:+.1f} %, "
              f"BD-PSNR {summary[key]['bd_psnr_db']:+.2f} dB")
    print(f"wrote {args.output}.tsv/.json/_psnr_db.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
