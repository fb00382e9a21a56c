"""Vector quantizer of a VQ autoencoder (VQ-VAE / VQGAN): a ``K × D`` codebook, nearest
neighbour, straight-through gradients, codebook + commitment loss.

Options (:class:`VQSettings`):

* ``l2_normalize``: codes and inputs are unit-normalised before the distance (cosine codes, as
  ViT-VQGAN); the quantized vector is the normalised code.
* ``ema``: the codebook follows an exponential moving average of the vectors assigned to each
  code (van den Oord et al. 2017, appendix) instead of the codebook loss; the codebook and the
  EMA statistics are parameters that get no gradient and are set by :func:`update_state`.
* ``restart_threshold > 0``: dead-code restart: a code whose usage (an EMA of the fraction of
  vectors assigned to it, in units of ``1/K``) falls below the threshold is replaced by a random
  input vector of the current batch.

Training statistics (per-code counts and sums, a sample of inputs) leave the loss through the
training loop's ``STATE_STATS`` metric and come back through :func:`update_state`, so the
module itself stays pure. :func:`usage_metrics` gives the logged codebook usage and perplexity.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_EPS = 1e-6
RESTART_SAMPLES = 64  # input vectors kept per step as restart candidates


@dataclasses.dataclass(frozen=True)
class VQSettings:
    """Codebook size ``K``, dimension ``D`` and the training options (see module docstring)."""

    codebook_size: int = 1024
    dim: int = 64
    beta: float = 0.25  # commitment weight
    l2_normalize: bool = False
    ema: bool = False
    ema_decay: float = 0.99
    usage_decay: float = 0.99
    restart_threshold: float = 0.0  # in units of 1/K; 0: no restarts

    def __post_init__(self) -> None:
        if self.codebook_size < 2 or self.dim < 1:
            raise ValueError(f"a codebook needs K >= 2 codes of dimension >= 1, got "
                             f"K={self.codebook_size}, D={self.dim}")
        if not 0.0 < self.ema_decay < 1.0 or not 0.0 < self.usage_decay < 1.0:
            raise ValueError("ema_decay and usage_decay must lie in (0, 1)")


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + _EPS)


def _uniform_init(bound: float):
    """``U(-bound, bound)`` (taming-transformers initialises codebooks with ``bound = 1/K``)."""
    def init(rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.uniform(rng, shape, jnp.float32, -bound, bound)
    return init


def nearest_codes(z: jax.Array, codebook: jax.Array, l2_normalize: bool = False) -> jax.Array:
    """Index of the nearest code (squared Euclidean distance) of each ``z [..., D]`` among
    ``codebook [K, D]``; returns int32 ``[...]``."""
    if l2_normalize:
        z, codebook = _normalize(z), _normalize(codebook)
    flat = z.reshape(-1, z.shape[-1]).astype(jnp.float32)
    dist = (jnp.sum(jnp.square(codebook), axis=-1)[None, :]
            - 2.0 * jnp.matmul(flat, codebook.T, precision=jax.lax.Precision.HIGHEST))
    return jnp.argmin(dist, axis=-1).astype(jnp.int32).reshape(z.shape[:-1])


def lookup(indices: jax.Array, codebook: jax.Array, l2_normalize: bool = False) -> jax.Array:
    """Code vectors ``[..., D]`` of int ``indices [...]`` (normalised codes if ``l2_normalize``)."""
    codes = _normalize(codebook) if l2_normalize else codebook
    return jnp.take(codes, indices, axis=0)


class VectorQuantizer(nn.Module):
    """``z [..., D]`` → (straight-through quantized ``[..., D]``, indices ``[...]``, aux).

    ``aux`` holds the scalar ``vq_loss`` (codebook + β · commitment; commitment only with EMA)
    and ``stats`` for :func:`update_state` (counts ``[K]``, sums ``[K, D]``, samples
    ``[RESTART_SAMPLES, D]``). Parameters: ``codebook [K, D]``; ``usage [K]``; with EMA also
    ``ema_count [K]`` and ``ema_sum [K, D]``.
    """

    settings: VQSettings

    def setup(self) -> None:
        s = self.settings
        self.codebook = self.param("codebook", _uniform_init(1.0 / s.codebook_size),
                                   (s.codebook_size, s.dim))
        self.usage = self.param("usage", lambda _: jnp.ones((s.codebook_size,)))
        if s.ema:
            self.ema_count = self.param("ema_count", lambda _: jnp.ones((s.codebook_size,)))
            self.ema_sum = self.param("ema_sum", lambda _: jnp.zeros((s.codebook_size, s.dim)))

    def _codes(self) -> jax.Array:
        return jax.lax.stop_gradient(self.codebook) if self.settings.ema else self.codebook

    def indices(self, z: jax.Array) -> jax.Array:
        """Nearest code of each ``z [..., D]``: int32 ``[...]``."""
        return nearest_codes(jax.lax.stop_gradient(z), jax.lax.stop_gradient(self.codebook),
                             self.settings.l2_normalize)

    def embed(self, indices: jax.Array) -> jax.Array:
        """Code vectors ``[..., D]`` of ``indices [...]``."""
        return lookup(indices, self.codebook, self.settings.l2_normalize)

    def __call__(self, z: jax.Array, rng: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array, dict[str, Any]]:
        s = self.settings
        z = z.astype(jnp.float32)
        idx = self.indices(z)
        zn = _normalize(z) if s.l2_normalize else z
        q = lookup(idx, self._codes(), s.l2_normalize)
        commitment = jnp.mean(jnp.square(zn - jax.lax.stop_gradient(q)))
        codebook_loss = 0.0 if s.ema else jnp.mean(jnp.square(jax.lax.stop_gradient(zn) - q))
        z_st = zn + jax.lax.stop_gradient(q - zn)
        flat = jax.lax.stop_gradient(zn).reshape(-1, s.dim)
        onehot = jax.nn.one_hot(idx.reshape(-1), s.codebook_size, dtype=jnp.float32)
        pick = (jnp.arange(RESTART_SAMPLES) * max(flat.shape[0] // RESTART_SAMPLES, 1)
                if rng is None else jax.random.randint(rng, (RESTART_SAMPLES,), 0, flat.shape[0]))
        stats = {"counts": jnp.sum(onehot, axis=0), "sums": onehot.T @ flat,
                 "samples": flat[pick % flat.shape[0]]}
        aux = {"vq_loss": codebook_loss + s.beta * commitment, "commitment": commitment,
               "stats": stats}
        return z_st, idx, aux


def usage_metrics(counts: jax.Array, usage: jax.Array,
                  settings: VQSettings) -> dict[str, jax.Array]:
    """Logged scalars: ``perplexity`` of this batch's code histogram ``counts [K]``, the fraction
    of codes ``used`` in it, and the number of ``dead`` codes (usage EMA ``[K]`` below the
    restart threshold, or below 0.01/K without restarts)."""
    p = counts / jnp.maximum(jnp.sum(counts), 1.0)
    perplexity = jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-12)), 0.0)))
    threshold = settings.restart_threshold or 0.01
    return {"perplexity": perplexity, "used": jnp.mean((counts > 0).astype(jnp.float32)),
            "dead": jnp.sum((usage < threshold).astype(jnp.float32))}


def update_state(params: dict[str, Any], stats: dict[str, jax.Array], settings: VQSettings,
                 rng: jax.Array) -> dict[str, Any]:
    """The quantizer's params after one step's ``stats`` (see :class:`VectorQuantizer`): usage
    EMA, EMA codebook (``ema``), dead-code restarts (``restart_threshold > 0``). jit-safe."""
    s, k = settings, settings.codebook_size
    counts, sums, samples = stats["counts"], stats["sums"], stats["samples"]
    fraction = counts * (k / jnp.maximum(jnp.sum(counts), 1.0))  # in units of 1/K
    params = dict(params)
    params["usage"] = s.usage_decay * params["usage"] + (1.0 - s.usage_decay) * fraction
    codebook = params["codebook"]
    if s.ema:
        n = s.ema_decay * params["ema_count"] + (1.0 - s.ema_decay) * counts
        total = jnp.sum(n)
        smoothed = (n + _EPS) / (total + k * _EPS) * total  # Laplace smoothing
        params["ema_count"] = n
        params["ema_sum"] = s.ema_decay * params["ema_sum"] + (1.0 - s.ema_decay) * sums
        codebook = params["ema_sum"] / smoothed[:, None]
        # codes never assigned yet keep their initial value
        codebook = jnp.where((n > _EPS)[:, None] & (params["ema_sum"] != 0).any(-1, keepdims=True),
                             codebook, params["codebook"])
    if s.restart_threshold > 0:
        dead = params["usage"] < s.restart_threshold
        fresh = samples[jax.random.randint(rng, (k,), 0, samples.shape[0])]
        fresh = fresh + 1e-3 * jax.random.normal(jax.random.fold_in(rng, 1), fresh.shape)
        codebook = jnp.where(dead[:, None], fresh, codebook)
        params["usage"] = jnp.where(dead, 1.0, params["usage"])
        if s.ema:
            params["ema_count"] = jnp.where(dead, 1.0, params["ema_count"])
            params["ema_sum"] = jnp.where(dead[:, None], fresh, params["ema_sum"])
    params["codebook"] = codebook
    return params
