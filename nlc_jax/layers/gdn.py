"""Generalized divisive normalization (Ballé et al. 2016) and its inverse, in Flax linen.

``GDN``: ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``; ``inverse=True`` multiplies instead
(IGDN, used by synthesis transforms). ``beta`` and ``gamma`` must stay non-negative (``beta``
strictly positive), so they are stored reparameterised: a stored value ``p`` means
``max(p, sqrt(minimum + pedestal))^2 - pedestal`` with a tiny ``pedestal`` that keeps the gradient
alive near zero. The bound uses :func:`lower_bound`, whose gradient still flows when the optimizer
pushes a clamped value back up (a plain ``maximum`` would freeze it forever).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

PEDESTAL = (2.0 ** -18) ** 2


@jax.custom_vjp
def lower_bound(x: jax.Array, bound: jax.Array | float) -> jax.Array:
    """``max(x, bound)`` whose gradient passes where ``x >= bound`` or where it raises ``x``."""
    return jnp.maximum(x, bound)


def _lower_bound_fwd(x, bound):
    return jnp.maximum(x, bound), (x, bound)


def _lower_bound_bwd(res, g):
    x, bound = res
    passes = (x >= bound) | (g < 0)
    return g * passes.astype(g.dtype), jnp.zeros_like(jnp.asarray(bound, g.dtype))


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)


def nonneg_init(value: jax.Array) -> jax.Array:
    """Stored parameter that :func:`nonneg_value` maps back to ``value`` (``value >= 0``)."""
    return jnp.sqrt(jnp.maximum(value + PEDESTAL, PEDESTAL))


def nonneg_value(stored: jax.Array, minimum: float = 0.0) -> jax.Array:
    """Non-negative value ``>= minimum`` of a reparameterised parameter."""
    bound = (minimum + PEDESTAL) ** 0.5
    return jnp.square(lower_bound(stored, bound)) - PEDESTAL


class GDN(nn.Module):
    """GDN over the channel axis of ``[..., C]`` inputs (NHWC); ``inverse=True`` gives IGDN.

    Attributes:
      inverse: multiply by the normaliser instead of dividing (inverse GDN).
      beta_min: lower bound on ``beta`` (keeps the normaliser away from zero).
      gamma_init: initial diagonal of ``gamma``.
    """

    inverse: bool = False
    beta_min: float = 1e-6
    gamma_init: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[..., C]`` → ``[..., C]`` (same dtype as ``x``; parameters stay float32)."""
        c = x.shape[-1]
        beta = self.param("beta", lambda _rng: nonneg_init(jnp.ones((c,), jnp.float32)))
        gamma = self.param(
            "gamma", lambda _rng: nonneg_init(self.gamma_init * jnp.eye(c, dtype=jnp.float32)))
        beta = nonneg_value(beta, self.beta_min).astype(x.dtype)
        gamma = nonneg_value(gamma).astype(x.dtype)
        # gamma[j, i]: contribution of input channel j to the normaliser of output channel i.
        norm = jnp.sqrt(beta + jnp.square(x) @ gamma)
        return x * norm if self.inverse else x / norm
