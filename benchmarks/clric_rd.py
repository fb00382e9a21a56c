"""CLRIC rate–distortion on Kodak with TAEF2: bpp vs LPIPS / PSNR / patch FID, against JPEG and
WebP at matched rates and Cool-chic 5.0.1's published PSNR points; TAEF2's own round trip as
the upper bound; encode time per image.

    python benchmarks/clric_rd.py --images ../shared/data/kodak --names kodim01,kodim02 \\
        --preset fast --n_itr 600 --lmbdas 0.02,0.05,0.15,0.5 \\
        [--pixel_weight 0] [--autoencoder_dtype float32] [--crop 0] [--timing] [--no_fid] \\
        [--coolchic bench_out/coolchic_rd_fast] [--output benchmarks/results/clric_rd.json]

Each image's λ values are fitted and coded in one batched call (``nlc_jax.fit.coding.code_batch``,
one engine for all images so the step compiles once per shape); every file is decoded and
checked against the encoder's reconstruction. Finished images are cached in ``<output>_cache/`` (one ``.npz`` each,
written atomically, with the settings that made it), so a killed run resumes where it stopped;
a cache made with other settings is refused. ``--coolchic DIR`` adds our COOL-CHIC pixel codec:
the files a ``benchmarks/coolchic_rd.py`` (or ``encode.py``) run wrote to ``DIR`` are decoded and
scored the same way (PSNR, LPIPS, patch FID). ``--timing`` also fits the first image one λ at a
time (B = 1, twice: the second run is timed without compilation). Writes the JSON and ``rd_lpips.png`` /
``rd_psnr.png`` next to it and prints a table.
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

from nlc_jax.bitstream import BitstreamError  # noqa: E402
from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.codecs.clric import Clric  # noqa: E402
from nlc_jax.codecs.coolchic import mac_per_pixel  # noqa: E402
from nlc_jax.config_files import load_config  # noqa: E402
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.fit.coding import code_batch  # noqa: E402
from nlc_jax.fit.engine import Engine, FitOptions, make_mesh  # noqa: E402
from nlc_jax.fit.pipeline import ResultsTable, output_name  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.classic_codecs import encode_decode  # noqa: E402
from nlc_jax.metrics.fid import extract_patches, fid  # noqa: E402
from nlc_jax.metrics.lpips import cached_lpips_params, lpips  # noqa: E402
from nlc_jax.metrics.plots import plot_rd  # noqa: E402
from nlc_jax.metrics.psnr import psnr_exact  # noqa: E402
from nlc_jax.metrics.rd import make_curve, reference_records  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "coolchic-5.0.1-kodak.tsv"
QUALITIES = (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 70)


def _config(args):
    c = load_config("clric", args.preset)
    if args.n_itr:
        c.recipe.n_itr = args.n_itr
        c.recipe.warmup_steps = max(1, args.n_itr // 20)
        c.recipe.final_steps = max(1, args.n_itr // 10)
    if args.n_candidates:
        c.recipe.n_candidates = args.n_candidates
    c.pixel_weight = args.pixel_weight
    c.autoencoder_dtype = args.autoencoder_dtype
    return c


def _fit(codec, engine, image, lmbdas, seed):
    """Fit and code ``image`` at every λ in one batch → (results, seconds)."""
    t0 = time.perf_counter()
    coded = code_batch([codec], [engine], [image] * len(lmbdas), lmbdas, [seed] * len(lmbdas))
    for c, lm in zip(coded, lmbdas, strict=True):
        if c.result is None:
            sys.exit(f"error: λ={lm:g}: {c.error}")
    return [c.result for c in coded], time.perf_counter() - t0


def _match(image, codec_name, bpp):
    """The quality whose file rate is closest to ``bpp`` → (decoded, bpp, quality)."""
    n = image.shape[0] * image.shape[1]
    best = None
    for q in QUALITIES:
        dec, size = encode_decode(image, codec_name, q)
        rate = 8.0 * size / n
        if best is None or abs(rate - bpp) < abs(best[1] - bpp):
            best = (dec, rate, q)
    return best


def _coolchic_records(folder: Path, originals: dict, lp, decoded: dict, label: str) -> list:
    """Score the COOL-CHIC files in ``folder`` (its ``results.tsv`` names them) on ``originals``;
    their decoded images go into ``decoded`` (for patch FID) under ``coolchic λ=<λ>``."""
    rows = [r for r in ResultsTable(folder / "results.tsv").rows() if r["image"] in originals]
    missing = sorted(set(originals) - {r["image"] for r in rows})
    if missing:
        sys.exit(f"error: {folder}/results.tsv has no COOL-CHIC file for {', '.join(missing)}")
    records = []
    for row in sorted(rows, key=lambda r: (list(originals).index(r["image"]), float(r["lmbda"]))):
        name, lm, image = row["image"], float(row["lmbda"]), originals[row["image"]]
        candidates = [folder / output_name(name, lm, sweep) for sweep in (True, False)]
        path = next((c for c in candidates if c.exists()), None)
        if path is None:
            sys.exit(f"error: {folder} has no file for {name} at λ={lm:g}")
        data = path.read_bytes()
        try:
            out = registry.decode_bytes(data)
        except BitstreamError as err:
            sys.exit(f"error: {path}: {err}")
        if out.shape != image.shape:
            sys.exit(f"error: {path} decodes to {out.shape[:2]}, the image is {image.shape[:2]}")
        decoded.setdefault(f"coolchic λ={lm:g}", []).append(out)
        records.append({"codec": label, "point": f"{lm:g}", "image": name,
                        "bpp": 8.0 * len(data) / (image.shape[0] * image.shape[1]),
                        "psnr_db": psnr_exact(out, image), "lpips": float(lpips(out, image, lp))})
    return records


def _fid_features():
    try:
        from nlc_jax.metrics.inception import inception_features, load_inception_params
        params = load_inception_params()
    except Exception as err:  # weights are an optional install
        print(f"patch FID skipped: {err}", file=sys.stderr)
        return None
    return lambda images: inception_features(
        params, np.concatenate([extract_patches(im) for im in images]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--names", default=",".join(f"kodim{i:02d}" for i in range(1, 25)))
    p.add_argument("--preset", default="fast")
    p.add_argument("--n_itr", type=int, default=600)
    p.add_argument("--lmbdas", default="0.02,0.05,0.15,0.5")
    p.add_argument("--n_candidates", type=int, default=0, help="warm-up candidates (0: preset)")
    p.add_argument("--pixel_weight", type=float, default=0.0)
    p.add_argument("--autoencoder_dtype", default="float32")
    p.add_argument("--crop", type=int, default=0, help="top-left N×N crop (0: whole image)")
    p.add_argument("--dataset", default="Kodak", help="dataset name for the plots' titles")
    p.add_argument("--timing", action="store_true")
    p.add_argument("--no_fid", action="store_true")
    p.add_argument("--coolchic", type=Path, default=None,
                   help="folder of our COOL-CHIC files for these images (coolchic_rd.py output)")
    p.add_argument("--coolchic_label", default="COOL-CHIC (ours, pixel space)")
    p.add_argument("--output", default=str(ROOT / "benchmarks/results/clric_rd.json"))
    args = p.parse_args()
    lmbdas = [float(x) for x in args.lmbdas.split(",")]
    names = args.names.split(",")
    config = _config(args)
    codec = Clric(config)
    engine = Engine(codec, make_mesh(), FitOptions(chunk_steps=100))
    lp = cached_lpips_params("alex")
    records, encode, originals = [], [], {}
    decoded = {f"clric λ={lm:g}": [] for lm in lmbdas}
    out_path = Path(args.output)
    cache = out_path.with_name(f"{out_path.stem}_cache")  # one .npz per finished image
    cache.mkdir(parents=True, exist_ok=True)
    settings = {key: getattr(args, key) for key in ("images", "preset", "n_itr", "lmbdas",
                                                     "n_candidates", "pixel_weight",
                                                     "autoencoder_dtype", "crop")}
    for k, name in enumerate(names):
        image = load_image(Path(args.images) / f"{name}.png")
        if args.crop:
            image = image[:args.crop, :args.crop]
        originals[name] = image
        done = cache / f"{name}.npz"
        if done.exists():
            with np.load(done) as z:
                saved = json.loads(str(z["meta"]))
                if saved.get("settings") != settings:
                    sys.exit(f"error: {done} was made with other settings "
                             f"({saved.get('settings')}); remove {cache} or pick another --output")
                for key in saved["decoded"]:
                    decoded.setdefault(key, []).append(z[key])
            records += saved["records"]
            encode.append(saved["encode"])
            print(f"{name}: loaded from {done}", flush=True)
            continue
        n_records, keys = len(records), []
        results, fit_s = _fit(codec, engine, image, lmbdas, seed=k)
        encode.append({"image": name, "fits": len(lmbdas), "fit_and_code_s": fit_s})
        ae = codec.autoencoder
        up = ae.decode(ae.encode(image), *image.shape[:2])
        records.append({"codec": "TAEF2 round trip (no compression)", "point": "ae", "image": name,
                        "bpp": float("nan"), "psnr_db": psnr_exact(up, image),
                        "lpips": float(lpips(up, image, lp))})
        for lm, r in zip(lmbdas, results, strict=True):
            t0 = time.perf_counter()
            out = codec.decode(r.data)
            dec_s = time.perf_counter() - t0
            assert np.array_equal(out, r.reconstruction), "decode differs from the encoder"
            bpp = 8.0 * len(r.data) / (image.shape[0] * image.shape[1])
            decoded[f"clric λ={lm:g}"].append(out)
            keys.append(f"clric λ={lm:g}")
            records.append({"codec": "CLRIC (TAEF2)", "point": f"{lm:g}", "image": name,
                            "bpp": bpp, "psnr_db": psnr_exact(out, image),
                            "lpips": float(lpips(out, image, lp)), "decode_s": dec_s,
                            "latent_mse": r.info["latent_mse"],
                            "network_bpp": r.info["network_bpp"]})
            for classic in ("jpeg", "webp"):
                dec, rate, q = _match(image, classic, bpp)
                decoded.setdefault(f"{classic} ~λ={lm:g}", []).append(dec)
                keys.append(f"{classic} ~λ={lm:g}")
                records.append({"codec": classic.upper() + " (Pillow, matched rate)",
                                "point": f"{lm:g}", "image": name, "bpp": rate, "quality": q,
                                "psnr_db": psnr_exact(dec, image),
                                "lpips": float(lpips(dec, image, lp))})
        meta = {"settings": settings, "decoded": keys, "records": records[n_records:],
                "encode": encode[-1]}
        tmp = cache / f"{name}.tmp.npz"
        np.savez_compressed(tmp, meta=json.dumps(meta, default=float),
                            **{key: decoded[key][-1] for key in keys})
        os.replace(tmp, done)
        print(f"{name}: fit and code {fit_s:.1f} s; " + ", ".join(
            f"{r['bpp']:.4f} bpp {r['psnr_db']:.2f} dB LPIPS {r['lpips']:.3f}"
            for r in records if r["image"] == name and r["codec"].startswith("CLRIC")),
            flush=True)
    if args.coolchic:
        records += _coolchic_records(args.coolchic, originals, lp, decoded, args.coolchic_label)
    if REFERENCE.exists() and not args.crop:  # published points are for whole images
        records += reference_records(REFERENCE, names, "Cool-chic 5.0.1 (published, hop)")
    fids = {}
    feats = None if args.no_fid else _fid_features()
    if feats is not None:
        ref = feats([originals[n] for n in names])
        fids = {key: fid(ref, feats(images)) for key, images in decoded.items()}
        fids["TAEF2 round trip"] = fid(ref, feats(
            [codec.autoencoder.decode(codec.autoencoder.encode(originals[n]), *originals[n].shape[:2])
             for n in names]))
    timing = {}
    if args.timing:
        image = originals[names[0]]
        single = []
        for _ in range(2):  # the first run compiles the B = 1 step
            t = 0.0
            for i, lm in enumerate(lmbdas):
                _, fit_s = _fit(codec, engine, image, [lm], seed=i)
                t += fit_s
            single.append(t)
        timing = {"one_at_a_time_fit_and_code_s_incl_compile": single[0],
                  "one_at_a_time_fit_and_code_s": single[1],
                  "batched_fit_and_code_s": [e["fit_and_code_s"] for e in encode]}
    codecs = sorted({r["codec"] for r in records})
    curves = [make_curve(records, c, names) for c in codecs]
    for metric in ("lpips", "psnr_db"):
        plot_rd([c for c in curves if c.bpp.size and np.all(np.isfinite(c.bpp))], metric,
                out_path.with_name(f"{out_path.stem}_{metric}.png"),
                dataset=f"{args.dataset} ({len(names)} images), TAEF2")
    summary = {c.codec: {"bpp": c.bpp.tolist(),
                         **{m: c.values[m].tolist() for m in ("psnr_db", "lpips")}}
               for c in curves}
    load = os.getloadavg()
    json.dump({"command": " ".join(sys.argv), "config": config.to_dict(),
               "mac_per_pixel": mac_per_pixel(codec.arch) / codec.pixels_per_position,
               "load_average": load, "machine": machine_facts(), "images": names, "lmbdas": lmbdas, "curves": summary,
               "patch_fid": fids, "encode": encode, "timing": timing, "records": records},
              open(out_path, "w"), indent=1, default=float)
    print(f"\n{'codec':40s} {'bpp':>8s} {'PSNR':>7s} {'LPIPS':>7s}")
    for c in curves:
        for i in range(len(c.bpp)):
            print(f"{c.codec:40s} {c.bpp[i]:8.4f} {c.values['psnr_db'][i]:7.2f} "
                  f"{c.values['lpips'][i]:7.4f}")
    for key, value in fids.items():
        print(f"patch FID {key}: {value:.1f}")
    if timing:
        print(json.dumps(timing))
    print(f"load average {load}")


if __name__ == "__main__":
    main()
