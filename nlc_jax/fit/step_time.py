"""Time one training step of one fit (what speed comparisons with one-image tools measure)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nlc_jax import compilation
from nlc_jax.codecs.base import OverfittedCodec, Phase


@dataclasses.dataclass
class StepTiming:
    """Compile time, mean seconds per step and the parameters after the timed steps."""

    compile_s: float
    step_s: float
    params: Any


def time_train_step(codec: OverfittedCodec, image: np.ndarray, lmbda: float = 1e-3,
                    steps: int = 20, extra_steps: int = 0) -> StepTiming:
    """Jit one ``main``-phase step of one fit on ``image`` ``[H, W, 3]`` uint8, then time
    ``steps`` of them (after one untimed step) and run ``extra_steps`` more untimed ones."""
    target = jnp.asarray(codec.prepare_target(image))
    mask = jnp.ones(image.shape[:2], jnp.float32)
    lm = jnp.float32(lmbda)
    phase = Phase("main", max(steps + extra_steps + 1, 1))
    opt = codec.optimizer(phase)
    params = codec.init(jax.random.key(0), target.shape)
    state = opt.init(params)

    def step(params, state, i):
        def f(p):
            return codec.loss(p, target, mask, lm, phase, i / phase.steps,
                              jax.random.fold_in(jax.random.key(1), i))[0]
        loss, grads = jax.value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    t0 = time.perf_counter()
    compiled = compilation.jit(step).lower(params, state, 0).compile()
    compile_s = time.perf_counter() - t0
    params, state, loss = compiled(params, state, 0)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for i in range(steps):
        params, state, loss = compiled(params, state, i + 1)
    jax.block_until_ready(loss)
    step_s = (time.perf_counter() - t0) / max(steps, 1)
    for i in range(extra_steps):
        params, state, loss = compiled(params, state, steps + 1 + i)
    return StepTiming(compile_s, step_s, jax.device_get(params))
