"""Validity masks of a padded bucket: an image fitted inside a larger ``[H, W]`` batch shape."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def fill_edges(x: Any, mask: Any) -> Any:
    """``x`` ``[H, W]`` or ``[H, W, C]`` with its last valid row and column (``mask`` ``[H, W]``:
    1 on a top-left valid rectangle) repeated over the padding: in a padded bucket, what edge
    padding at the true size shows a convolution. ``mask=None``: ``x``."""
    if mask is None:
        return x
    h, w = mask.shape
    rows = jnp.minimum(jnp.arange(h), jnp.maximum(jnp.sum(mask[:, 0]).astype(jnp.int32) - 1, 0))
    cols = jnp.minimum(jnp.arange(w), jnp.maximum(jnp.sum(mask[0, :]).astype(jnp.int32) - 1, 0))
    return x[rows][:, cols]


def apply_mask(x: Any, mask: Any) -> Any:
    """``x`` ``[h, w]`` or ``[h, w, C]`` times the validity mask ``[h, w]`` (``None``: ``x``)."""
    if mask is None:
        return x
    return x * (mask[..., None] if x.ndim == 3 else mask)
