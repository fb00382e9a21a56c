"""``make demo``: COOL-CHIC (``fast`` preset) on the sample images, against WebP at the same rate.

    python -m nlc_jax.demo --input samples --output demo_out [--preset fast] [--lmbda 0.001]

Fits every image with :func:`nlc_jax.encode` (batched by ``nlc_jax.fit``), writes
``<output>/<stem>.nlc``, decodes each file back from disk to ``<output>/<stem>.png`` and checks
that the decoded pixels equal the encoder's reconstruction (array comparison), and prints bpp,
PSNR, decode time and the PSNR of Pillow's WebP at the same bpp (interpolated between WebP
qualities).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import nlc_jax  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.data.images import ImageReadError, save_png  # noqa: E402
from nlc_jax.metrics.classic_codecs import encode_decode  # noqa: E402
from nlc_jax.metrics.psnr import psnr, psnr_exact  # noqa: E402


def webp_psnr_at(image: np.ndarray, bpp: float) -> float:
    """PSNR of Pillow's WebP at ``bpp``, interpolated between the bracketing qualities.

    NaN if ``bpp`` is outside WebP's range for this image.
    """
    pixels = image.shape[0] * image.shape[1]
    points = []
    for q in range(0, 101, 5):
        decoded, size = encode_decode(image, "webp", q)
        points.append((8.0 * size / pixels, float(psnr(image, decoded))))
    rates, quality = (np.array(v) for v in zip(*sorted(points), strict=True))
    if not rates[0] <= bpp <= rates[-1]:
        return float("nan")
    return float(np.interp(bpp, rates, quality))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="COOL-CHIC demo on a folder of images")
    parser.add_argument("--input", default="samples")
    parser.add_argument("--output", default="demo_out")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--lmbda", type=float, default=None)
    args = parser.parse_args(argv)

    config = nlc_jax.load_config("coolchic", args.preset)
    if args.lmbda is not None:
        config.lmbda = args.lmbda
    try:
        sources = open_inputs(args.input)
        images = [s.load() for s in sources]
    except ImageReadError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        results = nlc_jax.encode(images, config)
    except nlc_jax.FitDivergedError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    print(f"encoded {len(results)} image(s) with coolchic:{args.preset} (lambda "
          f"{config.lmbda:g}, {results[0].info['mac_per_pixel']:.0f} MAC/pixel) in "
          f"{time.perf_counter() - start:.0f} s")
    print(f"{'image':<16}{'bpp':>8}{'PSNR dB':>10}{'WebP dB':>10}{'decode s':>10}  bit-exact")
    mismatches = 0
    for source, image, result in zip(sources, images, results, strict=True):
        path = out / f"{source.name}.nlc"
        atomic_write_bytes(path, result.data)
        t0 = time.perf_counter()
        decoded = nlc_jax.decode(path.read_bytes())
        seconds = time.perf_counter() - t0
        save_png(out / f"{source.name}.png", decoded)
        exact = np.array_equal(decoded, result.reconstruction)
        mismatches += not exact
        bpp = 8.0 * len(result.data) / (image.shape[0] * image.shape[1])
        print(f"{source.name:<16}{bpp:8.3f}{psnr_exact(image, decoded):10.2f}"
              f"{webp_psnr_at(image, bpp):10.2f}{seconds:10.2f}  {'yes' if exact else 'NO'}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
