"""GLC's transform coding in the VQ autoencoder's latent space, as one Flax module.

Shapes for an image ``[B, H, W, 3]`` and a VQ latent ``y_vq [B, h, w, D]`` (``h = H/16``):

* ``analyse(y_vq, rate)``: ``enc_1`` (gated depth-conv blocks), times the rate's learned
  per-channel vector ``q_enc[rate]``, ``enc_2`` → ``y [B, h, w, N]`` (no down-sampling);
* ``hyper_analyse(y)``: depth-conv block, two stride-2 3×3 convs → ``z [B, h/4, w/4, Dz]``;
* the hyper module (``hyper_module``), what is sent of ``z``:

  - ``"categorical"`` (GLC's): ``z`` is vector-quantized with a ``Kz × Dz`` codebook
    (``quantize_hyper``; ``hyper_embed`` maps indices back), its indices cost ``log2 Kz`` bits
    each (fixed-length) or are entropy coded under a categorical prior (``hyper_logits``, set
    during training from the index histograms, not by gradients);
  - ``"factorized"`` (ablation): ``ẑ = round(z)`` per element, its rate the bits under the
    library's learned per-channel :class:`~nlc_jax.entropy.factorized.FactorizedPrior`
    (``quantize_hyper_factorized``; ``hyper_prior``), as the pixel hyperprior's ``z``;

  ``hyper_symbols`` / ``hyper_from_symbols`` are what the codec sends and how ẑ is rebuilt;
* ``hyper_synthesise(ẑ)``: two sub-pixel residual up-sampling blocks, a depth-conv block and the
  prior fusion → ``common [B, h, w, 3N]`` = (quantization step, scale, mean of step 0) and
  ``reduced [B, h, w, N]`` (1×1 reduction, the context of later steps);
* the spatial-channel context (``context(k, ŷ_so_far, reduced)``, k = 1…3): an adaptor per step
  and a shared spatial prior → (scales, means) of step k. The latent is coded in four steps;
  step ``k`` codes channel group ``g`` at the 2×2 phase ``PHASES[k][g]`` (:func:`four_part_masks`),
  so every step sees spatial and channel neighbours of the previous ones;
* ``synthesise(ŷ, rate)``: ``dec_1``, times ``q_dec[rate]``, ``dec_2`` → ``[B, h, w, D]`` for the
  VQ decoder.

The latent is divided by the predicted quantization step (bounded below by 0.5) before the
residual ``round(y/step − mean)`` is coded under a zero-mean Gaussian of the predicted scale.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders.vector_quantizer import VectorQuantizer, VQSettings
from nlc_jax.codecs.glc.blocks import DepthConvBlock, ResidualBlockUpsample, conv
from nlc_jax.entropy.conditional import ConditionalEntropyModel
from nlc_jax.entropy.factorized import FactorizedPrior
from nlc_jax.entropy.quantization import add_uniform_noise, ste_round
from nlc_jax.layers import lower_bound

HYPER_FACTOR = 4  # the hyper-latent is 4× below the VQ latent
STEP_BOUND = 0.5  # lower bound on the predicted quantization step (as GLC)
SCALE_BOUND = 0.11  # lower bound on the predicted scales
# PHASES[k][g]: the 2×2 phase (0: (0,0), 1: (0,1), 2: (1,0), 3: (1,1)) coded for channel group g
# in step k (GLC / DCVC-DC's four-part prior)
PHASES = ((0, 1, 2, 3), (3, 2, 1, 0), (2, 3, 0, 1), (1, 0, 3, 2))
GAUSSIAN = ConditionalEntropyModel("gaussian")
HYPER_MODULES = ("categorical", "factorized")  # what is sent of z (see module docstring)
Z_SYMBOL_BOUND = 2**15  # |round(z)| sent by the factorized module (an overflowing model still codes)


def four_part_masks(h: int, w: int, channels: int) -> np.ndarray:
    """float32 ``[4, h, w, channels]``: 1 where step k codes an element (each element once)."""
    if channels % 4:
        raise ValueError(f"the four-part context needs channels divisible by 4, got {channels}")
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    phase = (yy % 2) * 2 + (xx % 2)  # [h, w]
    group = np.arange(channels) // (channels // 4)  # [C]
    table = np.asarray(PHASES)  # [step, group] -> phase
    return (phase[None, :, :, None] == table[:, None, None, :][..., group]).astype(np.float32)


class LatentCodec(nn.Module):
    """Transforms, hyper module and spatial-channel prior of GLC (see module docstring).

    Attributes:
      dim: channels ``D`` of the VQ latent.
      n: width ``N`` of the transforms and priors (divisible by 4).
      blocks: gated depth-conv blocks in each of ``enc_1``, ``enc_2``, ``dec_1``, ``dec_2``.
      hyper: settings of the hyper-latent's vector quantizer (``Kz``, ``Dz``); with the
        factorized module only ``Dz`` is used.
      hyper_module: ``"categorical"`` (VQ indices) or ``"factorized"`` (rounded ``z`` under a
        factorized prior), see :data:`HYPER_MODULES`.
      num_rates: learned rate vectors (``q_enc``/``q_dec`` rows).
      gain_init: initial value of each rate's ``q_enc`` (``q_dec`` starts at the reciprocal).
    """

    dim: int
    n: int
    blocks: int = 2
    hyper: VQSettings = VQSettings(codebook_size=16384, dim=256)
    num_rates: int = 4
    gain_init: tuple[float, ...] = ()
    dtype: Any = jnp.float32
    hyper_module: str = "categorical"

    def setup(self) -> None:
        n, d = self.n, self.dtype
        if n % 4:
            raise ValueError(f"the transform width n={n} must be divisible by 4")
        if self.hyper_module not in HYPER_MODULES:
            raise ValueError(f"hyper_module must be one of {HYPER_MODULES}, got "
                             f"{self.hyper_module!r}")

        def stack(count: int, last: int | None = None) -> nn.Sequential:
            return nn.Sequential([DepthConvBlock(last if (last and i == count - 1) else n, True, d)
                                  for i in range(count)])

        self.enc_1, self.enc_2 = stack(self.blocks), stack(self.blocks)
        self.dec_1, self.dec_2 = stack(self.blocks), stack(self.blocks, self.dim)
        init = np.asarray(self.gain_init or (1.0,) * self.num_rates, np.float32)
        if init.shape != (self.num_rates,) or not np.all(init > 0):
            raise ValueError(f"gain_init must hold {self.num_rates} positive values")
        self.q_enc = self.param("q_enc", lambda _: jnp.repeat(jnp.asarray(init)[:, None], n, 1))
        self.q_dec = self.param("q_dec",
                                lambda _: jnp.repeat(jnp.asarray(1.0 / init)[:, None], n, 1))
        self.hyper_enc = nn.Sequential([DepthConvBlock(n, False, d), conv(n, 3, 2, dtype=d),
                                        nn.leaky_relu, conv(self.hyper.dim, 3, 2, dtype=d)])
        if self.factorized:
            self.hyper_prior = FactorizedPrior(self.hyper.dim)
        else:
            self.hyper_vq = VectorQuantizer(self.hyper)
            self.hyper_logits = self.param("hyper_logits", nn.initializers.zeros,
                                           (self.hyper.codebook_size,))
        self.hyper_dec = nn.Sequential([ResidualBlockUpsample(n, d), ResidualBlockUpsample(n, d),
                                        DepthConvBlock(n, False, d)])
        self.prior_fusion = nn.Sequential([DepthConvBlock(2 * n, False, d),
                                           DepthConvBlock(3 * n, False, d)])
        self.reduction = conv(n, dtype=d)
        self.adaptors = [DepthConvBlock(2 * n, False, d) for _ in range(3)]
        self.spatial_prior = nn.Sequential([DepthConvBlock(2 * n, False, d) for _ in range(3)])

    @property
    def factorized(self) -> bool:
        """Whether the hyper module is the factorized one."""
        return self.hyper_module == "factorized"

    def _q(self, table: jax.Array, rate: jax.Array) -> jax.Array:
        return jnp.abs(table[rate])[:, None, None, :]

    def analyse(self, y_vq: jax.Array, rate: jax.Array) -> jax.Array:
        y = self.enc_1(y_vq.astype(self.dtype)) * self._q(self.q_enc, rate)
        return self.enc_2(y).astype(jnp.float32)

    def hyper_analyse(self, y: jax.Array) -> jax.Array:
        return self.hyper_enc(y.astype(self.dtype)).astype(jnp.float32)

    def quantize_hyper(self, z: jax.Array, rng: jax.Array | None = None):
        return self.hyper_vq(z, rng)

    def hyper_indices(self, z: jax.Array) -> jax.Array:
        return self.hyper_vq.indices(z)

    def hyper_embed(self, idx: jax.Array) -> jax.Array:
        return self.hyper_vq.embed(idx)

    def hyper_prior_logits(self) -> jax.Array:
        return self.hyper_logits

    def quantize_hyper_factorized(self, z: jax.Array, rng: jax.Array
                                  ) -> tuple[jax.Array, jax.Array]:
        """Factorized module, training: ``z [B, h, w, Dz]`` → (``ẑ [B, h, w, Dz]``, rounded
        straight-through, what ``hyper_synthesise`` sees as the decoder will; ``bits [B]`` of
        ``z`` plus uniform noise under the factorized prior)."""
        noisy = add_uniform_noise(z, rng)
        bits = -jnp.sum(jnp.log2(self.hyper_prior(noisy)), axis=(1, 2, 3))
        return ste_round(z), bits

    def hyper_symbols(self, z: jax.Array) -> jax.Array:
        """Coding: what is sent of ``z [B, h, w, Dz]``: int32 VQ indices ``[B, h, w]``
        (categorical) or ``round(z)`` ``[B, h, w, Dz]`` within ±:data:`Z_SYMBOL_BOUND`
        (factorized)."""
        if not self.factorized:
            return self.hyper_indices(z)
        bounded = jnp.clip(jnp.nan_to_num(z), -Z_SYMBOL_BOUND, Z_SYMBOL_BOUND)
        return jnp.round(bounded).astype(jnp.int32)

    def hyper_from_symbols(self, symbols: jax.Array) -> jax.Array:
        """Inverse of :meth:`hyper_symbols` up to quantization: ``ẑ [B, h, w, Dz]``."""
        if not self.factorized:
            return self.hyper_embed(symbols)
        return symbols.astype(jnp.float32)

    def hyper_synthesise(self, z_hat: jax.Array) -> tuple[jax.Array, jax.Array]:
        common = self.prior_fusion(self.hyper_dec(z_hat.astype(self.dtype)))
        return common.astype(jnp.float32), self.reduction(common).astype(jnp.float32)

    def context(self, k: int, y_hat: jax.Array, reduced: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = jnp.concatenate([y_hat, reduced], axis=-1).astype(self.dtype)
        scales, means = jnp.split(self.spatial_prior(self.adaptors[k - 1](h)), 2, axis=-1)
        return lower_bound(scales.astype(jnp.float32), SCALE_BOUND), means.astype(jnp.float32)

    def synthesise(self, y_hat: jax.Array, rate: jax.Array) -> jax.Array:
        y = self.dec_1(y_hat.astype(self.dtype)) * self._q(self.q_dec, rate)
        return self.dec_2(y).astype(jnp.float32)

    def prior(self, y: jax.Array, common: jax.Array, reduced: jax.Array,
              rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Training: ``(ŷ [B, h, w, N], bits [B])`` through the four steps; residuals rounded
        straight-through for ``ŷ`` (the context and the synthesis see what the decoder sees),
        uniform noise for the rate."""
        step, scales, means = split_common(common)
        ys = y / step
        masks = jnp.asarray(four_part_masks(*y.shape[1:]))
        y_hat = jnp.zeros_like(y)
        bits = jnp.zeros(y.shape[0], jnp.float32)
        for k in range(4):
            if k:
                scales, means = self.context(k, y_hat, reduced)
            r = ys - means
            noisy = add_uniform_noise(r, jax.random.fold_in(rng, k))
            b = -jnp.log2(GAUSSIAN.likelihood(noisy, 0.0, scales)) * masks[k]
            bits = bits + jnp.sum(b, axis=(1, 2, 3))
            y_hat = y_hat + (ste_round(r) + means) * masks[k]
        return y_hat * step, bits

    def __call__(self, y_vq: jax.Array, rate: jax.Array) -> jax.Array:
        """Touches every parameter (used by ``init``)."""
        y = self.analyse(y_vq, rate)
        if self.factorized:
            z_hat, _ = self.quantize_hyper_factorized(self.hyper_analyse(y), jax.random.key(0))
            touch = 0.0
        else:
            z_hat, _, _ = self.quantize_hyper(self.hyper_analyse(y))
            touch = 0.0 * jnp.sum(self.hyper_logits)
        common, reduced = self.hyper_synthesise(z_hat)
        y_hat, _ = self.prior(y, common, reduced, jax.random.key(0))
        return self.synthesise(y_hat + touch, rate)


def split_common(common: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``common [..., 3N]`` → (quantization step ≥ 0.5, scale ≥ 0.11, mean), each ``[..., N]``."""
    step, scales, means = jnp.split(common, 3, axis=-1)
    return lower_bound(step, STEP_BOUND), lower_bound(scales, SCALE_BOUND), means
