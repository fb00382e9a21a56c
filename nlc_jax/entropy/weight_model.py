"""Entropy model for network weights: learned per-tensor steps, a Laplace prior, range coding.

Codecs whose bitstream is mostly (or only) their decoder's weights — Noise-to-Latent sends no
latents at all — need the weights' rate in the training loss. :class:`WeightEntropyModel` is one
object for that concept, in the style of CompressAI's entropy models:

* **training**: every tensor (pytree leaf) ``w`` has a learned log2 step ``s``; its integer-domain
  value ``u = w · 2^-s`` goes through a quantization proxy (additive uniform noise, or
  straight-through rounding) and the weights used by the network are ``û · 2^s``. The rate is
  ``Σ −log2 P(û)`` under a zero-mean discretized Laplace whose scale is the maximum-likelihood
  estimate ``mean |û|`` (held constant for the gradient). :meth:`quantize` returns both.
* **coding**: :meth:`compress` snaps each step to ``2^(k/8)`` (an integer ``k``), rounds the
  weights to integers ``q``, picks the Laplace scale from the coder's table that codes ``q`` in
  the fewest bits, and range codes all tensors with ``nlc_jax.entropy.coding``. The decoder
  (:meth:`decompress`) gets ``k``, the scale index and ``q``, and computes ``q · 2^(k/8)`` in
  float32 from an exact table of the eight fractional powers, so the dequantized weights are
  bit-identical on every machine.

Layout of :meth:`compress`'s bytes: per tensor in pytree order ``svarint k`` and ``uvarint``
scale index, then one range-coded stream of all tensors' integers (same order, C order).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.entropy.coding import (
    SCALE_TABLE,
    ConditionalDecoder,
    ConditionalEncoder,
    exact_bits,
    scale_index,
)
from nlc_jax.entropy.distributions import bits as info_bits
from nlc_jax.entropy.distributions import laplace_pmf
from nlc_jax.entropy.quantization import quantize as quantize_proxy

STEP_RESOLUTION = 8  # coded steps are 2^(k / STEP_RESOLUTION)
K_MIN, K_MAX = -24 * STEP_RESOLUTION, 8 * STEP_RESOLUTION
MAX_INT = 2 ** 20  # |integer weight| bound
# float32 values of 2^(j/8), j = 0..7, written out so that no libm is involved in decoding.
_FRACTIONAL_POWERS = np.array([float.fromhex(h) for h in (
    "0x1.0000000000000p+0", "0x1.172b840000000p+0", "0x1.306fe00000000p+0",
    "0x1.4bfdae0000000p+0", "0x1.6a09e60000000p+0", "0x1.8ace540000000p+0",
    "0x1.ae89fa0000000p+0", "0x1.d5818e0000000p+0")], np.float32)
_SCALE_SEARCH = range(-8, 9, 2)  # scale-table offsets tried around the ML estimate
MIN_TRAINING_SCALE = 0.05  # lower bound of the Laplace scale used in the training rate


def step_value(k: int) -> np.float32:
    """The coded step ``2^(k/8)`` as an exact float32 (integer ``k`` in ``[K_MIN, K_MAX]``)."""
    whole, frac = divmod(int(k), STEP_RESOLUTION)
    return np.float32(np.ldexp(_FRACTIONAL_POWERS[frac], whole))


def _leaves(tree: Any) -> list[tuple[Any, Any]]:
    return jax.tree_util.tree_leaves_with_path(tree)


class WeightEntropyModel:
    """Learned quantization steps and a Laplace entropy model for a pytree of weights.

    Args:
      init_log2_step: initial log2 step of every tensor (−7: steps of 1/128).
    """

    def __init__(self, init_log2_step: float = -7.0):
        self.init_log2_step = float(init_log2_step)

    # ---- training ---------------------------------------------------------------------------
    def init_steps(self, tree: Any) -> Any:
        """A pytree shaped like ``tree`` with one float32 scalar (log2 step) per tensor."""
        return jax.tree.map(lambda _: jnp.float32(self.init_log2_step), tree)

    def quantize(self, tree: Any, log2_steps: Any, mode: str, rng: jax.Array | None = None
                 ) -> tuple[Any, jax.Array]:
        """Weights as the network sees them under proxy ``mode`` and their estimated bits.

        Args:
          tree: float weights (any pytree of arrays).
          log2_steps: from :meth:`init_steps` (trained jointly).
          mode: ``"noise"`` (additive uniform noise), ``"ste"`` or ``"round"``.
          rng: needed by ``"noise"``.

        Returns:
          (dequantized weights shaped like ``tree``, total bits: float32 scalar).
        """
        leaves, treedef = jax.tree.flatten(tree)
        steps = jnp.stack([jnp.asarray(s, jnp.float32)
                           for s in treedef.flatten_up_to(log2_steps)])
        # All tensors as one vector: a handful of ops whatever the number of tensors.
        sizes = np.array([np.size(w) for w in leaves])
        segment = jnp.asarray(np.repeat(np.arange(len(leaves)), sizes))
        flat = jnp.concatenate([jnp.ravel(w) for w in leaves])
        step = jnp.exp2(steps)[segment]
        u = quantize_proxy(flat / step, mode, rng)
        mean_abs = jax.ops.segment_sum(jnp.abs(u), segment, len(leaves)) / np.maximum(sizes, 1)
        scale = jax.lax.stop_gradient(jnp.maximum(mean_abs, MIN_TRAINING_SCALE))[segment]
        total = jnp.sum(info_bits(laplace_pmf(u, 0.0, scale)))
        deq = u * step
        bounds = np.cumsum(sizes)[:-1].tolist()
        out = [piece.reshape(np.shape(w))
               for piece, w in zip(jnp.split(deq, bounds), leaves, strict=True)]
        return jax.tree.unflatten(treedef, out), total

    # ---- coding -----------------------------------------------------------------------------
    def compress(self, tree: Any, log2_steps: Any) -> tuple[bytes, Any, dict[str, int]]:
        """Code ``tree`` under its learned steps.

        Returns:
          (bytes, the dequantized float32 numpy weights the decoder will get, coded bits per
          top-level module of the tree).
        """
        leaves, treedef = jax.tree.flatten(tree)
        steps = treedef.flatten_up_to(log2_steps)
        header, encoder, deq = ByteWriter(), ConditionalEncoder("laplace"), []
        module_bits: dict[str, int] = {}
        paths = [path for path, _ in _leaves(tree)]
        for path, w, s in zip(paths, leaves, steps, strict=True):
            k = int(np.clip(np.rint(float(s) * STEP_RESOLUTION), K_MIN, K_MAX))
            step = step_value(k)
            q = np.clip(np.rint(np.asarray(w, np.float64) / np.float64(step)),
                        -MAX_INT, MAX_INT).astype(np.int64)
            idx = self._best_scale(q)
            header.svarint(k).uvarint(idx)
            before = encoder.num_bits()
            encoder.encode(q, 0.0, SCALE_TABLE[idx])
            name = str(getattr(path[0], "key", path[0]))
            module_bits[name] = module_bits.get(name, 0) + encoder.num_bits() - before
            deq.append(q.astype(np.float32) * step)
        return header.getvalue() + encoder.finish(), jax.tree.unflatten(treedef, deq), module_bits

    @staticmethod
    def _best_scale(q: np.ndarray) -> int:
        """Scale-table index that codes ``q`` in the fewest bits (searched near mean |q|)."""
        centre = int(scale_index(np.maximum(np.mean(np.abs(q)) if q.size else 0.0, 1e-3)))
        candidates = sorted({min(max(centre + d, 0), len(SCALE_TABLE) - 1)
                             for d in _SCALE_SEARCH})
        if q.size == 0:
            return centre
        costs = [exact_bits(q, 0.0, SCALE_TABLE[i]) for i in candidates]
        return candidates[int(np.argmin(costs))]

    def decompress(self, data: bytes, template: Any) -> Any:
        """Bytes from :meth:`compress` → float32 numpy weights shaped like ``template``.

        Raises:
          BitstreamError: truncated, corrupt or inconsistent data.
        """
        leaves, treedef = jax.tree.flatten(template)
        reader = ByteReader(data, "network weights")
        params = []
        for _ in leaves:
            k, idx = reader.svarint(), reader.uvarint(len(SCALE_TABLE) - 1)
            if not K_MIN <= k <= K_MAX:
                raise BitstreamError(f"network weights: step exponent {k} out of range")
            params.append((k, idx))
        decoder = ConditionalDecoder(reader.raw(reader.remaining), "laplace")
        out = []
        for leaf, (k, idx) in zip(leaves, params, strict=True):
            shape = np.shape(leaf)
            q = decoder.decode(np.zeros(shape), np.full(shape, SCALE_TABLE[idx]))
            if q.size and np.abs(q).max() > MAX_INT:
                raise BitstreamError("network weights: value out of range")
            out.append(q.astype(np.float32) * step_value(k))
        return jax.tree.unflatten(treedef, out)
