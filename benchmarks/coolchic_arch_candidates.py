"""Per-image decoder size (``arch_candidates``): which COOL-CHIC decoder wins on each crop and
what it buys over one fixed decoder, against WebP at the same rate.

    python benchmarks/coolchic_arch_candidates.py \
        --crops kodim20:320,0,576,256 kodim01:256,128,512,384 --lmbdas 1e-3 \
        --candidates fast,lop,mop,hop --preset fast \
        --output benchmarks/results/coolchic_arch_candidates

Every crop is fitted with every candidate decoder (the ``preset``'s recipe and λ) in one
``encode_images`` run, which keeps per fit the file of lowest ``MSE + λ·bpp``; each kept file is
decoded and checked equal to the encoder's reconstruction. The table gives the winner, its bpp
and PSNR, WebP's PSNR at that bpp (Pillow, interpolated between qualities), and each
candidate's ``MSE + λ·bpp`` relative to the winner's. Writes ``<output>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import nlc_jax  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.demo import webp_psnr_at  # noqa: E402
from nlc_jax.fit.pipeline import EncodeSettings, encode_images, output_name  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def crop(spec: str) -> tuple[str, np.ndarray]:
    """``"kodimNN:left,top,right,bottom"`` → (name, ``[h, w, 3]`` uint8 crop of that Kodak
    image)."""
    image, box = spec.split(":")
    left, top, right, bottom = (int(v) for v in box.split(","))
    with Image.open(KODAK / f"{image}.png") as im:
        return f"{image}_{left}_{top}", np.asarray(im.convert("RGB").crop((left, top, right,
                                                                          bottom)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crops", nargs="+", default=["kodim20:320,0,576,256",
                                                  "kodim01:256,128,512,384"])
    p.add_argument("--lmbdas", default="1e-3")
    p.add_argument("--candidates", default="fast,lop,mop,hop")
    p.add_argument("--preset", default="fast", help="the recipe (and λ-independent settings)")
    p.add_argument("--output", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_arch_candidates")
    args = p.parse_args(argv)

    config = nlc_jax.load_config("coolchic", args.preset)
    config.arch_candidates = args.candidates
    codec = nlc_jax.make_codec(config)
    lmbdas = tuple(float(v) for v in args.lmbdas.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = {}
        for spec in args.crops:
            name, pixels = crop(spec)
            images[name] = pixels
            Image.fromarray(pixels).save(Path(tmp) / f"{name}.png")
        reconstructions = {}
        settings = EncodeSettings(lmbdas=lmbdas, checkpoint_every_s=None, progress=False)
        t0 = time.perf_counter()
        outcome = encode_images(codec, open_inputs(tmp), Path(tmp) / "out", settings,
                                on_result=lambda n, r: reconstructions.__setitem__(n, r))
        seconds = time.perf_counter() - t0
        if outcome.errors:
            raise SystemExit("coolchic_arch_candidates: " + "; ".join(outcome.errors))
        for row in outcome.rows:
            file_name = output_name(row["image"], row["lmbda"], len(lmbdas) > 1)
            costs = outcome.candidate_costs[file_name]
            decoded = nlc_jax.decode((Path(tmp) / "out" / file_name).read_bytes())
            exact = bool(np.array_equal(decoded, reconstructions[file_name].reconstruction))
            winner = min(costs, key=costs.get)
            rows.append({"image": row["image"], "lmbda": row["lmbda"], "winner": winner,
                         "bpp": row["bpp"], "psnr_db": row["psnr_db"],
                         "webp_psnr_db": webp_psnr_at(images[row["image"]], row["bpp"]),
                         "bit_exact": exact, "cost": costs, "cost_vs_winner_pct": {
                             k: 100.0 * (v / costs[winner] - 1.0) for k, v in costs.items()}})
    wins = {c: sum(r["winner"] == c for r in rows) for c in args.candidates.split(",")}
    result = {"preset": args.preset, "candidates": args.candidates, "lmbdas": list(lmbdas),
              "crops": args.crops, "rows": rows, "wins": wins, "encode_s": seconds,
              "machine": machine_facts()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=2))

    names = args.candidates.split(",")
    print(f"{'crop':<18}{'λ':>8} {'winner':>7}{'bpp':>8}{'PSNR':>8}{'WebP':>8}  exact  "
          + "".join(f"{n:>8}" for n in names) + "   (cost vs winner, %)")
    for r in rows:
        print(f"{r['image']:<18}{r['lmbda']:>8g} {r['winner']:>7}{r['bpp']:8.3f}"
              f"{r['psnr_db']:8.2f}{r['webp_psnr_db']:8.2f}  "
              f"{'yes' if r['bit_exact'] else 'NO':>5}  "
              + "".join(f"{r['cost_vs_winner_pct'].get(n, float('nan')):+8.1f}" for n in names))
    print(f"wins: {wins}; {seconds:.0f} s")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
