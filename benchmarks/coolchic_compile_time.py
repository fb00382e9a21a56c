"""XLA compile time against step time of the batched engine's chunk, under several XLA flag sets.

    python benchmarks/coolchic_compile_time.py [--preset fast] [--image samples/kodim01_256.png]
        [--batch 3] [--steps 20] [--flags default,no_expensive,opt0]
        [--output benchmarks/results/coolchic_compile_time.json]

For each flag set, a fresh process (XLA reads its flags once) builds the engine of ``--preset``,
compiles the first phase's chunk (``--batch`` copies of ``--image``, all candidates), runs
``--steps`` steps untimed, then ``--steps`` timed (``nlc_jax.fit.throughput.time_main_chunk``). Times are CPU seconds of the process
(``time.process_time``), so another job on the machine does not inflate them; run pinned to one
core (``taskset -c 1``) to compare with one-core numbers. Prints a table and writes JSON. This
is what explains a short run such as ``make demo``: its wall time is mostly compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG_SETS = {
    "default": "",
    "no_expensive": "--xla_llvm_disable_expensive_passes=true",
    "opt0": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
}


def probe(preset: str, image: Path, batch: int, steps: int) -> dict:
    """Compile and step CPU times of the first phase's chunk in this process
    (``nlc_jax.fit.throughput.time_main_chunk``)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import nlc_jax
    from nlc_jax.data.images import load_image
    from nlc_jax.fit.throughput import time_main_chunk

    codec = nlc_jax.make_codec(nlc_jax.load_config("coolchic", preset))
    first = codec.recipe()[0].name
    run = time_main_chunk(codec, load_image(image), batch, steps, phase=first, count_ops=True)
    return {"phase": first, "compile_cpu_s": run["compile_cpu_s"],
            "step_cpu_s": run["cpu_seconds"] / steps, "stablehlo_ops": run["stablehlo_ops"],
            "candidates": run["candidates"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--image", type=Path, default=ROOT / "samples/kodim01_256.png")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--flags", default=",".join(FLAG_SETS))
    p.add_argument("--output", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_compile_time.json")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # child process
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.preset, args.image, args.batch, args.steps)))
        return 0

    from nlc_jax.machine import machine_facts

    rows = []
    for name in args.flags.split(","):
        if name not in FLAG_SETS:
            raise SystemExit(f"coolchic_compile_time: unknown flag set {name!r} "
                             f"(one of {', '.join(FLAG_SETS)})")
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                                          f"{FLAG_SETS[name]}".strip()}
        out = subprocess.run([sys.executable, __file__, "--probe", "--preset", args.preset,
                              "--image", str(args.image), "--batch", str(args.batch),
                              "--steps", str(args.steps)], env=env, capture_output=True,
                             text=True, check=False)
        if out.returncode:
            raise SystemExit(f"coolchic_compile_time: the {name} probe failed: "
                             f"{out.stderr.strip().splitlines()[-1:]}")
        rows.append({"flags": name, "xla_flags": FLAG_SETS[name],
                     **json.loads(out.stdout.strip().splitlines()[-1])})
        r = rows[-1]
        print(f"{name:<14} compile {r['compile_cpu_s']:7.1f} s   step {r['step_cpu_s']:.3f} s "
              f"({args.batch} fits × {r['candidates']} candidates, {r['stablehlo_ops']} ops)",
              flush=True)
    args.output.write_text(json.dumps({"preset": args.preset, "image": str(args.image),
                                       "batch": args.batch, "steps": args.steps, "rows": rows,
                                       "machine": machine_facts()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
