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


def psnr_exact(a: np.ndarray, b: np.ndarray, max_value: float = 255.0) -> float:
    """PSNR in dB of one image pair in float64 on the host (reported numbers, results tables).

    Args:
      a, b: ``[H, W, C]`` arrays (uint8 or float).

    Returns:
      PSNR in dB; ``inf`` for identical images. Deterministic for a given pair, so two equal
      values mean equal errors (a one-level change in one pixel moves it by far more than 1e-9 dB).
    """
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    err = float(np.mean(diff * diff))
    return 10.0 * float(np.log10(max_value**2 / err)) if err > 0 else float("inf")
