"""Training throughput of the hyperprior: steps/s and images/s per preset, on the local devices.

    python benchmarks/train_throughput.py [--presets tiny,paper] [--steps 5] [--batch 8]
        [--crop 256] [--out bench_out/train_throughput.json]

Times the jitted data-parallel training step of ``nlc_jax.train`` (compile excluded, input batch
already on device: the model's own speed). For several CPU devices, run it with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; on a GPU machine it uses the GPU.
Prints a table and writes JSON (with the CPU cores the process may use and the load average, since
forced CPU devices share those cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from nlc_jax.configs.hyperprior import get_config  # noqa: E402
from nlc_jax.train.loop import build_trainer  # noqa: E402


def measure(preset: str, steps: int, batch: int, crop: int, dtype: str) -> dict:
    config = get_config(preset)
    config.update(batch_size=batch, crop=crop, compute_dtype=dtype, num_steps=10**6)
    trainer = build_trainer(config)
    rng = np.random.default_rng(0)
    local = rng.integers(0, 256, (batch // jax.process_count(), crop, crop, 3), dtype=np.uint8)
    batch_array = trainer.put_batch(local)
    state = trainer.state
    t0 = time.perf_counter()
    state, metrics = trainer.step(state, batch_array)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = trainer.step(state, batch_array)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - t0) / steps
    return {"preset": preset, "n": config.model.n, "m": config.model.m, "batch": batch,
            "crop": crop, "dtype": dtype, "devices": jax.device_count(),
            "platform": jax.devices()[0].platform, "first_step_s": compile_s,
            "steps_per_s": 1.0 / seconds, "images_per_s": batch / seconds,
            "timed_steps": steps, "cpu_cores_allowed": len(os.sched_getaffinity(0)),
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny,paper")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", default="bench_out/train_throughput.json")
    args = parser.parse_args()
    rows = [measure(p, args.steps, args.batch, args.crop, args.dtype)
            for p in args.presets.split(",")]
    print(f"{'preset':9} {'N/M':>8} {'batch':>5} {'crop':>5} {'dtype':>8} {'dev':>4} "
          f"{'compile s':>9} {'steps/s':>8} {'images/s':>9}")
    for r in rows:
        print(f"{r['preset']:9} {r['n']:>4}/{r['m']:<3} {r['batch']:>5} {r['crop']:>5} "
              f"{r['dtype']:>8} {r['devices']:>2}{r['platform'][:2]} {r['first_step_s']:>9.1f} "
              f"{r['steps_per_s']:>8.3f} {r['images_per_s']:>9.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
