"""Training task of the mean-scale hyperprior for the generic loop in :mod:`nlc_jax.train`.

Loss (CompressAI convention): ``λ · 255² · MSE + bpp`` per image, averaged over the batch. The
rate uses additive uniform noise on ``y - μ`` and ``z`` (the factorized prior needs no auxiliary
loss: its coding tables are found by a tail search after training, ``factorized.make_tables``);
the synthesis sees straight-through rounded latents ``round(y - μ) + μ`` (mixed quantization), so
it trains on what the decoder will get. Variable rate: each example draws one of the λ's and its
gain vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.hyperprior.codec import HyperpriorCodec, export_params
from nlc_jax.codecs.hyperprior.model import STRIDE, MeanScaleHyperprior
from nlc_jax.entropy.factorized import FactorizedPrior
from nlc_jax.entropy.hyperprior import HyperpriorEntropyModel
from nlc_jax.entropy.quantization import ste_round

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class HyperpriorConfigError(ValueError):
    """A hyperprior config value that cannot work."""


def lambdas_of(config: Any) -> tuple[float, ...]:
    """The λ's of a run: ``config.lmbdas`` (variable rate) or ``(config.lmbda,)``."""
    lmbdas = tuple(float(v) for v in config.lmbdas) or (float(config.lmbda),)
    if any(v <= 0 for v in lmbdas):
        raise HyperpriorConfigError(f"λ values must be > 0, got {lmbdas}")
    return lmbdas


def initial_gains(lmbdas: Sequence[float]) -> tuple[float, ...]:
    """Initial per-rate gains of a variable-rate model: ``sqrt(λ_i / geomean(λ))``.

    At high rate the optimal quantization step of ``loss = λ·D + R`` scales as ``λ^(-1/2)``, so
    these gains give each rate its own step from the first update (ones for a single λ).
    """
    lm = np.asarray(lmbdas, np.float64)
    return tuple(float(g) for g in np.sqrt(lm / np.exp(np.mean(np.log(lm)))))


def build_model(n: int, m: int, lmbdas: Sequence[float], dtype: Any = jnp.float32
                ) -> tuple[MeanScaleHyperprior, HyperpriorEntropyModel]:
    """The network (one rate per λ) and the entropy model of a hyperprior with ``n``/``m``
    channels."""
    if n <= 0 or m <= 0:
        raise HyperpriorConfigError(f"model sizes must be positive, got n={n}, m={m}")
    return (MeanScaleHyperprior(n, m, len(lmbdas), dtype, initial_gains(lmbdas)),
            HyperpriorEntropyModel(FactorizedPrior(n)))


class HyperpriorTask:
    """:class:`nlc_jax.train.task.TrainTask` for :class:`MeanScaleHyperprior`.

    Parameters are ``{"model": <network params>, "z_prior": <factorized prior params>}``.
    """

    def __init__(self, config: Any):
        if int(config.crop) % STRIDE:
            raise HyperpriorConfigError(f"crop={config.crop} must be a multiple of {STRIDE}")
        if config.compute_dtype not in DTYPES:
            raise HyperpriorConfigError(f"compute_dtype must be one of {sorted(DTYPES)}, got "
                                        f"{config.compute_dtype!r}")
        self.lmbdas = lambdas_of(config)
        self.n, self.m = int(config.model.n), int(config.model.m)
        self.model, self.entropy = build_model(self.n, self.m, self.lmbdas,
                                               DTYPES[config.compute_dtype])

    def init(self, rng: jax.Array, crop: int) -> dict[str, Any]:
        k_model, k_prior = jax.random.split(rng)
        x = jnp.zeros((1, crop, crop, 3), jnp.float32)
        return {"model": self.model.init(k_model, x, jnp.zeros((1,), jnp.int32)),
                "z_prior": self.entropy.init(k_prior)}

    def loss(self, params: dict[str, Any], images: jax.Array,
             rng: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``images`` ``[B, H, W, 3]`` in [0, 1] → (mean loss, {bpp, mse, psnr, bpp_y, bpp_z})."""
        b, h, w, _ = images.shape
        k_rate, k_y, k_z = jax.random.split(rng, 3)
        rate = jax.random.randint(k_rate, (b,), 0, len(self.lmbdas))
        lmbda = jnp.asarray(self.lmbdas, jnp.float32)[rate]
        apply = self.model.apply
        mp = params["model"]
        y = apply(mp, images, rate, method="analyse")
        z = apply(mp, y, method="hyper_analyse")
        z_keys, y_keys = jax.random.split(k_z, b), jax.random.split(k_y, b)
        z_noisy, z_bits = jax.vmap(
            lambda zi, k: self.entropy.z_rate(params["z_prior"], zi, "noise", k))(z, z_keys)
        means, scales = apply(mp, z_noisy, method="hyper_synthesise")
        _, y_bits = jax.vmap(lambda yi, mu, s, k: self.entropy.y_rate(yi, mu, s, "noise", k))(
            y, means, scales, y_keys)
        x_hat = apply(mp, ste_round(y - means) + means, rate, method="synthesise")
        mse = jnp.mean(jnp.square(x_hat - images), axis=(1, 2, 3))
        bpp_y, bpp_z = y_bits / (h * w), z_bits / (h * w)
        loss = jnp.mean(lmbda * 255.0**2 * mse + bpp_y + bpp_z)
        mean_mse = jnp.mean(mse)
        return loss, {"bpp": jnp.mean(bpp_y + bpp_z), "bpp_y": jnp.mean(bpp_y),
                      "bpp_z": jnp.mean(bpp_z), "mse": mean_mse,
                      "psnr": -10.0 * jnp.log10(jnp.maximum(mean_mse, 1e-10))}

    def model_config(self) -> dict[str, Any]:
        return {"codec": "hyperprior", "n": self.n, "m": self.m, "lmbdas": list(self.lmbdas)}

    def export(self, params: dict[str, Any]) -> dict[str, Any]:
        """Inference params: the trained weights plus the frozen coding tables of the prior."""
        return export_params(self.entropy, params)

    def evaluate(self, params: dict[str, Any], images: Sequence[np.ndarray]) -> dict[str, float]:
        """Real coding of each image at every λ; mean bpp/PSNR per λ (keys suffixed by index)."""
        inference = self.export(params)
        out: dict[str, float] = {}
        for r in range(len(self.lmbdas)):
            codec = HyperpriorCodec.from_params(inference, self.model_config(), rate_index=r)
            infos = [codec.encode(im).info for im in images]
            suffix = "" if len(self.lmbdas) == 1 else f"_{r}"
            for key in ("bpp", "psnr", "encode_seconds"):
                out[key + suffix] = float(np.mean([i[key] for i in infos]))
        return out


def make_task(config: Any) -> HyperpriorTask:
    """The task ``nlc_jax.codecs.registry.task_factory("hyperprior")`` returns."""
    return HyperpriorTask(config)
