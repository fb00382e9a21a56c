"""XLA compile time against step time of the batched engine's chunks, under several XLA settings.

    python benchmarks/coolchic_compile_time.py [--preset fast] [--image samples/kodim01_256.png]
        [--batch 3] [--steps 20] [--flags xla_defaults,nlc_jax,no_expensive,opt0]
        [--phases warmup,main,final] [--output benchmarks/results/coolchic_compile_time.json]

For each setting (:data:`FLAG_SETS`: ``nlc_jax`` is the library's own CPU choice,
``nlc_jax.compilation.CPU_OPTIONS``; the others XLA's defaults plus XLA flags) and each phase, a
fresh process (XLA reads its flags once) builds the engine of ``--preset``, compiles that
phase's chunk (``--batch`` copies of ``--image``, all candidates of the phase), runs ``--steps``
steps untimed, then ``--steps`` timed (``nlc_jax.fit.throughput.time_main_chunk``). Times are
CPU seconds of the process (``time.process_time``), so another job on the machine does not
inflate them much; run pinned to one core (``taskset -c 1``) to compare with one-core numbers.
Prints a table (and the sum over phases per setting) and writes JSON. This is what explains a
short run such as ``make demo``: its wall time is mostly compilation of these chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name: environment of the probe process. "nlc_jax" is the library's own choice on CPU
# (nlc_jax.compilation.CPU_OPTIONS); the others keep XLA's defaults, with extra XLA flags.
FLAG_SETS = {
    "xla_defaults": {"NLC_JAX_XLA_DEFAULTS": "1"},
    "nlc_jax": {"NLC_JAX_XLA_DEFAULTS": "0"},
    "no_expensive": {"NLC_JAX_XLA_DEFAULTS": "1",
                     "XLA_FLAGS": "--xla_llvm_disable_expensive_passes=true"},
    "opt0": {"NLC_JAX_XLA_DEFAULTS": "1",
             "XLA_FLAGS": "--xla_backend_optimization_level=0 "
                          "--xla_llvm_disable_expensive_passes=true"},
}


def probe(preset: str, image: Path, batch: int, steps: int, phase: str) -> dict:
    """Compile and step CPU times of phase ``phase``'s chunk in this process
    (``nlc_jax.fit.throughput.time_main_chunk``)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import nlc_jax
    from nlc_jax.data.images import load_image
    from nlc_jax.fit.throughput import time_main_chunk

    codec = nlc_jax.make_codec(nlc_jax.load_config("coolchic", preset))
    run = time_main_chunk(codec, load_image(image), batch, steps, phase=phase, count_ops=True)
    return {"phase": phase, "compile_cpu_s": run["compile_cpu_s"],
            "step_cpu_s": run["cpu_seconds"] / steps, "stablehlo_ops": run["stablehlo_ops"],
            "candidates": run["candidates"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--image", type=Path, default=ROOT / "samples/kodim01_256.png")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--flags", default="xla_defaults,nlc_jax")
    p.add_argument("--phases", default="warmup,main,final",
                   help="recipe phases whose chunk is compiled (one process each)")
    p.add_argument("--output", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_compile_time.json")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # child process
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.preset, args.image, args.batch, args.steps, args.phases)))
        return 0

    from nlc_jax.machine import machine_facts

    rows = []
    for name in args.flags.split(","):
        if name not in FLAG_SETS:
            raise SystemExit(f"coolchic_compile_time: unknown flag set {name!r} "
                             f"(one of {', '.join(FLAG_SETS)})")
        env = {**os.environ, **FLAG_SETS[name]}
        for phase in args.phases.split(","):
            out = subprocess.run([sys.executable, __file__, "--probe", "--preset", args.preset,
                                  "--image", str(args.image), "--batch", str(args.batch),
                                  "--steps", str(args.steps), "--phases", phase], env=env,
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"coolchic_compile_time: the {name} probe of {phase} failed: "
                                 f"{out.stderr.strip().splitlines()[-1:]}")
            rows.append({"flags": name, "env": FLAG_SETS[name],
                         **json.loads(out.stdout.strip().splitlines()[-1])})
            r = rows[-1]
            print(f"{name:<14} {phase:<8} compile {r['compile_cpu_s']:7.1f} s   step "
                  f"{r['step_cpu_s']:.3f} s ({args.batch} fits × {r['candidates']} candidates, "
                  f"{r['stablehlo_ops']} ops)", flush=True)
    for name in args.flags.split(","):
        total = sum(r["compile_cpu_s"] for r in rows if r["flags"] == name)
        print(f"{name:<14} all      compile {total:7.1f} s", flush=True)
    args.output.write_text(json.dumps({"preset": args.preset, "image": str(args.image),
                                       "batch": args.batch, "steps": args.steps, "rows": rows,
                                       "machine": machine_facts()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
