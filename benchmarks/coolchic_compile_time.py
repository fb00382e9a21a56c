"""XLA compile time against step time of the batched engine's chunk, under several XLA flag sets.

    python benchmarks/coolchic_compile_time.py [--preset fast] [--batch 3] [--size 256]
        [--steps 20] [--flags default,no_expensive,opt0]
        [--output benchmarks/results/coolchic_compile_time.json]

For each flag set, a fresh process (XLA reads its flags once) builds the engine of ``--preset``,
lowers and compiles the first phase's chunk (``--batch`` fits of ``--size``² random targets,
all candidates) and runs ``--steps`` steps. Times are CPU seconds of the process
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG_SETS = {
    "default": "",
    "no_expensive": "--xla_llvm_disable_expensive_passes=true",
    "opt0": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
}


def probe(preset: str, batch: int, size: int, steps: int) -> dict:
    """Compile and step times of phase 0's chunk in this process (CPU seconds)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    import nlc_jax
    from nlc_jax.fit.engine import Engine

    engine = Engine(nlc_jax.make_codec(nlc_jax.load_config("coolchic", preset)))
    rng = np.random.default_rng(0)
    targets = jnp.asarray(rng.random((batch, size, size, 3)), jnp.float32)
    masks = jnp.ones((batch, size, size), jnp.float32)
    lmbdas = jnp.full((batch,), 1e-3, jnp.float32)
    state = engine.init_state(0, targets, masks, lmbdas, np.arange(batch))
    lowered = engine._chunk_fn(0, (size, size, 3)).lower(state, targets, masks, lmbdas,
                                                         jnp.int32(0), jnp.int32(1))
    ops = lowered.as_text().count(" = stablehlo.")
    c0 = time.process_time()
    compiled = lowered.compile()
    compile_s = time.process_time() - c0
    state = compiled(state, targets, masks, lmbdas, jnp.int32(0), jnp.int32(2))
    jax.block_until_ready(state)
    c0 = time.process_time()
    state = compiled(state, targets, masks, lmbdas, jnp.int32(0), jnp.int32(steps))
    jax.block_until_ready(state)
    return {"compile_cpu_s": compile_s, "step_cpu_s": (time.process_time() - c0) / steps,
            "stablehlo_ops": ops, "candidates": engine.candidates_in_phase(0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--flags", default=",".join(FLAG_SETS))
    p.add_argument("--output", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_compile_time.json")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # child process
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.preset, args.batch, args.size, args.steps)))
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
                              "--batch", str(args.batch), "--size", str(args.size),
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
    args.output.write_text(json.dumps({"preset": args.preset, "batch": args.batch,
                                       "size": args.size, "steps": args.steps, "rows": rows,
                                       "machine": machine_facts()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
