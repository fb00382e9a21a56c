"""The rate-variable diffusion codec's networks, as one Flax module (``model.apply(...,
method=...)`` for each piece; all shapes NHWC, ``y`` is the autoencoder latent ``[B, h, w, C]``):

* ``steps(t)``: ``t`` ``[B]`` → ``(Δ_y [B, C], Δ_z [B, Cz])``, the monotone step curves
  (:class:`~nlc_jax.codecs.rvdiff.rate.StepCurve`);
* ``hyper_analyse(y, t)``: → ``z / Δ_z(t)`` ``[B, h/4, w/4, Cz]`` (rounded for coding);
* ``hyper_synthesise(z_sym, t)``: integer-valued ``ẑ / Δ_z`` → ``(μ / Δ_y, σ / Δ_y)``, each
  ``[B, h, w, C]``: mean and scale of ``y`` in units of its step, so ``round(y / Δ_y − μ / Δ_y)``
  is coded under a zero-mean Gaussian of scale ``σ / Δ_y`` (the hyperprior's entropy model
  unchanged, :class:`nlc_jax.entropy.hyperprior.HyperpriorEntropyModel`);
* ``denoise(y_t, t)``: the latent U-Net's ``x̂₀`` (:class:`~nlc_jax.codecs.rvdiff.unet.LatentUNet`).

The quantized latent ``ŷ_t = Δ_y · (round(y/Δ_y − μ') + μ')`` is the forward process's state at
time ``t``: ``y`` plus (nearly uniform) noise of width ``Δ_y(t)``, growing with ``t``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nlc_jax.codecs.rvdiff.rate import StepCurve
from nlc_jax.codecs.rvdiff.unet import LatentUNet
from nlc_jax.layers import SubpixelConvTranspose, lower_bound

#: the hyper-latent is 4× below the autoencoder latent
HYPER_STRIDE = 4
#: lower bound of the predicted scale in units of the step (CompressAI's Gaussian conditional)
SCALE_BOUND = 0.11


def _conv(features: int, kernel: int, stride: int, dtype: Any) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                   dtype=dtype, param_dtype=jnp.float32)


class RvdiffModel(nn.Module):
    """Step curves, hyper transforms and the U-Net (see the module docstring).

    Attributes:
      channels: latent channels ``C`` of the autoencoder.
      hyper_channels: hyper-latent channels ``Cz``.
      y_steps, z_steps: initial ``log Δ`` at the knots of each step curve.
      width, multipliers, blocks: the U-Net's sizes.
    """

    channels: int
    hyper_channels: int
    y_steps: tuple[float, ...]
    z_steps: tuple[float, ...]
    width: int = 32
    multipliers: tuple[int, ...] = (1, 2)
    blocks: int = 1
    dtype: Any = jnp.float32

    def setup(self):
        n, d = self.hyper_channels, self.dtype
        self.y_curve = StepCurve(self.channels, self.y_steps)
        self.z_curve = StepCurve(n, self.z_steps)
        self.h_a = [_conv(n, 3, 1, d), _conv(n, 5, 2, d), _conv(n, 5, 2, d)]
        wide = max(n, 2 * self.channels)
        self.h_s = [SubpixelConvTranspose(wide, 5, 2, dtype=d, param_dtype=jnp.float32),
                    SubpixelConvTranspose(wide, 5, 2, dtype=d, param_dtype=jnp.float32),
                    _conv(2 * self.channels, 3, 1, d)]
        self.unet = LatentUNet(self.width, tuple(self.multipliers), self.blocks, d)

    @property
    def stride(self) -> int:
        """Latent sides must be multiples of this (hyper-latent and U-Net levels)."""
        return max(HYPER_STRIDE, 2 ** (len(self.multipliers) - 1))

    def steps(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.y_curve(t), self.z_curve(t)

    def hyper_analyse(self, y: jax.Array, t: jax.Array) -> jax.Array:
        z = y.astype(self.dtype)
        for i, layer in enumerate(self.h_a):
            z = layer(z) if i == len(self.h_a) - 1 else nn.leaky_relu(layer(z))
        return z.astype(jnp.float32) / self.z_curve(t)[:, None, None, :]

    def hyper_synthesise(self, z_sym: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        step_y, step_z = self.steps(t)
        h = (z_sym * step_z[:, None, None, :]).astype(self.dtype)
        for i, layer in enumerate(self.h_s):
            h = layer(h) if i == len(self.h_s) - 1 else nn.leaky_relu(layer(h))
        means, scales = jnp.split(h.astype(jnp.float32), 2, axis=-1)
        step = step_y[:, None, None, :]
        return means / step, lower_bound(scales / step, SCALE_BOUND)

    def denoise(self, y_t: jax.Array, t: jax.Array) -> jax.Array:
        return self.unet(y_t, t)

    def __call__(self, y: jax.Array, t: jax.Array) -> jax.Array:
        """Touches every submodule (used by ``init``)."""
        z = self.hyper_analyse(y, t)
        self.hyper_synthesise(jnp.round(z), t)
        return self.denoise(y, t)
