"""Throughput of the batched fitting engine vs one-at-a-time fits (COOL-CHIC presets).

    python benchmarks/fit_throughput.py --presets fast,hop --batch_sizes 1,2,4,8 --size 256

For each preset and batch size ``B`` it compiles the main-phase chunk of ``nlc_jax.fit.Engine``
for ``B`` crops of a Kodak image (``--image``), times ``--steps`` optimisation steps after a
warm-up call, and reports:

* image-steps/s (``B × steps / s``) and images/hour for the preset's full recipe (its steps
  weighted by the candidates alive in each phase);
* speed-up over a Python loop of single fits (``B = 1`` run ``B`` times: same compiled code);
* memory per fit: XLA's compiled memory analysis (arguments + temporaries) / ``B``;
* MAC/pixel of the decoder and achieved FLOP/s (≈ 3 × 2 × MAC/pixel × pixels per image-step),
  against ``--peak_tflops`` when given.

Batch sizes stop at the first that runs out of memory. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.codecs.coolchic.arch import Arch, mac_per_pixel  # noqa: E402
from nlc_jax.configs import coolchic as coolchic_configs  # noqa: E402
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.fit import make_mesh  # noqa: E402
from nlc_jax.fit.throughput import is_out_of_memory, time_main_chunk  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="fast,hop")
    ap.add_argument("--batch_sizes", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--size", default="256", help="crop side, or HxW (e.g. 512x768)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    ap.add_argument("--image", default=str(ROOT.parent / "shared/data/kodak/kodim01.png"))
    ap.add_argument("--batch_mode", default="vmap", choices=("vmap", "map"))
    ap.add_argument("--peak_tflops", type=float, default=None, help="device peak (FP32)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/fit_throughput.json"))
    args = ap.parse_args()

    h, _, w = args.size.partition("x")
    h, w = int(h), int(w or h)
    path = Path(args.image)
    image = load_image(path if path.exists() else ROOT / "samples/kodim15_256.png")
    image = np.pad(image, ((0, max(0, h - image.shape[0])), (0, max(0, w - image.shape[1])),
                           (0, 0)), mode="reflect")[:h, :w]
    mesh = make_mesh()
    device = f"{jax.local_devices()[0].device_kind} x{len(jax.local_devices())}"
    results = {"device": device, "host": platform.node(), "size": [h, w],
               "batch_mode": args.batch_mode, "runs": []}
    print(f"device: {device}; crop {h}x{w}; {args.steps} timed steps per point; "
          f"batch_mode={args.batch_mode}")
    header = (f"{'preset':6} {'B':>4} {'img-steps/s':>12} {'images/h':>10} {'vs loop':>8} "
              f"{'MiB/fit':>8} {'GFLOP/s':>9} {'compile s':>9}")
    print(header)
    print("-" * len(header))
    for preset in args.presets.split(","):
        config = coolchic_configs.get_config(preset)
        codec = registry.make(config)
        macs = mac_per_pixel(Arch.from_config(config.model))
        single = None
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            if batch % mesh.size:
                continue
            try:
                run = time_main_chunk(codec, image, batch, args.steps, mesh, args.batch_mode)
            except Exception as e:  # XlaRuntimeError RESOURCE_EXHAUSTED: stop growing
                if is_out_of_memory(e):
                    print(f"{preset:6} {batch:>4} out of memory")
                    break
                raise
            single = single or run["image_steps_per_s"]
            flops = 3 * 2 * macs * h * w * run["image_steps_per_s"]
            run.update(preset=preset, mac_per_pixel=macs, speedup_vs_loop=
                       run["image_steps_per_s"] / single, achieved_gflops=flops / 1e9,
                       peak_fraction=None if args.peak_tflops is None else
                       flops / (args.peak_tflops * 1e12))
            results["runs"].append(run)
            mem = run["memory_per_fit_mib"]
            print(f"{preset:6} {batch:>4} {run['image_steps_per_s']:12.2f} "
                  f"{run['images_per_hour']:10.2f} {run['speedup_vs_loop']:8.2f} "
                  f"{'n/a' if mem is None else f'{mem:.1f}':>8} {flops / 1e9:9.2f} "
                  f"{run['compile_s']:9.1f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
