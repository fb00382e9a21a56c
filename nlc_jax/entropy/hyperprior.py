"""Entropy side of a (mean-)scale hyperprior (Ballé 2018 / Minnen 2018), one object.

``z`` (side information) is coded with a :class:`~nlc_jax.entropy.factorized.FactorizedPrior`;
``y`` is coded under a :class:`~nlc_jax.entropy.conditional.ConditionalEntropyModel` whose
``loc``/``scale`` the codec's hyper-synthesis computes from ``ẑ``. The latents are coded as
residuals ``round(y - loc)`` with zero mean, so the decoded symbols never depend on the decoder
reproducing ``loc`` bit-exactly (only the snapped scale index must match).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.entropy import factorized
from nlc_jax.entropy.conditional import ConditionalEntropyModel
from nlc_jax.entropy.factorized import EntropyTables, FactorizedPrior
from nlc_jax.entropy.quantization import quantize

HyperFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class HyperpriorEntropyModel:
    """``z [..., Cz]`` under a factorized prior; ``y [..., Cy]`` conditional on ``(loc, scale)``."""

    z_prior: FactorizedPrior
    conditional: ConditionalEntropyModel = ConditionalEntropyModel("gaussian")

    def init(self, rng: jax.Array) -> dict:
        """Parameters of the factorized prior."""
        return self.z_prior.init(rng, jnp.zeros((1, self.z_prior.channels)))

    def z_rate(self, params, z: jax.Array, mode: str = "noise",
               rng: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Training: ``(ẑ [..., Cz], bits of ẑ)`` with quantization proxy ``mode``."""
        z_hat = quantize(z, mode, rng)
        return z_hat, -jnp.sum(jnp.log2(self.z_prior.apply(params, z_hat)))

    def y_rate(self, y: jax.Array, loc: jax.Array, scale: jax.Array, mode: str = "noise",
               rng: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Training: ``(ŷ = q(y - loc) + loc, bits of ŷ)``; shapes ``[..., Cy]``."""
        y_hat = quantize(y - loc, mode, rng) + loc
        return y_hat, self.conditional.bits(y_hat, loc, scale)

    def compress(self, tables: EntropyTables, y: np.ndarray, z: np.ndarray,
                 hyper_fn: HyperFn) -> tuple[bytes, bytes, np.ndarray]:
        """Host: ``(z_bytes, y_bytes, ŷ)``; ``hyper_fn(ẑ) -> (loc, scale)`` is the codec's network."""
        z_sym = np.rint(np.asarray(z)).astype(np.int32)
        loc, scale = hyper_fn(z_sym.astype(np.float32))
        y_sym = np.rint(np.asarray(y) - loc).astype(np.int32)
        z_bytes = factorized.compress(tables, z_sym)
        y_bytes = self.conditional.compress(y_sym, 0.0, scale)
        return z_bytes, y_bytes, (y_sym + loc).astype(np.float32)

    def decompress(self, tables: EntropyTables, z_bytes: bytes, y_bytes: bytes,
                   z_shape: tuple[int, ...], hyper_fn: HyperFn) -> np.ndarray:
        """Host: inverse of :meth:`compress`; returns ``ŷ`` float32."""
        z_sym = factorized.decompress(tables, z_bytes, z_shape)
        loc, scale = hyper_fn(z_sym.astype(np.float32))
        y_sym = self.conditional.decompress(y_bytes, np.zeros(np.shape(scale)), scale)
        return (y_sym + loc).astype(np.float32)
