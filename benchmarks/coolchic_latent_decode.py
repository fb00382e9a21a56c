"""COOL-CHIC latent entropy decoding time on a Kodak-sized latent pyramid, per preset and layout.

    python benchmarks/coolchic_latent_decode.py [--height 512] [--width 768] [--repeats 2] \\
        [--tiles stripes,64x64,32x32] [--presets fast,hop] [--output bench_out]

Isolates the part of COOL-CHIC decoding that issue #4 found dominant: range decoding the 7
latent grids (1/1 … 1/64 of ``height × width``) with the integer ARM along the wavefronts of
``nlc_jax.codecs.coolchic.latent_coding`` for each layout in ``--tiles`` (``RxC`` tiles, or
``stripes``: the first header version's full-width 64-row stripes; default: the format's tile). The ARM
has each preset's context size and depth but random integer weights (no fit needed), and the
latents are Laplace(0, 0.7) integers, so the timing measures the coding machinery (per-wavefront
ARM call + coder call), not a trained model's rate. Prints a table and writes
``<output>/coolchic_latent_decode.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from nlc_jax.codecs.coolchic import latent_coding
from nlc_jax.codecs.coolchic.arm import IntArm
from nlc_jax.codecs.coolchic.latent_coding import parse_tile, tile_name
from nlc_jax.configs.coolchic import ARCHS
from nlc_jax.entropy.context import causal_offsets


def _random_arm(n: int, hidden: int, rng: np.random.Generator) -> dict:
    qarm = {f"h{i}": {"w": rng.integers(-40, 40, (n, n)), "b": rng.integers(-40, 40, n)}
            for i in range(hidden)}
    qarm["out"] = {"w": rng.integers(-40, 40, (n, 2)), "b": np.array([0, -300])}
    return qarm


def measure(preset: str, height: int, width: int, repeats: int, tile: tuple[int, int]) -> dict:
    context, hidden, _, _ = ARCHS[preset]
    offsets = causal_offsets(context)
    rng = np.random.default_rng(0)
    qarm, exps = _random_arm(len(offsets), hidden, rng), {"weight": 8, "bias": 8}
    shapes = [(height >> k, width >> k) for k in range(7)]
    grids = [np.rint(rng.laplace(0.0, 0.7, s)).astype(np.int32) for s in shapes]
    t0 = time.perf_counter()
    arm = IntArm(qarm, exps, hidden)
    data = latent_coding.encode_latents(grids, offsets, arm, tile=tile)
    t_enc = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = latent_coding.decode_latents(data, shapes, offsets, arm, tile=tile)
        best = min(best, time.perf_counter() - t0)
    assert all(np.array_equal(a, b) for a, b in zip(out, grids, strict=True)), "round trip"
    steps = latent_coding._Layout(shapes, offsets, tile).n_waves
    return {"preset": preset, "tile": tile_name(tile), "arm_context": context,
            "arm_hidden": hidden, "latents": int(sum(g.size for g in grids)),
            "wavefronts": steps, "bytes": len(data), "encode_s": t_enc, "decode_s": best,
            "decode_ms_per_wavefront": 1e3 * best / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tiles", default=tile_name(latent_coding.TILE))
    parser.add_argument("--presets", default=",".join(ARCHS))
    parser.add_argument("--output", default="bench_out")
    args = parser.parse_args()
    tiles = [parse_tile(t) for t in args.tiles.split(",")]
    load_before = os.getloadavg()[0]
    rows = [measure(p, args.height, args.width, args.repeats, t)
            for p in args.presets.split(",") for t in tiles]
    print(f"{'preset':<6} {'tile':>8} {'ctx':>4} {'hid':>4} {'latents':>8} {'waves':>6} "
          f"{'enc s':>7} {'dec s':>7} {'ms/wave':>8}")
    for r in rows:
        print(f"{r['preset']:<6} {r['tile']:>8} {r['arm_context']:>4} {r['arm_hidden']:>4} "
              f"{r['latents']:>8} {r['wavefronts']:>6} {r['encode_s']:>7.3f} "
              f"{r['decode_s']:>7.3f} {r['decode_ms_per_wavefront']:>8.3f}")
    meta = {"cpus": os.cpu_count(), "load_avg_1min_before": load_before,
            "load_avg_1min_after": os.getloadavg()[0],
            "image": f"{args.width}x{args.height}", "weights": "random integer ARM"}
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coolchic_latent_decode.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"load average {load_before:.1f} → {meta['load_avg_1min_after']:.1f} on "
          f"{meta['cpus']} CPUs; wrote {out / 'coolchic_latent_decode.json'}")


if __name__ == "__main__":
    main()
