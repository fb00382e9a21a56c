"""Code-prediction supervision of GLC: a small transformer predicts, from the decoded latent, the
VQ codebook index the autoencoder's quantizer assigns to the *original* latent at each position.

Training only (the decoder never runs it): its cross-entropy, with the latent MSE, pulls the
decoded latent towards the right codes so the VQ decoder renders sharp, plausible textures
(GLC's ``CodePredictionLoss``: learned positional embedding, pre-norm self-attention layers with
a GELU MLP of twice the width, LayerNorm and a bias-free linear head over the ``K`` codes).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class CodePredictor(nn.Module):
    """``[B, h, w, D]`` decoded latent → logits ``[B, h·w, K]``.

    Attributes:
      codebook_size: ``K``.
      tokens: ``h·w`` of the training crops (size of the learned positional embedding).
      width, heads, layers: transformer sizes (GLC: 512, 8, 9).
    """

    codebook_size: int
    tokens: int
    width: int = 512
    heads: int = 8
    layers: int = 9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, y: jax.Array) -> jax.Array:
        b, h, w, d = y.shape
        if h * w != self.tokens:
            raise ValueError(f"code prediction was built for {self.tokens} positions, got {h * w}")
        pos = self.param("position", nn.initializers.normal(0.02), (self.tokens, self.width))
        x = nn.Dense(self.width, dtype=self.dtype, param_dtype=jnp.float32)(
            y.reshape(b, h * w, d).astype(self.dtype))
        for _ in range(self.layers):
            t = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32)(x)
            qk = t + pos
            x = x + nn.MultiHeadDotProductAttention(
                self.heads, dtype=self.dtype, param_dtype=jnp.float32)(qk, qk, t)
            t = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32)(x)
            t = nn.Dense(2 * self.width, dtype=self.dtype, param_dtype=jnp.float32)(t)
            x = x + nn.Dense(self.width, dtype=self.dtype, param_dtype=jnp.float32)(nn.gelu(t))
        x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32)(x)
        return nn.Dense(self.codebook_size, use_bias=False, dtype=self.dtype,
                        param_dtype=jnp.float32)(x).astype(jnp.float32)


def code_cross_entropy(logits: jax.Array, indices: jax.Array) -> jax.Array:
    """Mean cross-entropy (nats) per image of ``logits [B, T, K]`` against ``indices [B, T]``;
    returns ``[B]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, indices[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return -jnp.mean(picked, axis=-1)
