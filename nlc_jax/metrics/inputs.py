"""Input checks shared by the image-pair metrics."""

from __future__ import annotations

import jax


class MetricInputError(ValueError):
    """Inputs a metric cannot be computed on (shape mismatch, image too small, bad value)."""


def check_pair(a: jax.Array, b: jax.Array, name: str) -> None:
    """Raise :class:`MetricInputError` unless ``a`` and ``b`` are same-shape ``[(B,) H, W, C]``."""
    if a.shape != b.shape:
        raise MetricInputError(f"{name}: image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim not in (3, 4):
        raise MetricInputError(f"{name}: expected [H, W, C] or [B, H, W, C], got shape {a.shape}")
