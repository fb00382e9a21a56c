"""Quantization proxies for training rate-distortion models, and an annealing schedule helper.

All functions are pure, jit/vmap-safe and work on float32 arrays of any shape ``[...]``.
Temperatures ``t`` follow Agustsson & Theis (2020): ``soft_round(x, t)`` with ``alpha = 1 / t``;
``t -> 0`` gives hard rounding, large ``t`` the identity.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

QuantizeMode = Literal["round", "ste", "noise", "softround", "softround_noise",
                       "softround_gaussian", "kumaraswamy"]
QUANTIZE_MODES: tuple[str, ...] = ("round", "ste", "noise", "softround", "softround_noise",
                                   "softround_gaussian", "kumaraswamy")
_MIN_T = 1e-4
_MAX_T = 1e4
_EPS = 1e-6


def hard_round(x: jax.Array) -> jax.Array:
    """Round to the nearest integer (zero gradient); ``[...]``."""
    return jnp.round(x)


def ste_round(x: jax.Array) -> jax.Array:
    """Round in the forward pass, identity gradient (straight-through estimator); ``[...]``."""
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def uniform_noise(rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``U(-0.5, 0.5)`` noise of ``shape``."""
    return jax.random.uniform(rng, shape, jnp.float32, -0.5, 0.5)


def add_uniform_noise(x: jax.Array, rng: jax.Array, scale: float | jax.Array = 1.0) -> jax.Array:
    """``x + scale * U(-0.5, 0.5)`` (the classic training proxy of rounding); ``[...]``."""
    return x + scale * uniform_noise(rng, jnp.shape(x))


def _alpha(t):
    return 1.0 / jnp.clip(jnp.asarray(t, jnp.float32), _MIN_T, _MAX_T)


def soft_round(x: jax.Array, t: float | jax.Array) -> jax.Array:
    """Soft rounding ``m + tanh(a r) / (2 tanh(a / 2))`` with ``m = floor(x) + 1/2``, ``r = x - m``.

    ``a = 1 / t``; continuous and differentiable, equals ``round`` as ``t -> 0`` and ``x`` as
    ``t -> inf``. Shapes ``[...]`` (``t`` broadcasts).
    """
    alpha = _alpha(t)
    m = jnp.floor(x) + 0.5
    return m + jnp.tanh(alpha * (x - m)) / (2.0 * jnp.tanh(alpha / 2.0))


def soft_round_inverse(y: jax.Array, t: float | jax.Array) -> jax.Array:
    """Inverse of :func:`soft_round` (same temperature); ``[...]``."""
    alpha = _alpha(t)
    m = jnp.floor(y) + 0.5
    arg = jnp.clip(2.0 * (y - m) * jnp.tanh(alpha / 2.0), -1.0 + _EPS, 1.0 - _EPS)
    return m + jnp.arctanh(arg) / alpha


def kumaraswamy_noise(rng: jax.Array, shape: tuple[int, ...],
                      a: float | jax.Array = 2.0) -> jax.Array:
    """Noise in ``[-0.5, 0.5]`` from a Kumaraswamy(a, b) law with its mode at the centre (C3).

    ``b = (2^a (a - 1) + 1) / a``; ``a = 1`` is uniform noise, larger ``a`` concentrates the noise
    around 0 (annealed upward during training). Sampled by inverting the CDF.
    """
    a = jnp.asarray(a, jnp.float32)
    b = (jnp.exp2(a) * (a - 1.0) + 1.0) / a
    u = jax.random.uniform(rng, shape, jnp.float32, _EPS, 1.0 - _EPS)
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a) - 0.5


def anneal(progress: float | jax.Array, start: float | jax.Array, end: float | jax.Array,
           kind: Literal["linear", "cosine", "exponential", "constant"] = "linear") -> jax.Array:
    """Value moving from ``start`` (``progress = 0``) to ``end`` (``progress = 1``).

    ``progress`` is clipped to [0, 1]. ``"exponential"`` interpolates geometrically (both ends
    must be positive), which suits temperatures; ``"cosine"`` eases in and out.
    """
    p = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
    start = jnp.asarray(start, jnp.float32)
    end = jnp.asarray(end, jnp.float32)
    if kind == "linear":
        w = p
    elif kind == "cosine":
        w = 0.5 - 0.5 * jnp.cos(math.pi * p)
    elif kind == "exponential":
        return jnp.exp(jnp.log(start) + p * (jnp.log(end) - jnp.log(start)))
    elif kind == "constant":
        return start + 0.0 * p
    else:
        raise ValueError(f"unknown annealing kind {kind!r}")
    return start + w * (end - start)


def quantize(x: jax.Array, mode: str, rng: jax.Array | None = None,
             temperature: float | jax.Array = 0.3, noise_scale: float | jax.Array = 1.0,
             kumaraswamy_a: float | jax.Array = 2.0) -> jax.Array:
    """Apply quantization proxy ``mode`` (static) to ``x [...]``.

    * ``round``: hard rounding; ``ste``: straight-through rounding;
    * ``noise``: ``x + noise_scale * U(-0.5, 0.5)``;
    * ``softround``: :func:`soft_round` at ``temperature``;
    * ``softround_noise``: ``soft_round(soft_round(x) + noise_scale * U)`` (C3);
    * ``softround_gaussian``: as ``softround_noise`` with Gaussian noise of standard deviation
      ``noise_scale`` (Cool-chic 5);
    * ``kumaraswamy``: as ``softround_noise`` with Kumaraswamy noise of parameter
      ``kumaraswamy_a`` (Cool-chic 3/4, C3).

    The noisy modes need ``rng``.
    """
    if mode == "round":
        return hard_round(x)
    if mode == "ste":
        return ste_round(x)
    if mode == "softround":
        return soft_round(x, temperature)
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; expected one of {QUANTIZE_MODES}")
    if rng is None:
        raise ValueError(f"quantization mode {mode!r} needs an rng")
    if mode == "noise":
        return add_uniform_noise(x, rng, noise_scale)
    if mode == "softround_noise":
        noise = uniform_noise(rng, jnp.shape(x))
    elif mode == "softround_gaussian":
        noise = jax.random.normal(rng, jnp.shape(x), jnp.float32)
    else:
        noise = kumaraswamy_noise(rng, jnp.shape(x), kumaraswamy_a)
    return soft_round(soft_round(x, temperature) + noise_scale * noise, temperature)
