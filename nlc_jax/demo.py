"""``make demo``: COOL-CHIC (``fast`` preset) on the sample images, against WebP at the same rate.

    python -m nlc_jax.demo --input samples --output demo_out [--preset fast] [--lmbda 0.001]

Fits every image with the batched engine (``nlc_jax.fit.encode_images``, what ``nlc-encode``
runs), writes ``<output>/<stem>.nlc`` and ``results.tsv``, decodes each file back from disk with
:func:`nlc_jax.decode` to ``<output>/<stem>.png``, checks that the decoded pixels equal the
encoder's reconstruction (array comparison), and prints bpp, PSNR, decode time and the PSNR of
Pillow's WebP at the same bpp (interpolated between WebP qualities).
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
from nlc_jax.compilation import use_persistent_cache  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.images import ImageReadError, save_png  # noqa: E402
from nlc_jax.fit.pipeline import EncodeSettings, encode_images  # noqa: E402
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

    use_persistent_cache()  # a second demo loads its compiled programs (~/.cache/nlc_jax/xla)
    config = nlc_jax.load_config("coolchic", args.preset)
    if args.lmbda is not None:
        config.lmbda = args.lmbda
    try:
        sources = open_inputs(args.input)
    except ImageReadError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    out = Path(args.output)
    reconstructions = {}  # file name -> the encoder's reconstruction

    def keep(name: str, result) -> None:
        reconstructions[name] = result.reconstruction

    settings = EncodeSettings(lmbdas=(float(config.lmbda),), checkpoint_every_s=None)
    start = time.perf_counter()
    outcome = encode_images(nlc_jax.make_codec(config), sources, out, settings, on_result=keep)
    rows = outcome.rows
    if not rows:
        print("demo: nothing was encoded", file=sys.stderr)
        return 1
    print(f"encoded {len(rows)} image(s) with coolchic:{args.preset} (lambda {config.lmbda:g}, "
          f"{rows[0]['mac_per_pixel']:.0f} MAC/pixel) in {time.perf_counter() - start:.0f} s")
    print(f"{'image':<16}{'bpp':>8}{'PSNR dB':>10}{'WebP dB':>10}{'decode s':>10}  bit-exact")
    by_name = {s.name: s for s in sources}
    mismatches = 0
    for row in rows:
        name = f"{row['image']}.nlc"
        t0 = time.perf_counter()
        decoded = nlc_jax.decode((out / name).read_bytes())
        seconds = time.perf_counter() - t0
        save_png(out / f"{row['image']}.png", decoded)
        exact = np.array_equal(decoded, reconstructions[name])
        mismatches += not exact
        image = by_name[row["image"]].load()
        print(f"{row['image']:<16}{row['bpp']:8.3f}{psnr_exact(image, decoded):10.2f}"
              f"{webp_psnr_at(image, row['bpp']):10.2f}{seconds:10.2f}  {'yes' if exact else 'NO'}")
    return 1 if outcome.errors or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
