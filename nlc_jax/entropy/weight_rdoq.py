"""Rate-distortion optimised quantization (RDOQ) of network weights, after the step search.

Once every group of a decoder's weights has its power-of-two step (``param_coding.search_steps``),
each integer ``q`` is plain rounding of a float weight. Rounding is not the best choice when a
weight's bits (signed Exp-Golomb) and its effect on the loss are both counted: a greedy
coordinate search moves single integers by ±1, ±2, … (as Cool-chic 5's RDOQ of its weights) and
keeps the move with the lowest ``objective + λ · weight bits / pixels``.

Modules (the top-level keys of the pytree) are refined one after the other in name order, the
values of each in a seeded random order. ``make_objective(module, weights)`` gives the loss as a
function of that module's float weights alone, the other modules fixed at ``weights`` (so a
codec can skip what the module does not change: the synthesis needs no entropy model, the ARM no
synthesis); both directions of a value are scored in one vmapped call. Exp-Golomb lengths are
flat between powers of two, so a direction is not abandoned at the first move that does not help
(Cool-chic stops there): it is followed until the objective alone has risen by more than the
bits the value could possibly save (its order-0 code length plus 16, which bounds a change of
the group's code order), or for ``max_shift`` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.entropy import param_coding

MakeObjective = Callable[[str, dict], Callable[[Any], jax.Array]]


def _code_length(v: int) -> int:
    """Order-0 signed Exp-Golomb length of ``v``."""
    u = 2 * v if v >= 0 else -2 * v - 1
    return 2 * int(u + 1).bit_length() - 1


def single_objective(objective: Callable[[dict], jax.Array]) -> MakeObjective:
    """``make_objective`` from one loss of the whole float pytree (the simple, slow case)."""
    def make(module: str, weights: dict) -> Callable[[Any], jax.Array]:
        return lambda sub: objective({**weights, module: sub})
    return make


class _Module:
    """One module's integer leaves, its vmapped objective and its exact weight bits."""

    def __init__(self, name: str, qsub: Any, exps: dict[str, int], objective, lmbda: float,
                 n_pixels: int):
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(qsub)
        self.groups = [param_coding.group_of((jax.tree_util.DictKey(name),) + tuple(p))
                       for p, _ in leaves]
        self.values = [np.array(leaf, np.int64) for _, leaf in leaves]
        self.scale = [2.0 ** -exps[g] for g in self.groups]
        self.cost_of = jax.jit(jax.vmap(objective))
        self.lmbda, self.n_pixels = lmbda, n_pixels

    def tree(self) -> Any:
        return jax.tree_util.tree_unflatten(self.treedef, self.values)

    def rate(self) -> float:
        bits = param_coding.group_bits({"m": self.tree()})
        return self.lmbda * sum(bits.values()) / self.n_pixels

    def costs(self, i: int, j: int, candidates: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(cost, objective) ``[len(candidates)]`` of setting value ``j`` of leaf ``i`` to each
        candidate integer."""
        k = len(candidates)
        stacked = [np.repeat((v * s).astype(np.float32)[None], k, axis=0)
                   for v, s in zip(self.values, self.scale, strict=True)]
        stacked[i].reshape(k, -1)[:, j] = np.asarray(candidates, np.float64) * self.scale[i]
        loss = np.asarray(self.cost_of(jax.tree_util.tree_unflatten(
            self.treedef, [jnp.asarray(s) for s in stacked])), np.float64)
        rates = []
        old = self.values[i].flat[j]
        for c in candidates:
            self.values[i].flat[j] = c
            rates.append(self.rate())
        self.values[i].flat[j] = old
        return loss + np.asarray(rates), loss


def refine(qtree: dict, exps: dict[str, int], make_objective: MakeObjective, lmbda: float,
           n_pixels: int, passes: int = 1, max_shift: int = 15, seed: int = 0) -> dict:
    """Greedy RDOQ of the integer pytree ``qtree`` (from ``param_coding.quantize``).

    Args:
      qtree: ``{module: integer subtree}``; modules whose groups are all absent from ``exps``
        are left alone.
      exps: every group's step exponent (step ``2^-k``).
      make_objective: ``(module, float weights of every module) → (float subtree → scalar
        loss)``, traceable by JAX (see :func:`single_objective`).
      lmbda, n_pixels: weight bits enter the cost as ``λ · bits / n_pixels``.
      passes: sweeps over all values.
      max_shift: largest move of one value, in steps.
      seed: order of the values.

    Returns:
      The refined integer pytree (same structure; a module's cost never rises).
    """
    out = dict(qtree)
    rng = np.random.default_rng(seed)
    for _ in range(passes):
        for name in sorted(out):
            groups = param_coding.groups({name: out[name]})
            if not groups or any(g not in exps for g in groups):
                continue
            weights = param_coding.dequantize(out, exps)
            mod = _Module(name, out[name], exps, make_objective(name, weights), lmbda, n_pixels)
            slots = [(i, j) for i, v in enumerate(mod.values) for j in range(v.size)]
            if not slots:
                continue
            i0, j0 = slots[0]
            first = mod.costs(i0, j0, [int(mod.values[i0].flat[j0])])
            best, best_obj = float(first[0][0]), float(first[1][0])
            for s in rng.permutation(len(slots)):
                i, j = slots[s]
                v0 = int(mod.values[i].flat[j])
                bound = lmbda * (_code_length(v0) + 16) / n_pixels
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
                mod.values[i].flat[j] = np.clip(v, -param_coding.MAX_INT, param_coding.MAX_INT)
            out[name] = mod.tree()
    return out
