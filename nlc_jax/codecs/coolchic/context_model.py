"""The ARM's context: causal neighbours, then inter-feature values (IFCE), float and integer.

Every coded grid (latents ``0 … n_levels-1``, then hyper-latents; see
:meth:`~nlc_jax.codecs.coolchic.arch.Arch.grid_levels`) gets as context its ``arm_context``
causal neighbours inside its coding tile. With IFCEs, the context of latent ``level <
ifce_levels`` continues with ``ifce_features`` values: a linear layer over every coarser grid
(coarser latents and all hyper-latents), each nearest-upsampled to level ``level + 1``, whose
output is nearest-upsampled once more to the grid's own size. The other grids get zeros there.
A grid's IFCE reads only grids of earlier decoding passes (:meth:`Arch.passes`).

Training evaluates this in float (:func:`float_contexts`); coding in exact integers
(:class:`IntFeatures`, the same activations as :class:`~nlc_jax.codecs.coolchic.arm.IntArm`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.coolchic.arch import Arch
from nlc_jax.codecs.coolchic.arm import (
    input_activations,
    int_layer,
    int_layer_weights,
    layer_steps,
)
from nlc_jax.codecs.coolchic.latent_coding import tile_context_mask
from nlc_jax.entropy.context import extract_context


def nearest_up(z: Any, factor: int, shape: tuple[int, int], xp: Any) -> Any:
    """``[h, w, ...]`` → ``[shape[0], shape[1], ...]``: nearest upsampling by ``factor`` (a
    power of two), cropped."""
    if factor > 1:
        z = xp.repeat(xp.repeat(z, factor, axis=0), factor, axis=1)
    return z[:shape[0], :shape[1]]


def ifce_input(grids: list, arch: Arch, level: int, xp: Any) -> Any:
    """``[h, w, n_in]`` IFCE input of latent ``level`` at level ``level + 1``'s size: every
    coarser grid (latents ``level+1 …``, then hyper-latents) nearest-upsampled to it."""
    levels = arch.grid_levels()
    shape = grids[level + 1].shape[:2]
    ups = [nearest_up(grids[g][..., None], 2 ** (levels[g] - level - 1), shape, xp)
           for g in range(level + 1, arch.n_grids)]
    return xp.concatenate(ups, axis=-1)


def float_contexts(grids: list, nets: dict, arch: Arch, offsets: np.ndarray) -> jnp.ndarray:
    """``[sum h_i·w_i, arm_width]`` float ARM contexts of all ``grids`` (quantized values,
    latents then hyper-latents, each ``[h_i, w_i]``), flattened grid after grid."""
    out = []
    for g, z in enumerate(grids):
        ctx = extract_context(z, offsets) * tile_context_mask(*z.shape, offsets, xp=jnp)
        if arch.ifce_levels:
            if g < arch.ifce_levels:
                p = nets["ifce"][f"l{g}"]
                f = ifce_input(grids, arch, g, jnp) @ p["w"] + p["b"]
                f = nearest_up(f, 2, z.shape, jnp)
            else:
                f = jnp.zeros(z.shape + (arch.ifce_features,), z.dtype)
            ctx = jnp.concatenate([ctx, f], axis=-1)
        out.append(ctx.reshape(-1, arch.arm_width))
    return jnp.concatenate(out)


class IntFeatures:
    """The integer IFCE as ``latent_coding.Features``: exact integer activations on any
    machine (``qifce`` integer weights with steps ``2^-k``, ``exps = {"weight", "bias"}`` or
    one such dict per layer, see ``arm.layer_steps``;
    ``shapes``: every grid's ``(h, w)``)."""

    def __init__(self, arch: Arch, qifce: dict | None, exps: dict | None,
                 shapes: list[tuple[int, int]]):
        self.arch, self.shapes = arch, [tuple(s) for s in shapes]
        self.layers = ({i: int_layer_weights(qifce[f"l{i}"], layer_steps(exps, f"l{i}"))
                        for i in range(arch.ifce_levels)} if arch.ifce_levels else {})

    def __call__(self, pass_index: int, grids: list) -> list[np.ndarray] | None:
        arch = self.arch
        if not arch.ifce_levels:
            return None
        members = arch.passes()[pass_index]
        if pass_index == 0:
            return [np.zeros(self.shapes[g] + (arch.ifce_features,)) for g in members]
        (level,) = members
        u = input_activations(ifce_input(grids, arch, level, np))
        f = int_layer(u.reshape(-1, u.shape[-1]), self.layers[level])
        f = f.reshape(u.shape[:2] + (arch.ifce_features,))
        return [nearest_up(f, 2, self.shapes[level], np)]

