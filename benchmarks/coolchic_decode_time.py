"""Decode time of COOL-CHIC ``.nlc`` files (entropy decoding included), best of ``--repeats``.

    python benchmarks/coolchic_decode_time.py out/kodim01.nlc [more.nlc ...] [--repeats 3] \\
        [--output bench_out/coolchic_decode_time.json]

For each file: the best wall time of ``CoolChic().decode(data)`` (bytes → uint8 pixels, in
process, after one warm-up decode) and of its two parts, ``decode_fit`` (container, networks,
range-decoded latents) and ``reconstruct`` (numpy upsampling + synthesis), with the load average
before and after. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from nlc_jax.bitstream.container import read_container  # noqa: E402
from nlc_jax.codecs.coolchic import CoolChic  # noqa: E402
from nlc_jax.codecs.coolchic.arch import mac_per_pixel  # noqa: E402
from nlc_jax.codecs.coolchic.codec import decode_fit, reconstruct  # noqa: E402


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure(path: Path, repeats: int) -> dict:
    data = path.read_bytes()
    codec = CoolChic()
    codec.decode(data)  # warm-up (imports, caches)
    load_before = os.getloadavg()[0]
    decode_s, pixels = _best(lambda: codec.decode(data), repeats)
    c = read_container(data)
    fit_s, (grids, nets, arch) = _best(lambda: decode_fit(c, c.height, c.width), repeats)
    synth_s, _ = _best(lambda: reconstruct(grids, nets, arch), repeats)
    return {"file": str(path), "bytes": len(data), "size": [c.height, c.width],
            "bpp": 8.0 * len(data) / (c.height * c.width), "mac_per_pixel": mac_per_pixel(arch),
            "decode_s": decode_s, "decode_fit_s": fit_s, "reconstruct_s": synth_s,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "shape_ok": list(pixels.shape) == [c.height, c.width, 3]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", type=Path, default=Path("bench_out/coolchic_decode_time.json"))
    args = p.parse_args(argv)
    rows = [measure(f, args.repeats) for f in args.files]
    print(f"{'file':<40} {'size':>9} {'bpp':>6} {'MAC/px':>7} {'decode s':>9} {'fit s':>7} "
          f"{'synth s':>8} {'load':>10}")
    for r in rows:
        print(f"{r['file'][-40:]:<40} {r['size'][1]}x{r['size'][0]:<5} {r['bpp']:>6.3f} "
              f"{r['mac_per_pixel']:>7.0f} {r['decode_s']:>9.3f} {r['decode_fit_s']:>7.3f} "
              f"{r['reconstruct_s']:>8.3f} {r['load_before']:>4.1f}→{r['load_after']:.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"cpus": os.cpu_count(), "results": rows}, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
