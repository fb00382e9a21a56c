"""Auto-regressive entropy model (ARM): float in training, integer fixed point for coding.

One MLP, shared by all latent grids, maps the ``n`` context values of a latent (causal neighbours,
then IFCE features) to the location and log2-scale of a Laplace: ``arm_hidden_layers`` residual
layers ``h ← relu(h + hW + b)``, then ``Linear(n, 2)``, plus with a stabiliser a parallel
``Linear(n, 2)`` of the context (Cool-chic 5's ARM). The log2-scale is offset by
:data:`LOG2_SCALE_SHIFT` so that a zero output means a small scale (cheap zero latents at init).

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
LOG2_SCALE_SHIFT = -5     # octaves added to the network's log2-scale output (integer: exact)


def arm_float(ctx: jax.Array, arm: dict, n_hidden: int) -> tuple[jax.Array, jax.Array]:
    """Float ARM. ``ctx`` ``[..., n]`` → (loc ``[...]``, scale ``[...]``).

    ``arm`` holds ``h<i>`` (hidden), ``out`` and optionally ``stab`` (stabiliser) layers.
    """
    h = ctx
    for i in range(n_hidden):
        p = arm[f"h{i}"]
        h = jax.nn.relu(h + h @ p["w"] + p["b"])
    out = h @ arm["out"]["w"] + arm["out"]["b"]
    if "stab" in arm:
        out = out + ctx @ arm["stab"]["w"] + arm["stab"]["b"]
    log2_scale = jnp.clip(out[..., 1] + LOG2_SCALE_SHIFT, *LOG2_SCALE_RANGE)
    return out[..., 0], jnp.exp2(log2_scale)


def layer_steps(exps: dict, name: str) -> dict:
    """Layer ``name``'s steps ``{"weight": kw, "bias": kb}`` from ``exps``: either those steps,
    shared by every layer, or one such dict per layer name."""
    return exps[name] if name in exps else exps


def int_layer_weights(q: dict, exps: dict) -> tuple[np.ndarray, np.ndarray]:
    """Integer layer ``{"w": [n, m], "b": [m]}`` with steps ``2^-k`` (``exps = {"weight": kw,
    "bias": kb}``) → the float64 pair ``(qw · 2^-kw, floor(qb · 2^(ACT_BITS+kw-kb)) · 2^-kw)``
    that :func:`int_layer` applies exactly (see :class:`IntArm`)."""
    kw, kb = exps["weight"], exps["bias"]
    w = np.asarray(q["w"], np.float64) * 2.0 ** -kw
    b = np.floor(np.asarray(q["b"], np.float64) * 2.0 ** (ACT_BITS + kw - kb))
    return w, b * 2.0 ** -kw


class IntArm:
    """The integer ARM with its weights prepared once (see :func:`arm_int`); call on ``[m, n]``
    contexts any number of times (the decoder calls it once per wavefront).

    Each layer is ``clip(floor(a · (qw·2^-kw) + floor(qb·2^(ACT_BITS+kw-kb))·2^-kw))``: the weights
    are pre-scaled by the power of two 2^-kw, so every product and partial sum is a multiple of
    2^-kw below 2^(53-kw) in magnitude, i.e. exact in float64 in any summation order, and the
    result equals the integer computation ``floor((a·qw + bias) / 2^kw)``. A hidden layer adds
    its input to that and applies the ReLU as a clip to ``[0, ACT_LIMIT]``.
    """

    def __init__(self, qarm: dict, exps: dict, n_hidden: int):
        names = [f"h{i}" for i in range(n_hidden)] + ["out"] + (["stab"] if "stab" in qarm else [])
        self.n_hidden = n_hidden
        self.layers = [int_layer_weights(qarm[name], layer_steps(exps, name)) for name in names]
        self._tiled: list[np.ndarray] | None = None

    def __call__(self, ctx: np.ndarray, scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``ctx [m, n]`` integer latents → (loc ``[m]``, scale ``[m]``), as :func:`arm_int`."""
        loc, index = self.coder_params(ctx, scaled)
        return loc, SCALE_TABLE[index]

    def coder_params(self, ctx: np.ndarray, scaled: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``ctx [m, n]`` → (loc ``[m]`` float64, scale-table index ``[m]`` int64): what the
        range coder takes (``scale_index=``), without a round trip through float scales.

        With ``scaled=True`` ``ctx`` already holds the input activations
        ``clip(latents · 2^ACT_BITS, ±ACT_LIMIT)`` (float64, see :func:`input_activations`); it
        is then used as the first activation buffer and overwritten.
        """
        m = len(ctx)
        x = ctx if scaled else input_activations(ctx)
        biases = self._biases(m)
        h = x
        for (w, _), b in zip(self.layers[:self.n_hidden], biases, strict=False):
            acc = _layer(h, w, b, -2 * ACT_LIMIT, 2 * ACT_LIMIT)
            acc += h
            h = _clip(acc, 0.0, ACT_LIMIT)
        n = self.n_hidden
        out = _layer(h, self.layers[n][0], biases[n], -ACT_LIMIT)
        if len(self.layers) > n + 1:  # stabiliser: a second exact integer layer on the context
            out += _layer(x, self.layers[n + 1][0], biases[n + 1], -ACT_LIMIT)
            _clip(out, -ACT_LIMIT, ACT_LIMIT)
        # log2-scale in units of 2^-ACT_BITS → nearest table index (16 per octave), in integers.
        unit = 2 ** ACT_BITS // SCALE_STEPS_PER_OCTAVE
        idx = np.floor((out[:, 1] + unit // 2) * (1.0 / unit))
        idx -= (SCALE_MIN_LOG2 - LOG2_SCALE_SHIFT) * SCALE_STEPS_PER_OCTAVE
        _clip(idx, 0, len(SCALE_TABLE) - 1)
        return out[:, 0] * 2.0 ** -ACT_BITS, idx.astype(np.int64)

    def _biases(self, m: int) -> list[np.ndarray]:
        """Each layer's bias repeated over ``m`` rows (a contiguous add is faster than a
        broadcast one); kept for the largest ``m`` seen."""
        if self._tiled is None or len(self._tiled[0]) < m:
            self._tiled = [np.tile(b, (m, 1)) for _, b in self.layers]
        return [t[:m] for t in self._tiled]


def input_activations(latents: np.ndarray) -> np.ndarray:
    """Integer latents ``[...]`` → the ARM's input activations ``clip(latents · 2^ACT_BITS,
    ±ACT_LIMIT)`` (float64 ``[...]``, a new array)."""
    a = np.multiply(latents, 2.0 ** ACT_BITS, dtype=np.float64)
    return _clip(a, -ACT_LIMIT, ACT_LIMIT)


def _clip(a: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """``a`` clipped to ``[lower, upper]`` in place (two ufunc calls: ``np.clip``'s Python
    dispatch costs more than the clipping of a decoder wavefront)."""
    np.maximum(a, lower, out=a)
    return np.minimum(a, upper, out=a)


def _layer(a: np.ndarray, w: np.ndarray, b: np.ndarray, lower: float,
           upper: float = ACT_LIMIT) -> np.ndarray:
    """``clip(floor(a @ w + b), lower, upper)`` (exact, see :class:`IntArm`); float64."""
    acc = a @ w
    acc += b
    np.floor(acc, out=acc)
    return _clip(acc, lower, upper)


def int_layer(a: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Exact integer linear layer on activations ``a [m, n]`` with prepared weights ``wb`` (from
    :func:`int_layer_weights`) → ``[m, k]`` activations clipped to ±ACT_LIMIT."""
    return _layer(a, wb[0], wb[1], -ACT_LIMIT)


def arm_int(ctx: np.ndarray, qarm: dict, exps: dict, n_hidden: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Integer ARM.

    Args:
      ctx: ``[m, n]`` integer latents (any integer or float64 dtype holding integers).
      qarm: the ARM's integer weights (``{"h0": {"w", "b"}, …, "out": {"w", "b"}}``).
      exps: step exponents ``{"weight": kw, "bias": kb}`` (step = 2^-k), or one such dict per
        layer name (``h0``, …, ``out``, ``stab``).
      n_hidden: number of hidden layers.

    Returns:
      (loc ``[m]`` float64 on the fixed-point grid, scale ``[m]`` float64 entries of the coder's
      scale table), identical on every machine. Activations are integers in units of
      2^-ACT_BITS; layer ``l`` computes ``floor((a·qw + floor(qb·2^(ACT_BITS+kw-kb))) / 2^kw)``;
      a hidden layer's output is ``clip(a + that, 0, ACT_LIMIT)`` (residual, then ReLU), the
      output layer's (plus the stabiliser's, on the context) is clipped to ±ACT_LIMIT.
    """
    return IntArm(qarm, exps, n_hidden)(ctx)
