"""Peak signal-to-noise ratio."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def mse(a: np.ndarray | jnp.ndarray, b: np.ndarray | jnp.ndarray) -> jnp.ndarray:
    """Mean squared error over the last three axes.

    Args:
      a, b: ``[..., H, W, C]`` arrays (uint8 or float).

    Returns:
      ``[...]`` float32 MSE.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    return jnp.mean(jnp.square(a - b), axis=(-3, -2, -1))


def psnr(a: np.ndarray | jnp.ndarray, b: np.ndarray | jnp.ndarray,
         max_value: float = 255.0) -> jnp.ndarray:
    """PSNR in dB, per image.

    Args:
      a, b: ``[..., H, W, C]`` arrays; 8-bit values with ``max_value=255`` (default) or floats
        in [0, 1] with ``max_value=1``.
      max_value: peak signal value.

    Returns:
      ``[...]`` float32 PSNR in dB (``inf`` for identical images).
    """
    err = mse(a, b)
    return 10.0 * jnp.log10(max_value**2 / err)
