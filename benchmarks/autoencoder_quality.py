"""Round-trip PSNR of an autoencoder on Kodak (default: TAEF2 from ../shared/weights).

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/autoencoder_quality.py
    .venv/bin/python benchmarks/autoencoder_quality.py --model path/to/vae --images 'dir/*.png'

Per image: ``x`` (uint8 → [0, 1]) → ``encode`` → ``decode`` → clip, round to 8 bits → PSNR
against the original. For the TAE family it also reports the round trip through taesd's
8-bit latent format (``z / 6 + 0.5`` clamped to [0, 1] and rounded to 1/255), i.e. what a
TAE-latent PNG would hold. Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from nlc_jax.autoencoders import TAEConfig, load, pad_to_multiple
from nlc_jax.data.images import list_images, load_image
from nlc_jax.metrics.psnr import psnr_exact

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LATENT_MAGNITUDE = 3.0  # taesd's latent scaling to [0, 1]: z / (2·3) + 0.5


def to_u8(y: np.ndarray) -> np.ndarray:
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


def quantize_latent_8bit(z: np.ndarray) -> np.ndarray:
    q = np.round(np.clip(z / (2 * LATENT_MAGNITUDE) + 0.5, 0.0, 1.0) * 255.0) / 255.0
    return (q - 0.5) * 2 * LATENT_MAGNITUDE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="taef2", help="name or path for nlc_jax.autoencoders.load")
    ap.add_argument("--images", default=str(SHARED / "data" / "kodak"))
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                    "autoencoder_quality.json")
    args = ap.parse_args()
    fns, params = load(args.model)
    is_tae = isinstance(fns.config, TAEConfig)
    rows = []
    t0 = time.perf_counter()
    for path in list_images(args.images):
        img = load_image(path)
        h, w = img.shape[:2]
        x = pad_to_multiple(img[None].astype(np.float32) / 255.0, fns.factor)
        z = fns.encode(params, x)
        row = {"image": path.name,
               "psnr_db": psnr_exact(to_u8(np.asarray(fns.decode(params, z))[0, :h, :w]), img)}
        if is_tae:
            zq = quantize_latent_8bit(np.asarray(z))
            y8 = np.asarray(fns.decode(params, jax.numpy.asarray(zq)))[0, :h, :w]
            row["psnr_8bit_latent_db"] = psnr_exact(to_u8(y8), img)
        rows.append(row)
        print(f"{row['image']:14s} {row['psnr_db']:6.2f} dB"
              + (f"   8-bit latent {row['psnr_8bit_latent_db']:6.2f} dB" if is_tae else ""),
              flush=True)
    psnrs = np.array([r["psnr_db"] for r in rows])
    summary = {"model": args.model, "images": len(rows), "mean_psnr_db": float(psnrs.mean()),
               "min_psnr_db": float(psnrs.min()), "max_psnr_db": float(psnrs.max()),
               "seconds": time.perf_counter() - t0}
    if is_tae:
        summary["mean_psnr_8bit_latent_db"] = float(np.mean([r["psnr_8bit_latent_db"]
                                                              for r in rows]))
    print(json.dumps(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "per_image": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
