"""Roofline model of the batched COOL-CHIC step, from XLA's own cost analysis (no GPU needed).

    python benchmarks/roofline.py --presets fast,hop --batch_sizes 1,4 --size 512x768

For each preset and batch size ``B`` it compiles one vmapped main-phase optimisation step of
``nlc_jax.fit.Engine`` (``Engine.batched_step_fns``: loss, gradients, optimizer, NaN guard) for
``B`` fits of a Kodak-sized target on the CPU, and reads XLA's ``cost_analysis()`` (FLOPs,
bytes accessed) and the optimised HLO (the kernels one step launches: fusions, convolutions,
dots, custom calls, sorts, scatters…). It also lowers the same step for the ``cuda`` platform
(StableHLO, no GPU needed) to check that it lowers there and to count its convolutions/dots.

FLOPs and bytes grow linearly with ``B`` under ``vmap`` (checked on the measured sizes: the
JSON holds the per-fit slope and the fixed part); larger ``B`` are extrapolated from that
line, the kernel count does not grow with ``B``. On an H100 (SXM5 datasheet peaks, see
``nlc_jax.fit.throughput.DEVICE_PEAKS``) the step takes at least

* compute: FLOPs / 67 TFLOP/s (FP32 CUDA cores: the step's work is elementwise and small
  matmuls, not tensor-core shaped; the TF32 bound, /495 TFLOP/s, is in the JSON too),
* memory: bytes / 3.35 TB/s,
* launch: kernels × ``--launch_us`` (default 4 µs: a CUDA kernel launch plus the minimum time
  of a tiny kernel; XLA runs a ``while`` body kernel by kernel),

and the predicted step time is the largest. From it: image-steps/s, the ratio of batched to
one-at-a-time fits, and the Kodak-24 × 4 λ time of the full recipe (96 fits in the 512×768 and
768×512 buckets, candidate-weighted recipe steps, filler fits counted; compile and entropy
coding excluded). Caveats: the bytes come from the CPU compiler's fusion decisions (XLA:GPU
fuses at least as much, so this is an upper bound on traffic); XLA counts a convolution's or
dot's FLOPs exactly but elementwise ops as one FLOP each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.codecs.coolchic.arch import mac_per_pixel  # noqa: E402
from nlc_jax.configs import coolchic as coolchic_configs  # noqa: E402
from nlc_jax.fit import Engine  # noqa: E402
from nlc_jax.fit.throughput import DEVICE_PEAKS, phase_index, recipe_image_steps  # noqa: E402

# HLO instructions that launch no kernel of their own.
FREE_OPS = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "copy-start",
            "copy-done", "after-all", "partition-id", "replica-id", "opt-barrier"}
KODAK_BUCKETS = {(512, 768): 16 * 4, (768, 512): 8 * 4}  # fits of Kodak-24 × 4 λ per shape


def _cost(compiled) -> dict:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per program
        cost = cost[0]
    return {"flops": float(cost.get("flops", 0.0)),
            "bytes": float(cost.get("bytes accessed", 0.0)),
            "transcendentals": float(cost.get("transcendentals", 0.0))}


def hlo_kernels(hlo_text: str) -> Counter:
    """Opcodes of the instructions in the ENTRY computation of an optimised HLO module that
    launch work (fusions, convolutions, dots, custom calls, …): ``Counter(opcode → n)``."""
    ops: Counter = Counter()
    for line in _entry_lines(hlo_text):
        m = re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = [^=]*?\s([a-z][\w\-]*)\(", line)
        if m and m.group(1) not in FREE_OPS:
            ops[m.group(1)] += 1
    return ops


def _entry_lines(hlo_text: str):
    """The instruction lines of the ENTRY computation of an HLO module's text."""
    in_entry = False
    for line in hlo_text.splitlines():
        if line.startswith("ENTRY "):
            in_entry = True
        elif in_entry and line.startswith("}"):
            return
        elif in_entry:
            yield line


_BYTES = {"f32": 4, "s32": 4, "u32": 4, "f16": 2, "bf16": 2, "pred": 1, "s8": 1, "u8": 1,
          "f64": 8, "s64": 8, "u64": 8}


