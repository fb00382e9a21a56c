"""Rate-distortion optimised quantization (RDOQ) of network weights, after the step search.

Once every group of a decoder's weights has its power-of-two step (``param_coding.search_steps``),
each integer ``q`` is plain rounding of a float weight. Rounding is not the best choice when a
weight's bits and its effect on the loss are both counted: a greedy coordinate search moves
single integers by ±1, ±2, … (as Cool-chic 5's RDOQ of its weights) and keeps the move with the
lowest ``objective + λ · weight bits / pixels``. The bits are those of the coding scheme
(``param_coding``): range coding with each leaf's model held fixed during the search, or signed
Exp-Golomb codes.

Modules (the top-level keys of the pytree) are refined one after the other in name order, the
values of each in a seeded random order. ``make_cost(module, weights)`` gives the loss of a
batch of that module's float weights (leaves ``[K, ...]`` → ``[K]``), the other modules fixed at
``weights`` (so a codec can skip what the module does not change: the synthesis needs no entropy
model, the ARM no synthesis, and keep the compiled function across images); both directions
of a value are scored in one batched call. Code lengths can be flat over several values
(Exp-Golomb lengths between powers of two), so a direction is not abandoned at the first move
that does not help (Cool-chic stops there): it is followed until the objective alone has risen
by more than the bits the value could possibly save, or for ``max_shift`` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax import compilation
from nlc_jax.entropy import param_coding

MakeCost = Callable[[str, dict], Callable[[Any], jax.Array]]


def _code_length(v: int) -> int:
    """Order-0 signed Exp-Golomb length of ``v``."""
    u = 2 * v if v >= 0 else -2 * v - 1
    return 2 * int(u + 1).bit_length() - 1


def single_objective(objective: Callable[[dict], jax.Array]) -> MakeCost:
    """``make_cost`` from one loss of the whole float pytree (compiled anew per module)."""
    def make(module: str, weights: dict) -> Callable[[Any], jax.Array]:
        return compilation.jit(jax.vmap(lambda sub: objective({**weights, module: sub})))
    return make


class _GolombLengths:
    """Exp-Golomb bits of a module's groups: per group, the code length of all its values at
    every order, so a move of one value updates the group's bits (the best order's total) in
    O(orders)."""

    def __init__(self, groups: list[str], values: list[np.ndarray]):
        self.groups = groups
        self.orders = np.arange(param_coding.MAX_EG_ORDER + 1)
        self.lengths: dict[str, np.ndarray] = {}
        for g, v in zip(groups, values, strict=True):
            self.lengths[g] = self.lengths.get(g, 0) + self._lengths(v.ravel()).sum(axis=0)

    def _lengths(self, v: np.ndarray) -> np.ndarray:
        """``[n, orders]`` Exp-Golomb lengths of the signed integers ``v`` at every order."""
        u = np.where(v >= 0, 2 * v, -2 * v - 1)[:, None] + (1 << self.orders)[None, :]
        _, bit_length = np.frexp(u.astype(np.float64))
        return 2 * bit_length.astype(np.int64) - 1 - self.orders[None, :]

    def _delta(self, old: int, new: int) -> np.ndarray:
        return self._lengths(np.array([new]))[0] - self._lengths(np.array([old]))[0]

    def bits(self, i: int | None = None, old: int = 0, new: int = 0) -> float:
        """The module's bits (16 header bits per group, as ``param_coding.group_bits``), with
        value ``old`` of leaf ``i`` replaced by ``new`` if ``i`` is given."""
        total = 0
        for g, lengths in self.lengths.items():
            if i is not None and g == self.groups[i]:
                lengths = lengths + self._delta(old, new)
            total += int(lengths.min()) + 16
        return float(total)

    def set(self, i: int, old: int, new: int) -> None:
        self.lengths[self.groups[i]] = self.lengths[self.groups[i]] + self._delta(old, new)

    def bound(self, i: int, v: int) -> float:
        """Bits that moving value ``v`` of leaf ``i`` could save at most (its order-0 length
        plus 16, which bounds a change of the group's code order)."""
        return float(_code_length(v) + 16)


class _ModelLengths:
    """Range-coded bits of a module: every leaf keeps the model chosen for its rounded values
    (``param_coding.best_model``) during the search; the encoder chooses again afterwards,
    which can only lower the bits."""

    def __init__(self, groups: list[str], values: list[np.ndarray]):
        self.models: list[int] = [0] * len(values)
        self.header = 16.0 * len(set(groups))
        for g in dict.fromkeys(groups):
            members = [i for i, name in enumerate(groups) if name == g]
            model, _ = param_coding.best_model(np.concatenate([values[i].ravel()
                                                               for i in members]))
            for i in members:
                self.models[i] = model
        self.leaf_bits = [float(param_coding.model_bits(v, m).sum()) if v.size else 0.0
                          for v, m in zip(values, self.models, strict=True)]
        self._cache: dict[tuple[int, int], float] = {}

    def _value(self, i: int, v: int) -> float:
        key = (self.models[i], v)
        if key not in self._cache:
            self._cache[key] = float(param_coding.model_bits(np.array([v]), key[0])[0])
        return self._cache[key]

    def bits(self, i: int | None = None, old: int = 0, new: int = 0) -> float:
        total = self.header + sum(self.leaf_bits)
        if i is not None:
            total += self._value(i, new) - self._value(i, old)
        return total

    def set(self, i: int, old: int, new: int) -> None:
        self.leaf_bits[i] += self._value(i, new) - self._value(i, old)

    def bound(self, i: int, v: int) -> float:
        return self._value(i, v) + 8.0


class _Module:
    """One module's integer leaves, its vmapped objective and its exact weight bits."""

    def __init__(self, name: str, qsub: Any, exps: dict[str, int], cost_of, lmbda: float,
                 n_pixels: int, scheme: str):
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(qsub)
        groups = [param_coding.group_of((jax.tree_util.DictKey(name),) + tuple(p), scheme)
                  for p, _ in leaves]
        self.values = [np.array(leaf, np.int64) for _, leaf in leaves]
        self.scale = [2.0 ** -exps[g] for g in groups]
        self.cost_of = cost_of
        self.lmbda, self.n_pixels = lmbda, n_pixels
        lengths = _GolombLengths if scheme == param_coding.EXP_GOLOMB else _ModelLengths
        self.lengths = lengths(groups, self.values)

    def tree(self) -> Any:
        return jax.tree_util.tree_unflatten(self.treedef, self.values)

    def rate(self, i: int | None = None, old: int = 0, new: int = 0) -> float:
        """``λ · bits / pixels`` of the module, with value ``old`` of leaf ``i`` replaced by
        ``new`` if ``i`` is given."""
        return self.lmbda * self.lengths.bits(i, old, new) / self.n_pixels

    def bound(self, i: int, v: int) -> float:
        """``λ · bits / pixels`` that moving value ``v`` of leaf ``i`` could save at most."""
        return self.lmbda * self.lengths.bound(i, v) / self.n_pixels

    def set(self, i: int, j: int, value: int) -> None:
        """Set value ``j`` of leaf ``i`` (keeping the code lengths up to date)."""
        self.lengths.set(i, int(self.values[i].flat[j]), value)
        self.values[i].flat[j] = value

    def costs(self, i: int, j: int, candidates: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(cost, objective) ``[len(candidates)]`` of setting value ``j`` of leaf ``i`` to each
        candidate integer."""
        k = len(candidates)
        stacked = [np.repeat((v * s).astype(np.float32)[None], k, axis=0)
                   for v, s in zip(self.values, self.scale, strict=True)]
        stacked[i].reshape(k, -1)[:, j] = np.asarray(candidates, np.float64) * self.scale[i]
        loss = np.asarray(self.cost_of(jax.tree_util.tree_unflatten(
            self.treedef, [jnp.asarray(s) for s in stacked])), np.float64)
        old = int(self.values[i].flat[j])
        rates = [self.rate(i, old, c) for c in candidates]
        return loss + np.asarray(rates), loss


def refine(qtree: dict, exps: dict[str, int], make_cost: MakeCost, lmbda: float,
           n_pixels: int, passes: int = 1, max_shift: int = 15, seed: int = 0,
           scheme: str = param_coding.RANGE) -> dict:
    """Greedy RDOQ of the integer pytree ``qtree`` (from ``param_coding.quantize``).

    Args:
      qtree: ``{module: integer subtree}``; modules whose groups are all absent from ``exps``
        are left alone.
      exps: every group's step exponent (step ``2^-k``).
      make_cost: ``(module, float weights of every module) → (float subtrees with a leading
        batch axis → [K] losses)`` (see :func:`single_objective`).
      lmbda, n_pixels: weight bits enter the cost as ``λ · bits / n_pixels``.
      passes: sweeps over all values.
      max_shift: largest move of one value, in steps.
      seed: order of the values.
      scheme: the weight coding scheme whose bits are counted (``param_coding.SCHEMES``).

    Returns:
      The refined integer pytree (same structure; a module's cost never rises).
    """
    out = dict(qtree)
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        for name in sorted(out):
            groups = param_coding.groups({name: out[name]}, scheme)
            if not groups or any(g not in exps for g in groups):
                continue
            weights = param_coding.dequantize(out, exps)
            mod = _Module(name, out[name], exps, make_cost(name, weights), lmbda, n_pixels,
                          scheme)
            slots = [(i, j) for i, v in enumerate(mod.values) for j in range(v.size)]
            if not slots:
                continue
            i0, j0 = slots[0]
            first = mod.costs(i0, j0, [int(mod.values[i0].flat[j0])])
            best, best_obj = float(first[0][0]), float(first[1][0])
            for s in rng.permutation(len(slots)):
                i, j = slots[s]
                v0 = int(mod.values[i].flat[j])
                bound = mod.bound(i, v0)
                obj0, (c1, o1) = best_obj, mod.costs(i, j, [v0 + 1, v0 - 1])
                v = v0
                for k, step in enumerate((1, -1)):
                    c, o = float(c1[k]), float(o1[k])
                    for shift in range(1, max_shift + 1):
                        if shift > 1:
                            cs, os_ = mod.costs(i, j, [v0 + step * shift])
                            c, o = float(cs[0]), float(os_[0])
                        if c < best:
                            best, best_obj, v = c, o, v0 + step * shift
                        if o - obj0 > bound:
                            break
                mod.set(i, j, int(np.clip(v, -param_coding.MAX_INT, param_coding.MAX_INT)))
            out[name] = mod.tree()
    return out
