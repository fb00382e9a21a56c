"""Adversarial part of GLC's training (as VQGAN): a PatchGAN discriminator, hinge losses and
VQGAN's adaptive weight of the generator's GAN loss.

One optimizer trains generator and discriminator together: the generator's loss sees the
discriminator's parameters through ``stop_gradient`` and the discriminator's loss sees the
reconstruction through ``stop_gradient``, so the gradient of their sum updates each with its own
objective (simultaneous gradient steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix / taming's ``NLayerDiscriminator``): ``[B, H, W, 3]`` in [0, 1] →
    logits ``[B, h, w, 1]`` (one per overlapping patch).

    4×4 convs: ``channels`` (stride 2, leaky ReLU 0.2), then ``layers - 1`` stride-2 and one
    stride-1 conv with doubling widths (up to 8×) and normalisation, then a 1-channel conv.
    GroupNorm replaces taming's BatchNorm (the training loop keeps no batch statistics).
    """

    channels: int = 64
    layers: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def c4(features: int, stride: int) -> nn.Conv:
            return nn.Conv(features, (4, 4), (stride, stride), padding=((1, 1), (1, 1)),
                           dtype=self.dtype, param_dtype=jnp.float32)

        h = nn.leaky_relu(c4(self.channels, 2)((2.0 * x - 1.0).astype(self.dtype)), 0.2)
        for i in range(1, self.layers + 1):
            features = self.channels * min(2 ** i, 8)
            h = c4(features, 2 if i < self.layers else 1)(h)
            h = nn.leaky_relu(nn.GroupNorm(min(32, features // 4), dtype=self.dtype,
                                           param_dtype=jnp.float32)(h), 0.2)
        return c4(1, 1)(h).astype(jnp.float32)


def hinge_d_loss(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Discriminator hinge loss ``½ (mean relu(1 − real) + mean relu(1 + fake))`` (scalar)."""
    return 0.5 * (jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake)))


def generator_loss(fake: jax.Array) -> jax.Array:
    """Generator's hinge loss ``−mean D(x̂)`` (scalar)."""
    return -jnp.mean(fake)


def adaptive_weight(rec_loss: Callable[[Any], jax.Array], gan_loss: Callable[[Any], jax.Array],
                    last_layer: Any, max_weight: float = 1e4) -> jax.Array:
    """VQGAN's weight of the GAN loss: ``‖∇_W L_rec‖ / (‖∇_W L_GAN‖ + 1e-4)`` over the last
    layer's parameters ``W`` (a pytree), clipped to ``[0, max_weight]``, without gradient.

    ``rec_loss(W)`` and ``gan_loss(W)`` are the two losses as functions of that layer only
    (its input held fixed)."""
    def norm(tree: Any) -> jax.Array:
        return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(tree)))

    weight = norm(jax.grad(rec_loss)(last_layer)) / (norm(jax.grad(gan_loss)(last_layer)) + 1e-4)
    return jax.lax.stop_gradient(jnp.clip(weight, 0.0, max_weight))
