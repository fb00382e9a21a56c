"""Conditional entropy model: symbols coded under a discretized Laplace/Gaussian/logistic law
whose mean and scale come from elsewhere (a hyper-decoder, an autoregressive network).

One object per concept, CompressAI-style: :meth:`ConditionalEntropyModel.likelihood` in
training, :meth:`~ConditionalEntropyModel.compress` / :meth:`~ConditionalEntropyModel.decompress`
for real bits (deterministic, see :mod:`nlc_jax.entropy.coding`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.entropy import coding
from nlc_jax.entropy.distributions import MIN_LIKELIHOOD, MIN_SCALE, discretized_pmf


@dataclasses.dataclass(frozen=True)
class ConditionalEntropyModel:
    """Discretized ``family`` with per-element ``loc``/``scale`` (shapes broadcast to ``[...]``)."""

    family: str = "gaussian"
    min_scale: float = MIN_SCALE
    min_likelihood: float = MIN_LIKELIHOOD

    def likelihood(self, y: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
        """Bin masses of ``y [...]`` (noisy/soft/hard values); jit/vmap-safe."""
        return discretized_pmf(self.family, y, loc, scale, self.min_likelihood, self.min_scale)

    def bits(self, y: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
        """Total training rate estimate in bits (scalar)."""
        return -jnp.sum(jnp.log2(self.likelihood(y, loc, scale)))

    def compress(self, symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> bytes:
        """Integer ``symbols [...]`` → bytes (``loc``/``scale`` snapped inside).

        All parameters are known before decoding, so this uses the coder's table path.
        """
        encoder = coding.ConditionalEncoder(self.family)
        encoder.encode_tabled(symbols, loc, self._scale(scale))
        return encoder.finish()

    def decompress(self, data: bytes, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`compress`; returns int32 of the broadcast shape of ``loc``, ``scale``."""
        return coding.ConditionalDecoder(data, self.family).decode_tabled(loc, self._scale(scale))

    def exact_bits(self, symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> float:
        """Bits :meth:`compress` spends (up to the final word padding, < 64 bits)."""
        return coding.table_exact_bits(symbols, loc, self._scale(scale), self.family)

    def _scale(self, scale: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(scale, np.float64), self.min_scale)
