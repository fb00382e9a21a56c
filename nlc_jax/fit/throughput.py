"""Throughput of the batched engine: compile and time the main-phase chunk of ``B`` fits.

What ``benchmarks/fit_throughput.py`` and ``benchmarks/gpu_suite.py`` measure, in one place:
:func:`time_main_chunk` compiles :class:`~nlc_jax.fit.Engine`'s main-phase chunk for ``B``
copies of one target (or another phase's, e.g. a warm-up with all its candidates), runs one
untimed chunk of ``steps`` steps, then times one more and reports image-steps/s, images/hour for
the codec's full recipe, XLA's memory analysis per fit and the compile time (wall and CPU). :data:`DEVICE_PEAKS` holds the datasheet peaks the benchmarks compare against.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.base import OverfittedCodec
from nlc_jax.fit.engine import Engine, FitOptions


@dataclasses.dataclass(frozen=True)
class DevicePeak:
    """Datasheet peaks of one accelerator (dense, no sparsity)."""

    fp32_tflops: float     # FP32 on the CUDA cores (what float32 elementwise work gets)
    tf32_tflops: float     # TF32 tensor cores (float32 matmuls/convolutions at default precision)
    hbm_tb_s: float        # memory bandwidth
    source: str


# NVIDIA H100 / H200 datasheets (SXM5 form factor; H200 = H100 compute with HBM3e).
DEVICE_PEAKS = {
    "H100": DevicePeak(67.0, 494.7, 3.35, "NVIDIA H100 Tensor Core GPU datasheet, SXM5"),
    "H200": DevicePeak(67.0, 494.7, 4.8, "NVIDIA H200 Tensor Core GPU datasheet, SXM5"),
}


def device_peak(device_kind: str) -> DevicePeak | None:
    """The :data:`DEVICE_PEAKS` entry whose name appears in ``device_kind`` (e.g. ``"NVIDIA
    H100 80GB HBM3"``), or ``None``."""
    for name, peak in DEVICE_PEAKS.items():
        if name in device_kind.upper():
            return peak
    return None


def recipe_image_steps(engine: Engine) -> int:
    """Candidate-weighted optimisation steps of one fit's full recipe (all phases)."""
    return sum(p.steps * engine.candidates_in_phase(i) for i, p in enumerate(engine.phases))


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an XLA error is an allocation failure (the batch does not fit)."""
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def phase_index(engine: Engine, name: str = "main") -> int:
    """Index of the recipe's phase ``name`` (default ``main``, the one that holds most steps);
    ``ValueError`` naming the recipe's phases if there is none."""
    index = next((i for i, p in enumerate(engine.phases) if p.name == name), None)
    if index is None:
        raise ValueError(f"no phase {name!r} in the recipe "
                         f"({', '.join(p.name for p in engine.phases)})")
    return index


def batch_inputs(engine: Engine, target: np.ndarray, batch: int,
                 lmbda: float = 1e-3) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``B`` copies of ``target`` ``[H, W, C]`` on the engine's devices: targets ``[B, H, W, C]``,
    masks ``[B, H, W]`` (all valid), lmbdas ``[B]`` and seeds ``[B]`` (``0 … B-1``)."""
    return (engine.put(np.stack([target] * batch).astype(np.float32)),
            engine.put(np.ones((batch, *target.shape[:2]), np.float32)),
            engine.put(np.full((batch,), lmbda, np.float32)),
            engine.put(np.arange(batch, dtype=np.uint32)))


def time_main_chunk(codec: OverfittedCodec, image: np.ndarray, batch: int, steps: int,
                    mesh=None, batch_mode: str = "vmap", phase: str = "main",
                    count_ops: bool = False) -> dict:
    """Compile and time ``steps`` steps of phase ``phase`` (default the main phase) of ``batch``
    fits of ``image`` ``[H, W, 3]`` uint8 (one fit per copy, all candidates of that phase).

    Returns a JSON-ready dict: ``batch``, ``steps``, ``candidates`` (per fit in that phase),
    ``seconds`` (the timed chunk), ``compile_s``, ``compile_cpu_s`` and ``cpu_seconds`` (this
    process's CPU time, which another job on the machine does not inflate),
    ``image_steps_per_s`` (``batch × steps / seconds``), ``images_per_hour`` (fits of the full
    recipe per hour at that rate), ``memory_per_fit_mib`` (XLA's arguments + temporaries +
    outputs − aliased, per fit; ``None`` where the backend gives no analysis) and, with
    ``count_ops``, ``stablehlo_ops`` (operations of the lowered chunk).

    Raises:
      jax.errors.JaxRuntimeError: e.g. out of memory (see :func:`is_out_of_memory`).
    """
    engine = Engine(codec, mesh, FitOptions(chunk_steps=steps, batch_mode=batch_mode))
    index = phase_index(engine, phase)
    target = np.asarray(codec.prepare_target(image), np.float32)
    targets, masks, lmbdas, seeds = batch_inputs(engine, target, batch)
    state = engine.init_state(index, targets, masks, lmbdas, seeds)
    fn = engine._chunk_fn(index, tuple(target.shape))
    args = (targets, masks, lmbdas, jnp.int32(0), jnp.int32(steps))
    lowered = fn.lower(state, *args)
    ops = {"stablehlo_ops": lowered.as_text().count(" = stablehlo.")} if count_ops else {}
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    mem = compiled.memory_analysis()
    mem_bytes = None
    if mem is not None:
        mem_bytes = (mem.argument_size_in_bytes + mem.temp_size_in_bytes
                     + mem.output_size_in_bytes - mem.alias_size_in_bytes)
    state = compiled(state, *args)  # warm-up
    jax.block_until_ready(state)
    t0, c0 = time.perf_counter(), time.process_time()
    state = compiled(state, *args)
    jax.block_until_ready(state)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    image_steps = batch * steps / seconds
    return {"batch": batch, "steps": steps, "candidates": engine.candidates_in_phase(index),
            "seconds": seconds, "compile_s": compile_s, "compile_cpu_s": compile_cpu_s,
            "cpu_seconds": cpu_seconds, **ops, "image_steps_per_s": image_steps,
            "images_per_hour": image_steps * 3600.0 / recipe_image_steps(engine),
            "memory_per_fit_mib": None if mem_bytes is None else mem_bytes / batch / 2 ** 20}
