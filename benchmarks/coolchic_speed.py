"""COOL-CHIC speed on one image: training step (jit'd, after compile), finalize, decode.

    python benchmarks/coolchic_speed.py [--image ../shared/data/kodak/kodim01.png] \\
        [--preset hop] [--steps 10] [--fit_steps 0] [--output bench_out/coolchic_speed.json]

Times ``--steps`` training steps of the main phase (one fit, no vmap), then (``--fit_steps`` more
steps first, to get non-trivial latents) writes a file with ``finalize`` and decodes it
``--decodes`` times, reporting the best decode time (entropy decoding included) and checking the
decoded image equals the encoder's reconstruction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from nlc_jax.codecs.coolchic import CoolChic, mac_per_pixel  # noqa: E402
from nlc_jax.config_files import (
    apply_overrides,  # noqa: E402
    load_config,  # noqa: E402
)
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.fit.step_time import time_train_step  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    p.add_argument("--preset", default="hop")
    p.add_argument("--lmbda", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--fit_steps", type=int, default=0)
    p.add_argument("--decodes", type=int, default=3)
    p.add_argument("--output", type=Path, default=Path("bench_out/coolchic_speed.json"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. recipe.optimizer=adam (repeatable)")
    args = p.parse_args(argv)

    codec = CoolChic(apply_overrides(load_config("coolchic", args.preset), args.set))
    image = load_image(args.image)
    timing = time_train_step(codec, image, args.lmbda, args.steps, args.fit_steps)
    compile_s, step_s, params = timing.compile_s, timing.step_s, timing.params
    target = codec.prepare_target(image)

    t0 = time.perf_counter()
    result = codec.finalize(params, np.asarray(target), image, args.lmbda)
    finalize_s = time.perf_counter() - t0
    times = []
    for _ in range(args.decodes):
        t0 = time.perf_counter()
        decoded = codec.decode(result.data)
        times.append(time.perf_counter() - t0)
    exact = bool(np.array_equal(decoded, result.reconstruction))
    h, w = image.shape[:2]
    out = {"image": args.image, "size": [h, w], "preset": args.preset,
           "mac_per_pixel": mac_per_pixel(codec.arch), "compile_s": compile_s,
           "train_step_s": step_s, "finalize_s": finalize_s, "decode_s": min(times),
           "bpp": result.info["bpp"], "psnr_db": result.info["psnr_db"],
           "decode_bit_exact": exact, "devices": str(jax.devices())}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2))
    print(f"{args.preset} {w}x{h}: {out['mac_per_pixel']:.0f} MAC/px | compile {compile_s:.1f} s"
          f" | train step {step_s:.3f} s | finalize {finalize_s:.1f} s | decode {min(times):.2f} s"
          f" | {out['bpp']:.3f} bpp {out['psnr_db']:.2f} dB | bit-exact {exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
