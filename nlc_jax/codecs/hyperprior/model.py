"""The mean-scale hyperprior network (transforms, optional per-λ gains), as one Flax module.

The module exposes the pieces that training and coding compose differently (``nn.Module``
methods, called with ``model.apply(params, ..., method=...)``):

* ``analyse(x, rate)``: ``[B, H, W, 3]`` in [0, 1] → latent ``y`` ``[B, H/16, W/16, M]``;
* ``hyper_analyse(y)``: ``y`` → hyper-latent ``z`` ``[B, H/64, W/64, N]``;
* ``hyper_synthesise(z_hat)``: → ``(means, scales)`` of ``y``, each ``[B, H/16, W/16, M]``
  (scales bounded below by ``SCALE_BOUND`` with a gradient-preserving bound);
* ``synthesise(y_hat, rate)``: → reconstruction ``[B, H, W, 3]`` (float32, not clipped).

Variable rate (``num_rates > 1``): a learned gain vector per rate scales ``y`` after the analysis
and an inverse gain scales ``y_hat`` before the synthesis (Cui et al. 2021, as in GLC); ``rate`` is
an int index ``[B]`` into them. With ``num_rates == 1`` there are no gains. ``gain_init`` gives
each rate's initial gain (all channels; the inverse gain starts at its reciprocal): training
starts with distinct quantization steps per rate instead of identical ones (see
:func:`nlc_jax.codecs.hyperprior.training.initial_gains`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.hyperprior.transforms import (
    AnalysisTransform,
    HyperAnalysis,
    HyperSynthesis,
    SynthesisTransform,
)
from nlc_jax.layers import lower_bound

STRIDE = 64  # total downsampling of the hyper-latent: inputs are padded to a multiple of this
SCALE_BOUND = 0.11  # lower bound on predicted scales (as CompressAI's Gaussian conditional)


class MeanScaleHyperprior(nn.Module):
    """Minnen et al. 2018 mean-scale hyperprior transforms (``n``/``m`` channels as CompressAI)."""

    n: int
    m: int
    num_rates: int = 1
    dtype: Any = jnp.float32
    gain_init: tuple[float, ...] = ()  # per rate; () = all ones

    def setup(self):
        self.g_a = AnalysisTransform(self.n, self.m, self.dtype)
        self.g_s = SynthesisTransform(self.n, self.dtype)
        self.h_a = HyperAnalysis(self.n, self.dtype)
        self.h_s = HyperSynthesis(self.m, self.dtype)
        if self.num_rates > 1:
            init = np.asarray(self.gain_init or (1.0,) * self.num_rates, np.float32)
            if init.shape != (self.num_rates,) or not np.all(init > 0):
                raise ValueError(f"gain_init must hold {self.num_rates} positive values, "
                                 f"got {self.gain_init}")
            self.gain = self.param(
                "gain", lambda _rng: jnp.repeat(init[:, None], self.m, axis=1))
            self.inverse_gain = self.param(
                "inverse_gain", lambda _rng: jnp.repeat(1.0 / init[:, None], self.m, axis=1))

    def _gain(self, name: str, rate: jax.Array | None) -> jax.Array | float:
        if self.num_rates == 1:
            return 1.0
        return jnp.abs(getattr(self, name)[rate])[:, None, None, :]

    def analyse(self, x: jax.Array, rate: jax.Array | None = None) -> jax.Array:
        y = self.g_a(x).astype(jnp.float32)
        return y * self._gain("gain", rate)

    def hyper_analyse(self, y: jax.Array) -> jax.Array:
        return self.h_a(y).astype(jnp.float32)

    def hyper_synthesise(self, z_hat: jax.Array) -> tuple[jax.Array, jax.Array]:
        means, scales = self.h_s(z_hat)
        return means, lower_bound(scales, SCALE_BOUND)

    def synthesise(self, y_hat: jax.Array, rate: jax.Array | None = None) -> jax.Array:
        y_hat = y_hat * self._gain("inverse_gain", rate)
        return self.g_s(y_hat).astype(jnp.float32)

    def __call__(self, x: jax.Array, rate: jax.Array | None = None) -> jax.Array:
        """Touches every submodule (used by ``init``): the unquantized round trip."""
        y = self.analyse(x, rate)
        self.hyper_synthesise(self.hyper_analyse(y))
        return self.synthesise(y, rate)
