"""Autoencoder throughput: encode and decode images/s for TAEF2 and a full-size SD-VAE.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/autoencoder_speed.py            # everything
    .venv/bin/python benchmarks/autoencoder_speed.py --models taef2 --repeats 5
    .venv/bin/python benchmarks/autoencoder_speed.py --large ../shared/data/clic/CLIC2020_3.png

Models: ``taef2`` (the real weights from ../shared/weights when present, else random) and
``sd`` (the SD 1.x/2.x/SDXL VAE architecture, 4-channel latents, ~84 M parameters, random
weights: speed does not depend on the values). Sizes are ``WxH``; dtypes float32 / bfloat16
(compute dtype; parameters stay float32). Each cell: ahead-of-time compilation (reported
separately), then the best of ``--repeats`` timed calls at batch 1 (the untimed encode that
produces the latent for the decoder is one more call). ``--large IMAGE`` instead runs one tiled round trip
(``encode_tiled`` → ``decode_tiled``) of a big image and reports time and peak memory (RSS).
Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import PRESETS, TAE_VARIANTS, load, make_sd_vae, make_tae, pad_to_multiple
from nlc_jax.autoencoders.sd_vae import AutoencoderKL
from nlc_jax.autoencoders.tae import TAEDecoder, TAEEncoder
from nlc_jax.metrics.psnr import psnr_exact

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent / "shared" / "weights"
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build(model: str, dtype, weights_dir: Path = WEIGHTS):
    """``(fns, params, source)`` for ``taef2`` (weights from ``weights_dir`` when there) or
    ``sd``."""
    if model == "taef2":
        if (weights_dir / "taef2_encoder.pth").is_file():
            fns, params = load("taef2", dtype=dtype, weights_dir=weights_dir)
            return fns, params, "shared weights"
        cfg = TAE_VARIANTS["taef2"]
        key = jax.random.PRNGKey(0)
        params = {"encoder": TAEEncoder(cfg).init(key, jnp.zeros((1, 64, 64, 3)))["params"],
                  "decoder": TAEDecoder(cfg).init(key, jnp.zeros((1, 8, 8, 32)))["params"]}
        return make_tae(cfg, dtype), params, "random"
    cfg = PRESETS[model]
    params = jax.jit(AutoencoderKL(cfg).init)(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    return make_sd_vae(cfg, dtype, model), params["params"], "random"


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def _compile(fn, *args):
    """Ahead-of-time compile ``fn`` for ``args``; returns (compiled, seconds)."""
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def bench_cell(fns, params, width: int, height: int, repeats: int) -> dict:
    x = jnp.asarray(np.random.default_rng(0).random((1, height, width, 3), np.float32))
    enc_fn, enc_compile = _compile(fns.encode, params, x)
    z = enc_fn(params, x)
    dec_fn, dec_compile = _compile(fns.decode, params, z)
    enc = min(_timed(enc_fn, params, x) for _ in range(repeats))
    dec = min(_timed(dec_fn, params, z) for _ in range(repeats))
    return {"encode_img_s": 1.0 / enc, "decode_img_s": 1.0 / dec, "encode_s": enc,
            "decode_s": dec, "compile_encode_s": enc_compile, "compile_decode_s": dec_compile}


def run_speed(args) -> dict:
    rows = []
    for model in args.models:
        for dt_name in args.dtypes:
            fns, params, source = build(model, DTYPES[dt_name])
            for size in args.sizes:
                w, h = (int(v) for v in size.split("x"))
                reps = args.repeats if model.startswith("tae") else args.sd_repeats
                cell = bench_cell(fns, params, w, h, reps)
                rows.append({"model": model, "weights": source, "dtype": dt_name, "size": size,
                             "repeats": reps, **cell})
                print(f"{model:6s} {dt_name:8s} {size:8s} encode {cell['encode_img_s']:7.3f} img/s "
                      f"({cell['encode_s']:.3f} s)  decode {cell['decode_img_s']:7.3f} img/s "
                      f"({cell['decode_s']:.3f} s)  compile {cell['compile_encode_s']:.1f} / "
                      f"{cell['compile_decode_s']:.1f} s", flush=True)
    return {"speed": rows}


def run_large(args) -> dict:
    from nlc_jax.data.images import load_image

    img = load_image(args.large)
    h, w = img.shape[:2]
    fns, params, source = build(args.models[0], DTYPES[args.dtypes[0]])
    x = pad_to_multiple(img[None].astype(np.float32) / 255.0, fns.factor)
    t = time.perf_counter()
    z = fns.encode_tiled(params, x, tile=args.tile, overlap=args.overlap)
    t_enc = time.perf_counter() - t
    y = fns.decode_tiled(params, z, tile=args.tile // fns.factor,
                         overlap=args.overlap // fns.factor)[:, :h, :w]
    t_dec = time.perf_counter() - t - t_enc
    rec = np.round(np.clip(y[0], 0, 1) * 255)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"model": args.models[0], "weights": source, "dtype": args.dtypes[0],
           "image": str(args.large), "height": h, "width": w, "tile": args.tile,
           "overlap": args.overlap, "encode_s": t_enc, "decode_s": t_dec,
           "psnr_db": psnr_exact(rec, img), "peak_rss_mb": peak_mb}
    print(f"{row['model']} {row['dtype']} tiled round trip of {w}x{h} (tile {args.tile}, "
          f"overlap {args.overlap}): encode {t_enc:.1f} s, decode {t_dec:.1f} s, "
          f"PSNR {row['psnr_db']:.2f} dB, peak RSS {peak_mb:.0f} MB")
    return {"large": row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="taef2,sd", type=lambda s: s.split(","))
    ap.add_argument("--sizes", default="512x512,768x512", type=lambda s: s.split(","))
    ap.add_argument("--dtypes", default="float32,bfloat16", type=lambda s: s.split(","))
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per TAE cell")
    ap.add_argument("--sd-repeats", type=int, default=1, help="timed calls per SD-VAE cell")
    ap.add_argument("--large", type=Path, help="run one tiled round trip of this image instead")
    ap.add_argument("--tile", type=int, default=512, help="--large: tile side in pixels")
    ap.add_argument("--overlap", type=int, default=64, help="--large: tile overlap in pixels")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                    "autoencoder_speed.json")
    args = ap.parse_args()
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), {len(jax.devices())} device(s), "
          f"host {platform.machine()}")
    result = run_large(args) if args.large else run_speed(args)
    result["device"] = {"platform": device.platform, "kind": device.device_kind,
                        "jax": jax.__version__}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = args.json if not args.large else args.json.with_name(args.json.stem + "_large.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
