"""Noise-to-Latent: how much the noise seed matters, and what a K-seed search buys.

    python benchmarks/noise2latent_seeds.py --image ../shared/data/kodak/kodim01.png \\
        --crop 128 --n_itr 600 --lmbda 0.001 --seeds 4 \\
        [--output benchmarks/results/noise2latent_seeds.json]

Two batched fits of the same crop (``nlc_jax.fit.fit_batch``):

* ``--seeds`` fits with one candidate each and different seeds (one vmapped batch): the spread
  of their final rate–distortion loss, bpp and PSNR is the seed sensitivity;
* one fit with ``--seeds`` candidates (the engine's warm-up keeps the best 2, then the best 1):
  the seed search.

Every result is coded to a real file (bpp = file size) and decoded; prints a table and writes
JSON.
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from noise2latent_rd import centre_crop  # noqa: E402

from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.config_files import load_config  # noqa: E402
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.fit import fit_batch  # noqa: E402
from nlc_jax.metrics.psnr import psnr_exact  # noqa: E402


def code(codec, fit, index: int, image: np.ndarray, lmbda: float) -> dict:
    """Finalize fit ``index`` of a batch, decode the file → its numbers."""
    params = jax.tree.map(lambda x: x[index], fit.params)
    result = codec.finalize(params, codec.prepare_target(image), image, lmbda)
    decoded = registry.decode_bytes(result.data)
    assert np.array_equal(decoded, result.reconstruction)
    h, w = image.shape[:2]
    mse = 10 ** (-psnr_exact(image, decoded) / 10)  # on [0, 1], as in the loss
    bpp = 8.0 * len(result.data) / (h * w)
    return {"seed": int(result.info["seed"]), "bpp": bpp, "psnr_db": psnr_exact(image, decoded),
            "loss": mse + lmbda * bpp, "eval_loss": float(fit.eval_loss[index])}


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
    h, w = image.shape[:2]
    runs = {}
    for name, (fits, candidates) in {"one_seed_each": (args.seeds, 1),
                                     "seed_search": (1, args.seeds)}.items():
        config = load_config("noise2latent", args.preset)
        config.recipe.n_itr, config.recipe.n_candidates = args.n_itr, candidates
        codec = registry.make(config)
        target = codec.prepare_target(image)
        t0 = time.perf_counter()
        fit = fit_batch(codec, np.repeat(target[None], fits, 0), np.ones((fits, h, w), np.float32),
                        np.full(fits, args.lmbda, np.float32), np.arange(fits) * 7919 + 1)
        runs[name] = {"fit_s": time.perf_counter() - t0,
                      "fits": [code(codec, fit, i, image, args.lmbda) for i in range(fits)]}
    spread = runs["one_seed_each"]["fits"]
    losses = np.array([f["loss"] for f in spread])
    summary = {"image": Path(args.image).stem, "crop": args.crop, "preset": args.preset,
               "n_itr": args.n_itr, "lmbda": args.lmbda, "runs": runs,
               "single_seed_loss_mean": float(losses.mean()),
               "single_seed_loss_rel_spread": float((losses.max() - losses.min()) / losses.mean()),
               "psnr_db_range": [min(f["psnr_db"] for f in spread),
                                 max(f["psnr_db"] for f in spread)],
               "bpp_range": [min(f["bpp"] for f in spread), max(f["bpp"] for f in spread)],
               "seed_search_loss": runs["seed_search"]["fits"][0]["loss"]}
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
