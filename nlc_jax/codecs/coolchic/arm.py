"""Auto-regressive entropy model (ARM): float in training, integer fixed point for coding.

One MLP, shared by all latent grids, maps the ``n`` causal neighbours of a latent to the location
and log-scale of a Laplace: ``arm_hidden_layers`` residual ``Linear(n, n) + ReLU`` layers, then
``Linear(n, 2)``.

For the bitstream the ARM runs on integers so that encoder and decoder get the same coder
parameters on any machine: weights are integers ``q · 2^-k`` (power-of-two steps from
``param_coding``), activations carry ``ACT_BITS`` fractional bits, every layer's sums are exact
integers (held in float64 below 2^53, so BLAS summation order cannot change them), and rescaling is
a floor division by a power of two. The network outputs the location and the *log2* of the scale;
the fixed-point log2-scale is mapped to an entry of the coder's scale table by integer arithmetic,
and the fixed-point location is snapped by the coder (an exact operation), so no transcendental
function is involved in what the coder sees.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.entropy.coding import (
    SCALE_MAX_LOG2,
    SCALE_MIN_LOG2,
    SCALE_STEPS_PER_OCTAVE,
    SCALE_TABLE,
)

ACT_BITS = 8              # fractional bits of integer activations
ACT_LIMIT = 2.0 ** 26     # activations (in units of 2^-ACT_BITS) are clipped to ±ACT_LIMIT;
# with integer weights |q| <= 2^20 (param_coding.MAX_INT) and n <= 64 every sum stays below 2^53.
LOG2_SCALE_RANGE = (float(SCALE_MIN_LOG2), float(SCALE_MAX_LOG2))  # the coder's table range


def arm_float(ctx: jax.Array, arm: dict, n_hidden: int) -> tuple[jax.Array, jax.Array]:
    """Float ARM. ``ctx`` ``[..., n]`` → (loc ``[...]``, scale ``[...]``)."""
    h = ctx
    for i in range(n_hidden):
        p = arm[f"h{i}"]
        h = h + jax.nn.relu(h @ p["w"] + p["b"])
    out = h @ arm["out"]["w"] + arm["out"]["b"]
    return out[..., 0], jnp.exp2(jnp.clip(out[..., 1], *LOG2_SCALE_RANGE))


def _int_layer(a: np.ndarray, qw: np.ndarray, kw: int, qb: np.ndarray, kb: int) -> np.ndarray:
    """Exact ``floor((a · qw·2^-kw) + qb·2^-kb)`` in units of ``2^-ACT_BITS``; float64 integers."""
    acc = a @ np.asarray(qw, np.float64)                    # units 2^-(ACT_BITS + kw)
    acc += np.floor(np.asarray(qb, np.float64) * 2.0 ** (ACT_BITS + kw - kb))  # same units
    acc *= 2.0 ** -kw
    np.floor(acc, out=acc)
    np.minimum(acc, ACT_LIMIT, out=acc)
    return np.maximum(acc, -ACT_LIMIT, out=acc)


def arm_int(ctx: np.ndarray, qarm: dict, exps: dict, n_hidden: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Integer ARM.

    Args:
      ctx: ``[m, n]`` integer latents (any integer or float64 dtype holding integers).
      qarm: the ARM's integer weights (``{"h0": {"w", "b"}, …, "out": {"w", "b"}}``).
      exps: step exponents ``{"weight": kw, "bias": kb}`` (step = 2^-k).
      n_hidden: number of hidden layers.

    Returns:
      (loc ``[m]`` float64 on the fixed-point grid, scale ``[m]`` float64 entries of the coder's
      scale table), identical on every machine.
    """
    kw, kb = exps["weight"], exps["bias"]
    a = np.clip(np.asarray(ctx, np.float64) * 2.0 ** ACT_BITS, -ACT_LIMIT, ACT_LIMIT)
    for i in range(n_hidden):
        p = qarm[f"h{i}"]
        a = a + np.maximum(_int_layer(a, p["w"], kw, p["b"], kb), 0.0)
    out = _int_layer(a, qarm["out"]["w"], kw, qarm["out"]["b"], kb)
    # log2-scale in units of 2^-ACT_BITS → nearest table index (16 per octave), in integers.
    unit = 2 ** ACT_BITS // SCALE_STEPS_PER_OCTAVE
    idx = np.floor((out[:, 1] + unit // 2) / unit) - SCALE_MIN_LOG2 * SCALE_STEPS_PER_OCTAVE
    idx = np.clip(idx, 0, len(SCALE_TABLE) - 1).astype(np.int64)
    return out[:, 0] * 2.0 ** -ACT_BITS, SCALE_TABLE[idx]
