"""Coding of GLC's hyper-latent (host side). The categorical module's VQ indices: fixed-length
``ceil(log2 Kz)``-bit words (the paper's rate), or range coding under the learned categorical
prior. The factorized module's (ablation) ``round(z)``: range coding under the factorized
prior's tables (``nlc_jax.entropy.factorized``, as the pixel hyperprior's ``z``).

Both priors are frozen once, at export, into integer tables: the categorical prior's counts
(:func:`prior_counts`, summing to about 2^16, as ``nlc_jax.entropy.coding.snap_probabilities``
makes them), the factorized prior's :class:`~nlc_jax.entropy.factorized.EntropyTables`
(:func:`factorized_tables`); the coder receives these exact integers on both sides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nlc_jax.bitstream import BitstreamError
from nlc_jax.entropy import coding
from nlc_jax.entropy.factorized import EntropyTables, FactorizedPrior, make_tables

FIXED, ENTROPY, FACTORIZED = 0, 1, 2  # header codes of the modes
MODES = {"fixed": FIXED, "entropy": ENTROPY, "factorized": FACTORIZED}
# the modes each hyper module (``latent.hyper_module``) can be coded with, the default first
MODULE_MODES = {"categorical": ("fixed", "entropy"), "factorized": ("factorized",)}


def index_bits(codebook_size: int) -> int:
    """Bits of one fixed-length index: ``ceil(log2 K)``."""
    return max(1, math.ceil(math.log2(codebook_size)))


def pack_indices(indices: np.ndarray, codebook_size: int) -> bytes:
    """int ``indices [...]`` in ``[0, K)`` → big-endian ``ceil(log2 K)``-bit words, zero-padded
    to whole bytes."""
    bits = index_bits(codebook_size)
    flat = np.asarray(indices, np.int64).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= codebook_size):
        raise ValueError(f"indices must lie in [0, {codebook_size})")
    words = (flat[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return np.packbits(words.astype(np.uint8).reshape(-1)).tobytes()


def unpack_indices(data: bytes, count: int, codebook_size: int) -> np.ndarray:
    """Inverse of :func:`pack_indices`: int32 ``[count]``.

    Raises:
      BitstreamError: wrong length, non-zero padding or an index ``>= K``.
    """
    bits = index_bits(codebook_size)
    if len(data) != -(-count * bits // 8):
        raise BitstreamError(f"hyper-latent: {len(data)} bytes for {count} indices of {bits} "
                             "bits")
    flat = np.unpackbits(np.frombuffer(data, np.uint8))
    if flat[count * bits:].any():
        raise BitstreamError("hyper-latent: non-zero padding bits")
    words = flat[:count * bits].reshape(count, bits).astype(np.int64)
    indices = words @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    if indices.size and indices.max() >= codebook_size:
        raise BitstreamError(f"hyper-latent: index {int(indices.max())} outside the codebook of "
                             f"{codebook_size}")
    return indices.astype(np.int32)


def prior_counts(logits: np.ndarray) -> np.ndarray:
    """Learned logits ``[K]`` → frozen integer counts ``[K]`` (int32, each >= 1, sum ≈ 2^16)."""
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max())
    return coding.snap_probabilities((p / p.sum()).astype(np.float32)).astype(np.int32)


def _table(counts: np.ndarray, count: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(counts, np.float32), (count, len(counts)))


def encode_with_prior(indices: np.ndarray, counts: np.ndarray) -> bytes:
    """int ``indices [...]`` → bytes range coded under the frozen ``counts [K]``."""
    flat = np.asarray(indices, np.int32).reshape(-1)
    return coding.encode_categorical(flat, _table(counts, flat.size))


def decode_with_prior(data: bytes, counts: np.ndarray, count: int) -> np.ndarray:
    """Inverse of :func:`encode_with_prior`: int32 ``[count]`` (BitstreamError if corrupt)."""
    return coding.decode_categorical(data, _table(counts, count)).astype(np.int32)


def prior_bits(indices: np.ndarray, counts: np.ndarray) -> float:
    """Bits :func:`encode_with_prior` spends on ``indices`` (before word padding)."""
    flat = np.asarray(indices, np.int32).reshape(-1)
    return coding.categorical_exact_bits(flat, _table(counts, flat.size))


def factorized_tables(prior_params: Any, channels: int) -> EntropyTables:
    """The factorized module's prior (``{"matrix0", …}`` of ``LatentCodec.hyper_prior``, ``Dz``
    channels) frozen into integer tables ``counts [Dz, K]``, ``offsets [Dz]``."""
    return make_tables(FactorizedPrior(channels), {"params": prior_params})
