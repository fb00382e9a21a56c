"""Discretized continuous distributions on the integer grid, and categorical rates.

Every ``*_pmf(x, loc, scale)`` returns the probability mass of the unit bin ``[x - 0.5, x + 0.5]``
under a continuous Laplace / Gaussian / logistic density with location ``loc`` and scale
``scale`` (broadcasting shapes ``[...]``). The mass is computed with the *symmetric-tail trick*:
the bin is reflected to the lower tail of the distribution, where ``F(hi) - F(lo)`` is the
difference of two small, accurately represented numbers instead of two numbers close to 1. The
result is lower-bounded by ``min_likelihood`` so that ``bits = -log2(pmf)`` and its gradient
stay finite in float32 for any input, including scales of 1e-6 or 1e6.

The same formulas run on numpy (float64, host-side exact rates in :mod:`nlc_jax.entropy.coding`)
through the ``xp`` argument of :func:`bin_mass`.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

Family = Literal["laplace", "gaussian", "logistic"]
FAMILIES: tuple[str, ...] = ("laplace", "gaussian", "logistic")

MIN_LIKELIHOOD = 1e-9
MIN_SCALE = 1e-3
_SQRT_HALF = math.sqrt(0.5)


def _standard_cdf(family: str, z, xp):
    """CDF of the standard (loc 0, scale 1) distribution at ``z``, accurate for ``z <= 0``."""
    if family == "laplace":
        half = 0.5 * xp.exp(-xp.abs(z))
        return xp.where(z < 0, half, 1.0 - half)
    if family == "gaussian":
        erfc = jax.scipy.special.erfc if xp is jnp else scipy.special.erfc
        return 0.5 * erfc(-z * _SQRT_HALF)
    if family == "logistic":
        return jax.nn.sigmoid(z) if xp is jnp else scipy.special.expit(z)
    raise ValueError(f"unknown distribution family {family!r}; expected one of {FAMILIES}")


def bin_mass(family: str, lo, hi, loc, scale, xp=jnp):
    """Mass of ``[lo, hi]`` (``lo < hi``, either may be infinite on numpy) under ``family``.

    The interval is reflected around ``loc`` into the lower tail when its midpoint lies above
    ``loc`` (symmetry ``1 - F(z) = F(-z)``), so tail masses keep full relative precision.
    Shapes broadcast; returns ``[...]`` without lower bound.
    """
    mid = 0.5 * (lo + hi)
    sign = xp.where(mid > loc, -1.0, 1.0)
    z_hi = sign * (hi - loc) / scale
    z_lo = sign * (lo - loc) / scale
    return xp.abs(_standard_cdf(family, z_hi, xp) - _standard_cdf(family, z_lo, xp))


def discretized_pmf(family: str, x: jax.Array, loc: jax.Array, scale: jax.Array,
                    min_likelihood: float = MIN_LIKELIHOOD,
                    min_scale: float = MIN_SCALE) -> jax.Array:
    """Mass of the integer bin ``[x - 0.5, x + 0.5]``; ``x``, ``loc``, ``scale`` broadcast to ``[...]``.

    ``x`` may be a continuous proxy (noisy / soft-rounded latents) during training. ``scale`` is
    clamped below at ``min_scale`` and the result at ``min_likelihood``. jit/vmap-safe.
    """
    x = jnp.asarray(x, jnp.float32)
    loc = jnp.asarray(loc, jnp.float32)
    scale = jnp.maximum(jnp.asarray(scale, jnp.float32), min_scale)
    mass = bin_mass(family, x - 0.5, x + 0.5, loc, scale, jnp)
    return jnp.maximum(mass, min_likelihood)


def laplace_pmf(x: jax.Array, loc: jax.Array, scale: jax.Array, **kw) -> jax.Array:
    """Discretized Laplace: :func:`discretized_pmf` with ``family="laplace"``; shapes ``[...]``."""
    return discretized_pmf("laplace", x, loc, scale, **kw)


def gaussian_pmf(x: jax.Array, loc: jax.Array, scale: jax.Array, **kw) -> jax.Array:
    """Discretized Gaussian (``scale`` = standard deviation); shapes ``[...]``."""
    return discretized_pmf("gaussian", x, loc, scale, **kw)


def logistic_pmf(x: jax.Array, loc: jax.Array, scale: jax.Array, **kw) -> jax.Array:
    """Discretized logistic; shapes ``[...]``."""
    return discretized_pmf("logistic", x, loc, scale, **kw)


def bits(pmf: jax.Array) -> jax.Array:
    """Information content ``-log2(pmf)`` in bits, elementwise ``[...]``."""
    return -jnp.log2(pmf)


def categorical_bits(logits: jax.Array, symbols: jax.Array) -> jax.Array:
    """Bits of integer ``symbols [...]`` under categorical ``logits [..., K]``; returns ``[...]``."""
    log_p = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_p, jnp.asarray(symbols, jnp.int32)[..., None], axis=-1)
    return -picked[..., 0] / math.log(2.0)


def numpy_bin_mass(family: str, lo: np.ndarray, hi: np.ndarray, loc: np.ndarray,
                   scale: np.ndarray) -> np.ndarray:
    """float64 host version of :func:`bin_mass` (used for exact rates of coded streams)."""
    f64 = np.float64
    return bin_mass(family, np.asarray(lo, f64), np.asarray(hi, f64), np.asarray(loc, f64),
                    np.asarray(scale, f64), np)
