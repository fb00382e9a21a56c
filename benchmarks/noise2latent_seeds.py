"""Noise-to-Latent: how much the noise seed matters, and what a K-seed search buys.

    python benchmarks/noise2latent_seeds.py --image ../shared/data/kodak/kodim01.png \\
        --crop 128 --n_itr 600 --lmbda 0.001 --seeds 4 \\
        [--output benchmarks/results/noise2latent_seeds.json]

Two batched fits of the same crop (``nlc_jax.fit.coding.code_batch``):

* ``--seeds`` fits with one candidate each and different seeds (one vmapped batch): the spread
  of their final rate–distortion loss, bpp and PSNR is the seed sensitivity;
* one fit with ``--seeds`` candidates (the engine's warm-up keeps the best 2, then the best 1):
  the seed search.

Every result is coded to a real file (bpp = file size) and decoded, and the decoded pixels are
checked against the encoder's reconstruction; prints a table and writes JSON (with the machine).
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

import nlc_jax  # noqa: E402
from nlc_jax.data.images import centre_crop, load_image  # noqa: E402
from nlc_jax.fit.coding import CodedFit, code_batch, rd_cost  # noqa: E402
from nlc_jax.fit.engine import Engine, make_mesh  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.psnr import psnr_exact  # noqa: E402


def numbers(coded: CodedFit, image: np.ndarray, lmbda: float) -> dict:
    """A coded fit's file, decoded and checked against the encoder → its numbers."""
    if coded.result is None:
        sys.exit(f"error: {coded.error}")
    decoded = nlc_jax.decode(coded.result.data)
    if not np.array_equal(decoded, coded.result.reconstruction):
        sys.exit("error: decoded pixels differ from the encoder's reconstruction")
    bpp = 8.0 * len(coded.result.data) / (image.shape[0] * image.shape[1])
    return {"seed": int(coded.result.info["seed"]), "bpp": bpp,
            "psnr_db": psnr_exact(image, decoded),
            "loss": rd_cost(coded.result.data, decoded, image, lmbda),
            "eval_loss": coded.eval_loss}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(ROOT.parent / "shared/data/kodak/kodim01.png"))
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--preset", default="fast")
    p.add_argument("--n_itr", type=int, default=600)
    p.add_argument("--lmbda", type=float, default=0.001)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--output", type=Path, default=Path("bench_out/noise2latent_seeds.json"))
    args = p.parse_args(argv)

    image = np.ascontiguousarray(centre_crop(load_image(Path(args.image)), args.crop))
    runs = {}
    for name, (fits, candidates) in {"one_seed_each": (args.seeds, 1),
                                     "seed_search": (1, args.seeds)}.items():
        config = nlc_jax.load_config("noise2latent", args.preset)
        config.recipe.n_itr, config.recipe.n_candidates = args.n_itr, candidates
        codec = nlc_jax.make_codec(config)
        t0 = time.perf_counter()
        coded = code_batch([codec], [Engine(codec, make_mesh())], [image] * fits,
                           [args.lmbda] * fits, [int(k) * 7919 + 1 for k in range(fits)])
        runs[name] = {"fit_and_code_s": time.perf_counter() - t0,
                      "fits": [numbers(c, image, args.lmbda) for c in coded]}
    spread = runs["one_seed_each"]["fits"]
    losses = np.array([f["loss"] for f in spread])
    summary = {"image": Path(args.image).stem, "crop": args.crop, "preset": args.preset,
               "n_itr": args.n_itr, "lmbda": args.lmbda, "runs": runs,
               "single_seed_loss_mean": float(losses.mean()),
               "single_seed_loss_rel_spread": float((losses.max() - losses.min()) / losses.mean()),
               "psnr_db_range": [min(f["psnr_db"] for f in spread),
                                 max(f["psnr_db"] for f in spread)],
               "bpp_range": [min(f["bpp"] for f in spread), max(f["bpp"] for f in spread)],
               "seed_search_loss": runs["seed_search"]["fits"][0]["loss"],
               "machine": machine_facts()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2))
    print(f"{'run':<16}{'seed':>12}{'bpp':>8}{'PSNR':>8}{'loss':>11}")
    for name, run in runs.items():
        for f in run["fits"]:
            print(f"{name:<16}{f['seed']:>12}{f['bpp']:8.3f}{f['psnr_db']:8.2f}{f['loss']:11.6f}")
    print(f"single seeds: loss spread {100 * summary['single_seed_loss_rel_spread']:.1f} % of the "
          f"mean; seed search of {args.seeds}: loss {summary['seed_search_loss']:.6f} vs mean "
          f"{summary['single_seed_loss_mean']:.6f}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