def top_writers(hlo_text: str, n: int = 12) -> list[dict]:
    """The ENTRY instructions that write the most bytes, grouped by the JAX operation they come
    from (``metadata op_name``, wrappers such as ``jit``/``vmap``/``jvp`` removed) and the
    source line: ``[{"op", "source", "bytes", "instructions"}]``, largest first."""
    groups: dict[tuple[str, str], list[int]] = {}
    for line in _entry_lines(hlo_text):
        m = re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = (.*?)\s([a-z][\w\-]*)\(", line)
        if not m or m.group(2) in FREE_OPS:
            continue
        size = sum(_BYTES.get(dt, 4) * math.prod(int(d) for d in dims.split(",") if d)
                   for dt, dims in re.findall(r"([a-z]+\d*)\[([\d,]*)\]", m.group(1)))
        name = re.search(r'op_name="([^"]*)"', line)
        src = re.search(r'source_file="([^"]*)" source_line=(\d+)', line)
        op = "/".join(x for x in (name.group(1) if name else m.group(2)).split("/")
                      if not re.match(r"(jit|vmap|jvp|transpose|pjit|checkpoint)\(", x))
        where = f"{Path(src.group(1)).name}:{src.group(2)}" if src else ""
        entry = groups.setdefault((op, where), [0, 0])
        entry[0] += size
        entry[1] += 1
    ranked = sorted(groups.items(), key=lambda kv: -kv[1][0])[:n]
    return [{"op": op, "source": where, "bytes": b, "instructions": k}
            for (op, where), (b, k) in ranked]


def fused_kinds(hlo_text: str) -> Counter:
    """What the fusions of an optimised CPU module hold: ``Counter`` of the opcodes that lead
    their fused computations (``convolution``, ``dot``, ``reduce``, … or ``elementwise``)."""
    kinds: Counter = Counter()
    for block in re.split(r"\n(?=%?[\w.\-]+ )", hlo_text):
        if not re.match(r"%?fused_computation|%?fusion", block.split(" ", 1)[0]):
            continue
        ops = set(re.findall(r" ([a-z][\w\-]*)\(", block))
        lead = next((k for k in ("convolution", "dot", "reduce", "scatter", "gather", "sort")
                     if k in ops), "elementwise")
        kinds[lead] += 1
    return kinds


def gpu_lowering(fn, args) -> dict:
    """Lower ``fn`` for ``cuda`` (StableHLO only; compiling needs a GPU)."""
    try:
        text = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    except Exception as e:  # noqa: BLE001 - report why it does not lower
        return {"lowers": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    return {"lowers": True, "convolutions": text.count("stablehlo.convolution"),
            "dot_generals": text.count("stablehlo.dot_general"),
            "while_loops": text.count("stablehlo.while"),
            "custom_calls": text.count("stablehlo.custom_call"), "lines": text.count("\n")}


def analyse(codec, shape: tuple[int, int], batch: int) -> dict:
    """Cost analysis of one main-phase step of ``batch`` fits of a ``shape`` target."""
    engine = Engine(codec)
    main = phase_index(engine)
    target = jax.ShapeDtypeStruct((batch, *shape, 3), jnp.float32)
    masks = jax.ShapeDtypeStruct((batch, *shape), jnp.float32)
    lmbdas = jax.ShapeDtypeStruct((batch,), jnp.float32)
    seeds = jax.ShapeDtypeStruct((batch,), jnp.uint32)
    state = engine.abstract_state(main, target, masks, lmbdas, seeds)
    step, _ = engine.batched_step_fns(main, (*shape, 3))
    args = (state, target, masks, lmbdas, jax.ShapeDtypeStruct((), jnp.float32))
    t0 = time.perf_counter()
    compiled = jax.jit(step).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    text = compiled.as_text()
    kernels = hlo_kernels(text)
    return {"batch": batch, "compile_s": compile_s, **_cost(compiled),
            "kernels": int(sum(kernels.values())), "kernel_ops": dict(kernels.most_common()),
            "fusion_kinds": dict(fused_kinds(text).most_common()),
            "written_bytes": sum(w["bytes"] for w in top_writers(text, 10 ** 6)),
            "top_writers": top_writers(text) if batch == 1 else None,
            "gpu_lowering": gpu_lowering(step, args) if batch == 1 else None}


def predict(per_fit: dict, fixed: dict, kernels: int, batch: int, peak, launch_s: float) -> dict:
    """Step-time bounds on ``peak`` for ``batch`` fits from the linear cost model."""
    flops = fixed["flops"] + per_fit["flops"] * batch
    nbytes = fixed["bytes"] + per_fit["bytes"] * batch
    compute = flops / (peak.fp32_tflops * 1e12)
    memory = nbytes / (peak.hbm_tb_s * 1e12)
    launch = kernels * launch_s
    step = max(compute, memory, launch)
    limit = {compute: "compute (FP32)", memory: "memory", launch: "kernel launches"}[step]
    return {"batch": batch, "flops": flops, "bytes": nbytes, "intensity_flop_per_byte":
            flops / nbytes if nbytes else None, "compute_s": compute,
            "tf32_compute_s": flops / (peak.tf32_tflops * 1e12), "memory_s": memory,
            "launch_s": launch, "step_s": step, "bound_by": limit,
            "image_steps_per_s": batch / step}


def kodak_time(rows: list[dict], recipe_steps: int, shape: tuple[int, int]) -> list[dict]:
    """Kodak-24 × 4 λ fit time per batch size (rates scaled from ``shape`` to each bucket)."""
    out = []
    for r in rows:
        b, total = r["batch"], 0.0
        for (h, w), n in KODAK_BUCKETS.items():
            rate = r["image_steps_per_s"] * shape[0] * shape[1] / (h * w)
            total += math.ceil(n / b) * b * recipe_steps / rate
        out.append({"batch": b, "seconds": total})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="fast,hop")
    ap.add_argument("--batch_sizes", default="1,4", help="compiled sizes (>= 2 of them)")
    ap.add_argument("--predict_batches", default="1,4,16,64,256")
    ap.add_argument("--size", default="512x768", help="HxW of the target")
    ap.add_argument("--device", default="H100", choices=sorted(DEVICE_PEAKS))
    ap.add_argument("--launch_us", type=float, default=4.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/roofline.json"))
    args = ap.parse_args()
    h, _, w = args.size.partition("x")
    shape = (int(h), int(w or h))
    batches = [int(b) for b in args.batch_sizes.split(",")]
    if len(batches) < 2:
        ap.error("--batch_sizes needs at least two sizes (the cost line's two points)")
    peak = DEVICE_PEAKS[args.device]
    report = {"device": args.device, "peak": {"fp32_tflops": peak.fp32_tflops,
                                               "tf32_tflops": peak.tf32_tflops,
                                               "hbm_tb_s": peak.hbm_tb_s,
                                               "source": peak.source},
              "launch_us": args.launch_us, "size": list(shape), "compiled_on":
              jax.local_devices()[0].device_kind, "jax": jax.__version__,
              "xla_flags": os.environ.get("XLA_FLAGS", ""), "presets": {}}
    for preset in args.presets.split(","):
        codec = registry.make(coolchic_configs.get_config(preset))
        measured = []
        for b in batches:
            m = analyse(codec, shape, b)
            measured.append(m)
            print(f"{preset} B={b}: {m['flops'] / 1e9:.2f} GFLOP, {m['bytes'] / 1e9:.2f} GB, "
                  f"{m['kernels']} kernels, compile {m['compile_s']:.0f} s", flush=True)
        lo, hi = measured[0], measured[-1]
        per_fit = {k: (hi[k] - lo[k]) / (hi["batch"] - lo["batch"]) for k in ("flops", "bytes")}
        fixed = {k: lo[k] - per_fit[k] * lo["batch"] for k in ("flops", "bytes")}
        rows = [predict(per_fit, fixed, hi["kernels"], int(b), peak, args.launch_us * 1e-6)
                for b in args.predict_batches.split(",")]
        base = rows[0]["image_steps_per_s"] if rows[0]["batch"] == 1 else None
        for r in rows:
            r["vs_batch1"] = None if base is None else r["image_steps_per_s"] / base
        steps = recipe_image_steps(Engine(codec))
        kodak = kodak_time(rows, steps, shape)
        macs = mac_per_pixel(codec.arch)
        report["presets"][preset] = {
            "mac_per_pixel": macs, "flops_per_pixel_step_6mac": 6 * macs,
            "xla_flops_per_pixel_step": per_fit["flops"] / (shape[0] * shape[1]),
            "measured": measured, "per_fit": per_fit, "fixed": fixed,
            "recipe_image_steps": steps, "predicted": rows, "kodak_24x4": kodak}
        print(f"{'B':>4} {'step ms':>8} {'compute':>8} {'memory':>8} {'launch':>8} "
              f"{'bound by':>16} {'img-steps/s':>11} {'vs B=1':>7} {'Kodak s':>8}")
        for r, k in zip(rows, kodak, strict=True):
            print(f"{r['batch']:>4} {r['step_s'] * 1e3:8.3f} {r['compute_s'] * 1e3:8.3f} "
                  f"{r['memory_s'] * 1e3:8.3f} {r['launch_s'] * 1e3:8.3f} {r['bound_by']:>16} "
                  f"{r['image_steps_per_s']:11.1f} {r['vs_batch1'] or 0:7.1f} "
                  f"{k['seconds']:8.0f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
