"""Network parameters as part of the bitstream: quantization, step-size search, coding, rate proxy.

An overfitted codec sends its decoder's weights. A pytree of float weights (nested dicts) is split
into *groups*: the weights and the biases of each top-level module (``"arm/weight"``,
``"arm/bias"``, ``"synthesis/weight"``, …). Every group has one quantization step ``2^-k``
(power-of-two steps let integer decoders use shifts) and its integers are written with a signed
exponential-Golomb code whose order is chosen per group (Cool-chic codes its weights the same
way). The steps are chosen by :func:`search_steps`, which minimises
``objective(dequantized weights) + λ · weight bits / pixels`` group by group.

Layout of :func:`encode_params`: per group (sorted by name) one byte ``k`` and one byte
Exp-Golomb order, then the codes of all values (groups sorted, leaves in pytree order, values in
C order), packed MSB-first into bytes. The decoder gets the shapes from a template pytree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.bitstream.errors import BitstreamError

MAX_INT = 2 ** 20            # |quantized value| bound (integer decoders rely on it)
EXPONENTS = tuple(range(0, 17))  # candidate steps 2^-k
MAX_EG_ORDER = 15


def group_of(path: tuple) -> str:
    """Group name of a leaf: ``"<top-level key>/<weight|bias>"`` (biases are leaves named "b")."""
    keys = [getattr(p, "key", getattr(p, "name", str(p))) for p in path]
    return f"{keys[0]}/{'bias' if keys[-1] == 'b' else 'weight'}"


def _leaves(tree: Any) -> list[tuple[str, Any]]:
    return [(group_of(path), leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)]


def groups(tree: Any) -> list[str]:
    """Sorted group names of a pytree."""
    return sorted({g for g, _ in _leaves(tree)})


def quantize(tree: Any, exps: dict[str, int]) -> Any:
    """Integers ``round(w · 2^k)`` (clipped to ±MAX_INT) of the groups in ``exps``, int64 numpy.

    Leaves of groups absent from ``exps`` are returned unchanged.
    """
    def one(path, leaf):
        g = group_of(path)
        if g not in exps:
            return leaf
        q = np.rint(np.asarray(leaf, np.float64) * 2.0 ** exps[g])
        return np.clip(q, -MAX_INT, MAX_INT).astype(np.int64)
    return jax.tree_util.tree_map_with_path(one, tree)


def dequantize(qtree: Any, exps: dict[str, int]) -> Any:
    """Float32 weights ``q · 2^-k`` of the groups in ``exps`` (others unchanged)."""
    def one(path, leaf):
        g = group_of(path)
        return (np.asarray(leaf, np.float64) * 2.0 ** -exps[g]).astype(np.float32) \
            if g in exps else leaf
    return jax.tree_util.tree_map_with_path(one, qtree)


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.int64)
    return np.where(v >= 0, 2 * v, -2 * v - 1)


def _eg_lengths(u: np.ndarray, order: int) -> np.ndarray:
    """Bit lengths of order-``order`` Exp-Golomb codes of non-negative ``u``."""
    _, length = np.frexp((u + (1 << order)).astype(np.float64))  # bit length (exact < 2^53)
    return 2 * length.astype(np.int64) - 1 - order


def _best_order(u: np.ndarray) -> tuple[int, int]:
    costs = [int(_eg_lengths(u, k).sum()) for k in range(MAX_EG_ORDER + 1)]
    k = int(np.argmin(costs))
    return k, costs[k]


def group_bits(qtree: Any) -> dict[str, int]:
    """Exact coded bits of each group of an integer pytree (16 header bits included)."""
    values: dict[str, list] = {}
    for g, leaf in _leaves(qtree):
        values.setdefault(g, []).append(np.ravel(leaf))
    return {g: _best_order(_zigzag(np.concatenate(v)))[1] + 16 for g, v in values.items()}


def encode_params(qtree: Any, exps: dict[str, int]) -> bytes:
    """Integer pytree (from :func:`quantize`) and its steps → bytes."""
    values: dict[str, list] = {}
    for g, leaf in _leaves(qtree):
        values.setdefault(g, []).append(np.ravel(leaf))
    header, bits = bytearray(), []
    for g in sorted(values):
        u = _zigzag(np.concatenate(values[g]))
        order, _ = _best_order(u)
        header += bytes([exps[g], order])
        for n in (u + (1 << order)).tolist():
            code = bin(n)[2:]
            bits.append("0" * (len(code) - 1 - order) + code)
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes(header) + int(stream or "0", 2).to_bytes(len(stream) // 8, "big")


def decode_params(data: bytes, template: Any) -> tuple[Any, dict[str, int]]:
    """Bytes → (integer pytree shaped like ``template``, steps). Raises :class:`BitstreamError`."""
    names = groups(template)
    if len(data) < 2 * len(names):
        raise BitstreamError("network parameters: truncated header")
    exps = {g: data[2 * i] for i, g in enumerate(names)}
    orders = {g: data[2 * i + 1] for i, g in enumerate(names)}
    if any(k > max(EXPONENTS) for k in exps.values()) or \
            any(o > MAX_EG_ORDER for o in orders.values()):
        raise BitstreamError("network parameters: invalid step or code order")
    body = data[2 * len(names):]
    stream = bin(int.from_bytes(body, "big"))[2:].zfill(8 * len(body)) if body else ""
    pos = 0

    def read(count: int, order: int) -> np.ndarray:
        nonlocal pos
        out = np.empty(count, np.int64)
        for i in range(count):
            one = stream.find("1", pos)
            if one < 0 or one - pos > 40:
                raise BitstreamError("network parameters: truncated or corrupt codes")
            n_bits = one - pos + 1 + order
            if one + n_bits > len(stream):
                raise BitstreamError("network parameters: truncated codes")
            out[i] = int(stream[one:one + n_bits], 2) - (1 << order)
            pos = one + n_bits
        return out

    leaves_by_group: dict[str, list] = {}
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    for i, (path, leaf) in enumerate(flat):
        leaves_by_group.setdefault(group_of(path), []).append((i, np.shape(leaf)))
    result: list = [None] * len(flat)
    for g in names:
        shapes = leaves_by_group[g]
        u = read(sum(int(np.prod(s)) for _, s in shapes), orders[g])
        v = np.where(u % 2 == 0, u // 2, -(u + 1) // 2)
        if np.abs(v).max(initial=0) > MAX_INT:
            raise BitstreamError("network parameters: value out of range")
        start = 0
        for i, shape in shapes:
            size = int(np.prod(shape))
            result[i] = v[start:start + size].reshape(shape)
            start += size
    return jax.tree_util.tree_unflatten(treedef, result), exps


def rate_proxy_bits(tree: Any, exps: dict[str, int], order: int = 0) -> jax.Array:
    """Differentiable estimate of the coded bits of a float pytree under steps ``exps``.

    A smooth version of the Exp-Golomb length ``2·log2(u / 2^order + 1) + 1 + order`` of the
    zig-zagged value ``u = 2|w| / step``; usable as a training penalty on the weights.
    """
    total = jnp.float32(0.0)
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        g = group_of(path)
        if g in exps:
            u = 2.0 * jnp.abs(leaf) * 2.0 ** exps[g]
            total = total + jnp.sum(2.0 * jnp.log2(u / 2.0 ** order + 1.0) + 1.0 + order)
    return total


def search_steps(tree: Any, objective: Callable[[Any], float], lmbda: float, n_pixels: int,
                 exponents: tuple[int, ...] = EXPONENTS, patience: int = 2
                 ) -> tuple[dict[str, int], float]:
    """Per-group step search minimising ``objective(weights) + λ · weight bits / n_pixels``.

    Groups are visited in order; each tries the steps ``2^-k`` from fine to coarse with the
    already chosen groups quantized and the others still float, and stops ``patience`` steps
    after the cost last improved (ties go to the coarser step). Going from fine to coarse
    matters: at coarse steps a group of small values rounds to all zeros, where the costs are
    flat or non-monotone, and a coarse-to-fine search stopped there and zeroed the group (small
    synthesis biases: a global colour shift).

    Args:
      tree: float weights.
      objective: dequantized pytree → distortion (+ λ · other rates), a Python float.
      lmbda, n_pixels: the rate weight and the pixel count the bits are divided by.

    Returns:
      (steps ``{group: k}``, the final cost).
    """
    chosen: dict[str, int] = {}
    best_cost = float("inf")
    for g in groups(tree):
        best_k, best_cost, worse = None, float("inf"), 0
        for k in sorted(exponents, reverse=True):
            exps = {**chosen, g: k}
            q = quantize(tree, exps)
            bits = sum(b for name, b in group_bits(_only(q, exps)).items() if name in exps)
            cost = objective(dequantize(q, exps)) + lmbda * bits / n_pixels
            if cost <= best_cost:
                best_k, best_cost, worse = k, cost, 0
            else:
                worse += 1
                if worse >= patience:
                    break
        chosen[g] = best_k
    return chosen, best_cost


def _only(qtree: Any, exps: dict[str, int]) -> Any:
    """The leaves of the quantized groups (float leaves replaced by empty arrays)."""
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x if group_of(p) in exps else np.zeros(0, np.int64), qtree)
