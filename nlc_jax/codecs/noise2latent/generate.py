"""Noise → latents → image, written once for ``jax.numpy`` (training) and ``numpy`` (decoding).

Every function takes the array module ``xp`` (as COOL-CHIC's ``synthesis`` module does). On a
padded training bucket ``masks`` zero every grid outside the true image after each operation,
so the valid region equals what the decoder computes at the true size (the noise itself is
position-indexed, see ``nlc_jax.entropy.seeded_noise``).
"""

from __future__ import annotations

from typing import Any

from nlc_jax.codecs.noise2latent.arch import N2LArch
from nlc_jax.codecs.overfitted.layers import apply_layers
from nlc_jax.codecs.overfitted.padding import apply_mask
from nlc_jax.codecs.overfitted.upsampling import BICUBIC_HALF, upsample, upsample2x


def generate_latents(noise: tuple, gpp: dict, arch: N2LArch, xp: Any,
                     masks: list | None = None) -> list:
    """Latent pyramid from the noise pyramid, coarsest level first.

    Args:
      noise: ``n_levels`` grids ``[h_i, w_i, noise_channels]`` (level 0 is full resolution).
      gpp: ``{"level<i>": {"l<j>": {"w", "b"}}}``, one layer stack per level.
      masks: per level ``[h_i, w_i]`` validity masks, or ``None`` at the true size.

    Returns:
      ``n_levels`` latents ``[h_i, w_i]``: ``μ + softplus(ρ) · ε[..., 0]`` with ``(μ, ρ)`` the
      GPP's two outputs.
    """
    latents: list = [None] * arch.n_levels
    bicubic = xp.asarray(BICUBIC_HALF)
    for level in range(arch.n_levels - 1, -1, -1):
        eps = noise[level]
        mask = None if masks is None else masks[level]
        inp = eps
        if arch.conditional:
            h, w = eps.shape[:2]
            if level == arch.n_levels - 1:
                cond = xp.zeros((h, w, 1), eps.dtype)
            else:
                cond = upsample2x(latents[level + 1][..., None], bicubic, xp)[:h, :w]
            inp = xp.concatenate([eps, apply_mask(cond, mask)], axis=-1)
        out = apply_layers(inp, gpp[f"level{level}"], arch.gpp[level], xp, mask)
        sigma = xp.logaddexp(out[..., 1], xp.zeros((), out.dtype))  # softplus
        latents[level] = apply_mask(out[..., 0] + sigma * eps[..., 0], mask)
    return latents


def decode_image(noise: tuple, nets: dict, arch: N2LArch, xp: Any, masks: list | None = None
                 ) -> Any:
    """Noise pyramid and networks → ``[H, W, 3]`` image (unclipped, [0, 1] scale)."""
    latents = generate_latents(noise, nets["gpp"], arch, xp, masks)
    feats = upsample(latents, nets["upsampling"], xp, masks)
    return apply_layers(feats, nets["synthesis"], arch.synthesis, xp,
                        None if masks is None else masks[0])
