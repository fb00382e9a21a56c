"""Deep factorized density (Ballé et al. 2018, "Variational image compression with a scale
hyperprior", appendix 6.1): one small monotone network per channel models the CDF of that channel.

Training: :class:`FactorizedPrior` ``(y [..., C]) -> likelihoods [..., C]`` on noisy or quantized
values. Coding: :func:`make_tables` turns the trained density into fixed integer tables (computed
once, stored with the model weights, like CompressAI's ``update()``), and :func:`compress` /
:func:`decompress` code integer symbols with them. Encoder and decoder share the stored tables, so
coding never depends on re-evaluating the network.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.entropy.coding import ConditionalDecoder, ConditionalEncoder, snap_probabilities
from nlc_jax.entropy.distributions import MIN_LIKELIHOOD


class FactorizedPrior(nn.Module):
    """Per-channel learned CDF; channels are the last axis.

    Attributes:
      channels: number of channels ``C``.
      filters: hidden widths of the per-channel monotone network.
      init_scale: initial width of the density (CompressAI's default 10).
    """

    channels: int
    filters: tuple[int, ...] = (3, 3, 3)
    init_scale: float = 10.0

    def setup(self) -> None:
        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1.0 / (len(widths) - 1))
        matrices, biases, factors = [], [], []
        for i in range(len(widths) - 1):
            init = float(np.log(np.expm1(1.0 / scale / widths[i + 1])))
            shape = (self.channels, widths[i + 1], widths[i])
            matrices.append(self.param(f"matrix{i}", nn.initializers.constant(init), shape))
            biases.append(self.param(f"bias{i}", _uniform_init(-0.5, 0.5),
                                     (self.channels, widths[i + 1])))
            if i < len(widths) - 2:
                factors.append(self.param(f"factor{i}", nn.initializers.zeros,
                                          (self.channels, widths[i + 1])))
        self.matrices, self.biases, self.factors = matrices, biases, factors

    def logits_cdf(self, x: jax.Array) -> jax.Array:
        """Logit of the CDF of each channel at ``x [..., C]``; returns ``[..., C]``."""
        v = jnp.asarray(x, jnp.float32)[..., None]
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            v = jnp.einsum("coi,...ci->...co", nn.softplus(matrix), v) + bias
            if i < len(self.factors):
                v = v + jnp.tanh(self.factors[i]) * jnp.tanh(v)
        return v[..., 0]

    def __call__(self, y: jax.Array) -> jax.Array:
        """Likelihood of the unit bins around ``y [..., C]`` (tail-stable, lower-bounded)."""
        lower = self.logits_cdf(y - 0.5)
        upper = self.logits_cdf(y + 0.5)
        sign = jax.lax.stop_gradient(jnp.where(lower + upper > 0, -1.0, 1.0))
        mass = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
        return jnp.maximum(mass, MIN_LIKELIHOOD)


def _uniform_init(low: float, high: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, low, high)
    return init


@dataclasses.dataclass(frozen=True)
class EntropyTables:
    """Integer coding tables: ``counts [C, K]`` (float32 integers) over ``offsets[c] + [0, K)``.

    The first and last entries of each row carry the tail masses; symbols beyond are escaped.
    Store ``as_dict()`` with the model weights; rebuild with ``EntropyTables(**d)``.
    """

    counts: np.ndarray
    offsets: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """The arrays, for checkpoints / safetensors."""
        return {"counts": self.counts, "offsets": self.offsets}

    @classmethod
    def from_dict(cls, arrays: dict[str, np.ndarray]) -> EntropyTables:
        """Inverse of :meth:`as_dict` (e.g. from a loaded export): ``counts [C, K]`` as stored,
        ``offsets [C]`` as int64."""
        return cls(counts=np.asarray(arrays["counts"]),
                   offsets=np.asarray(arrays["offsets"], np.int64))


def make_tables(prior: FactorizedPrior, params, max_radius: int = 256,
                tail_mass: float = 1e-7) -> EntropyTables:
    """Freeze a trained prior into :class:`EntropyTables` (host side, run once after training).

    Each channel's support is where its tails exceed ``tail_mass``, searched in
    ``[-max_radius, max_radius]``; all rows share the widest support width ``K``.
    """
    grid = np.arange(-max_radius, max_radius + 2, dtype=np.float32) - 0.5  # bin edges [G]
    edges = np.repeat(grid[:, None], prior.channels, axis=1)
    cdf = np.asarray(jax.nn.sigmoid(prior.apply(params, edges, method=FactorizedPrior.logits_cdf)),
                     np.float64)  # [G, C]: cdf[j] = F(-max_radius + j - 0.5)
    lo = np.argmax(cdf[1:] > tail_mass, axis=0)  # first bin whose upper edge passes the tail
    above = (1.0 - cdf[:-1]) > tail_mass
    hi = len(grid) - 2 - np.argmax(above[::-1], axis=0)
    width = max(int(np.max(hi - lo)) + 1, 2)
    lo = np.minimum(lo, len(grid) - 1 - width)
    rows = lo[:, None] + np.arange(width)[None, :]  # [C, K] bin indices
    chan = np.arange(prior.channels)[:, None]
    upper = cdf[np.minimum(rows + 1, len(grid) - 1), chan]
    lower = cdf[rows, chan]
    upper[:, -1] = 1.0
    lower[:, 0] = 0.0
    counts = snap_probabilities(np.maximum(upper - lower, 0.0))
    return EntropyTables(counts=counts, offsets=(lo - max_radius).astype(np.int64))


def _channel_index(shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.arange(shape[-1]), shape)


def compress(tables: EntropyTables, symbols: np.ndarray) -> bytes:
    """Integer ``symbols [..., C]`` → bytes (channel ``c`` uses row ``c`` of the tables)."""
    symbols = np.asarray(symbols)
    encoder = ConditionalEncoder()
    encoder.encode_tables(symbols, _channel_index(symbols.shape), tables.counts, tables.offsets)
    return encoder.finish()


def decompress(tables: EntropyTables, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`compress`; returns int32 ``shape`` (``[..., C]``)."""
    decoder = ConditionalDecoder(data)
    return decoder.decode_tables(_channel_index(tuple(shape)), tables.counts, tables.offsets)


def table_bits(tables: EntropyTables, symbols: np.ndarray) -> float:
    """Ideal bits of in-support ``symbols [..., C]`` under the integer tables (escapes excluded)."""
    symbols = np.asarray(symbols)
    idx = _channel_index(symbols.shape)
    k = np.clip(symbols - tables.offsets[idx], 0, tables.counts.shape[1] - 1)
    counts = tables.counts.astype(np.float64)
    return float(-np.log2(counts[idx, k] / counts.sum(axis=1)[idx]).sum())
