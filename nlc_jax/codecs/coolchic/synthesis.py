"""COOL-CHIC synthesis: the layer stack of an :class:`Arch` plus its linear stabiliser
(``jax.numpy`` in training, ``numpy`` in decoding; see ``nlc_jax.codecs.overfitted``)."""

from __future__ import annotations

from typing import Any

from nlc_jax.codecs.coolchic.arch import Arch
from nlc_jax.codecs.overfitted.layers import apply_layers, conv


def synthesize(features: Any, syn: dict, arch: Arch, xp: Any, mask: Any = None) -> Any:
    """Feature stack ``[H, W, n_levels]`` → ``[H, W, out_channels]`` (unclipped, [0, 1] scale
    for pixels), plus the 1×1 linear stabiliser ``syn["stab"]`` of the features if present."""
    x = apply_layers(features, syn, arch.synthesis, xp, mask, arch.edge_padding)
    if "stab" in syn:
        x = x + conv(features, syn["stab"]["w"], syn["stab"]["b"], xp)
    return x
