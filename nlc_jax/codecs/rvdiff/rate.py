"""The rate variable ``t ∈ [0, 1]``: quantization steps ``Δ(t)``, the trade-off ``λ(t)`` and how
``t`` is stored in a file.

``t = 0`` is the highest rate (smallest steps), ``t = 1`` the lowest. Each channel ``c`` has a
learned piecewise log-linear step curve over ``knots + 1`` equally spaced knots ``t_k = k / K``::

    log Δ_c(t_0) = a_c,    log Δ_c(t_k) = a_c + Σ_{j ≤ k} softplus(b_{c,j})

so ``Δ_c(t)`` is continuous and strictly increasing in ``t`` for any parameter values (the
increments are positive), and coded bits fall as ``t`` grows. ``λ(t)`` interpolates the config's
``(λ(0), λ(1))`` geometrically; the curve starts at the step that is optimal for ``λ(t)`` at high
rate (:func:`initial_log_steps`), as the hyperprior's gains start at ``sqrt(λ_i / geomean λ)``.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

#: a file stores ``round(t · RATE_SCALE)`` as a u16; the codec uses that value, never ``t``
RATE_SCALE = 65535


class RateError(ValueError):
    """A rate ``t`` outside [0, 1] (one-line message)."""


def check_rate(t: float) -> float:
    """``t`` as a float in [0, 1].

    Raises:
      RateError: not a number in [0, 1].
    """
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise RateError(f"rate must be a number in [0, 1], got {t!r}") from None
    if not 0.0 <= value <= 1.0:
        raise RateError(f"rate must be in [0, 1] (0: highest rate, 1: lowest), got {value}")
    return value


def rate_code(t: float) -> int:
    """``t`` → the u16 a file stores (raises :class:`RateError` outside [0, 1])."""
    return int(round(check_rate(t) * RATE_SCALE))


def rate_of_code(code: int) -> float:
    """The u16 of a file → ``t`` (a float32-exact value, the same on every machine)."""
    return float(np.float32(code) / np.float32(RATE_SCALE))


def lmbda_at(t: jax.Array, lmbda_range: tuple[float, float]) -> jax.Array:
    """``λ(t) = λ(0) · (λ(1) / λ(0))^t``; ``t`` ``[B]`` → ``[B]``."""
    lo, hi = (math.log(float(v)) for v in lmbda_range)
    return jnp.exp(lo + jnp.asarray(t, jnp.float32) * (hi - lo))


def initial_log_steps(lmbda_range: tuple[float, float], positions_per_pixel: float,
                      knots: int) -> np.ndarray:
    """``log Δ(t_k)`` at the ``knots + 1`` knots, optimal for ``λ(t_k)`` at high rate.

    With ``D ≈ Δ²/12`` per latent element and ``R ≈ positions_per_pixel · (−log2 Δ) + const``
    bits per image pixel (``positions_per_pixel`` = latent elements per image pixel), the
    minimum of ``R + λ D`` is at ``Δ² = 6 · positions_per_pixel / (ln 2 · λ)``.
    """
    t = np.linspace(0.0, 1.0, knots + 1)
    lo, hi = (math.log(float(v)) for v in lmbda_range)
    lmbda = np.exp(lo + t * (hi - lo))
    return 0.5 * np.log(6.0 * positions_per_pixel / (math.log(2.0) * lmbda))


def _softplus_inverse(x: np.ndarray) -> np.ndarray:
    return x + np.log(-np.expm1(-x))


class StepCurve(nn.Module):
    """Per-channel monotone step curve ``Δ(t)``: ``t`` ``[B]`` → ``[B, channels]`` (> 0).

    Attributes:
      channels: channels the steps apply to.
      log_steps: initial ``log Δ`` at the ``len(log_steps)`` knots (increasing; the same for
        every channel).
    """

    channels: int
    log_steps: tuple[float, ...]

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        init = np.asarray(self.log_steps, np.float64)
        if init.ndim != 1 or init.size < 2 or np.any(np.diff(init) <= 0):
            raise ValueError(f"step curve knots must be >= 2 increasing values, got {init}")
        c = self.channels
        start = self.param("log_step0", lambda _: jnp.full((c,), init[0], jnp.float32))
        incr = self.param("increments", lambda _: jnp.asarray(
            np.repeat(_softplus_inverse(np.diff(init))[:, None], c, 1), jnp.float32))
        knots = jnp.concatenate([start[None], start[None] + jnp.cumsum(
            jax.nn.softplus(incr), axis=0)], axis=0)  # [K + 1, C]
        k = knots.shape[0] - 1
        pos = jnp.clip(jnp.asarray(t, jnp.float32), 0.0, 1.0) * k  # [B]
        i = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, k - 1)
        w = (pos - i)[:, None]
        return jnp.exp((1.0 - w) * knots[i] + w * knots[i + 1])
