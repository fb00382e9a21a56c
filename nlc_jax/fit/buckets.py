"""Shape bucketing: fits of different target sizes grouped into batches of one padded shape.

Every fit's target is padded (bottom/right, edge values) to its bucket shape: each side rounded
up to a multiple of ``multiple``. Fits sharing a bucket shape are batched together (sorted by
size, so a λ sweep of one image stays in one batch); the validity mask marks the real pixels.
The wasted fraction counts padded positions and the filler fits of a last, partial batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class BucketPolicy:
    """Bucketing policy.

    Attributes:
      multiple: each side of a target is padded up to a multiple of this (1 = no padding; only
        identical sizes share a batch).
      sort: order fits by bucket area (largest first) before batching; ``False`` keeps input
        order inside each bucket shape.
    """

    multiple: int = 64
    sort: bool = True

    def __post_init__(self) -> None:
        if self.multiple < 1:
            raise ValueError(f"the bucket multiple must be >= 1, got {self.multiple}")


@dataclasses.dataclass(frozen=True)
class PlannedBatch:
    """One batch: its padded ``(height, width)`` and the indices of its fits."""

    shape: tuple[int, int]
    fits: tuple[int, ...]


def bucket_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """``(height, width)`` rounded up to multiples of ``multiple``."""
    m = max(int(multiple), 1)
    return -(-height // m) * m, -(-width // m) * m


def plan_batches(shapes: Sequence[tuple[int, int]], batch_size: int,
                 policy: BucketPolicy = BucketPolicy()) -> list[PlannedBatch]:
    """Group fits (their target ``(h, w)``) into batches of at most ``batch_size``.

    Deterministic: the same shapes give the same plan.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (h, w) in enumerate(shapes):
        groups.setdefault(bucket_shape(h, w, policy.multiple), []).append(i)
    keys = list(groups)
    if policy.sort:
        keys.sort(key=lambda s: (-s[0] * s[1], s))
    batches = []
    for key in keys:
        idx = groups[key]
        for start in range(0, len(idx), batch_size):
            batches.append(PlannedBatch(key, tuple(idx[start:start + batch_size])))
    return batches


def wasted_fraction(batches: Sequence[PlannedBatch], shapes: Sequence[tuple[int, int]],
                    fits_multiple: int = 1) -> float:
    """Fraction of computed positions that are padding or filler fits.

    ``fits_multiple``: each batch runs a multiple of this many fits (the device count: the engine
    adds filler fits so that every device gets the same number).
    """
    valid = sum(shapes[i][0] * shapes[i][1] for b in batches for i in b.fits)
    computed = sum(b.shape[0] * b.shape[1] * (-(-len(b.fits) // fits_multiple) * fits_multiple)
                   for b in batches)
    return 1.0 - valid / computed if computed else 0.0


def pad_target(target: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``[h, w, C]`` to ``[H, W, C]`` (edge values) and return it with its ``[H, W]`` mask."""
    h, w = target.shape[:2]
    if h > shape[0] or w > shape[1]:
        raise ValueError(f"target {h}x{w} does not fit bucket {shape[0]}x{shape[1]}")
    padded = np.pad(target, ((0, shape[0] - h), (0, shape[1] - w), (0, 0)), mode="edge")
    mask = np.zeros(shape, np.float32)
    mask[:h, :w] = 1.0
    return padded.astype(np.float32), mask
