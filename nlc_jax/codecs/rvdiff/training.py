"""Training task of the rate-variable diffusion codec for the generic loop in
:mod:`nlc_jax.train`.

Each example draws its own rate/time ``t ~ U[0, 1]`` (or all use ``train_rate`` when it is in
[0, 1]: a separately trained per-rate model, the baseline of the one-model comparison); with ``y₀`` the frozen autoencoder's
latent of the crop, the loss is ``bpp(t) + λ(t) · D`` averaged over the batch, where

* ``bpp(t)``: bits of ``ẑ`` and ``ŷ`` per image pixel, additive uniform noise as the
  quantization proxy (in units of the steps ``Δ_z(t)``, ``Δ_y(t)``);
* ``D``: the latent MSE of the U-Net's ``x̂₀`` against ``y₀`` (the single x̂₀-prediction loss),
  plus ``pixel_weight ·`` MSE and ``lpips_weight ·`` LPIPS of the decoded ``x̂₀`` against the
  crop when those weights are > 0 (through the frozen autoencoder decoder);
* the U-Net's input ``y_t`` is, per example, the really quantized latent
  ``Δ_y · (sg(round(y₀/Δ_y − μ')) + μ')`` (what decoding starts from; gradients reach ``Δ_y`` and
  ``μ'`` with the integers held) or, with probability ``renoise_fraction``, the re-noised state
  ``y₀ + Δ_y(t)/√12 · ε`` that the sampler's later steps produce.

``λ(t)`` falls geometrically from ``λ(0)`` to ``λ(1)`` (``lmbda_range``). As ``λ(t) ∝ 1/Δ(t)²``
at the start, ``λ(t) · MSE(x̂₀)`` weighs the x̂₀ loss like a diffusion model's ε-prediction
loss (``‖x̂₀ − y₀‖² / σ(t)²``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs.clric import BoundAutoencoder
from nlc_jax.codecs.rvdiff.codec import RvdiffCodec, build_model, export_params
from nlc_jax.codecs.rvdiff.rate import check_rate, initial_log_steps, lmbda_at
from nlc_jax.codecs.rvdiff.sampler import check_sampler
from nlc_jax.entropy.factorized import FactorizedPrior
from nlc_jax.entropy.hyperprior import HyperpriorEntropyModel

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class RvdiffConfigError(ValueError):
    """An rvdiff config value that cannot work (one-line message)."""


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise RvdiffConfigError(message)


def model_config_of(config: Any, channels: int, factor: int,
                    autoencoder: str) -> dict[str, Any]:
    """The JSON-able model description (export ``model.json``) of a training config."""
    m = config.model
    lmbdas = tuple(float(v) for v in config.lmbda_range)
    z_range = tuple(float(v) for v in config.hyper_step_range)
    _need(len(lmbdas) == 2 and lmbdas[0] > lmbdas[1] > 0,
          f"lmbda_range must be (λ(0), λ(1)) with λ(0) > λ(1) > 0, got {lmbdas}")
    _need(len(z_range) == 2 and 0 < z_range[0] < z_range[1],
          f"hyper_step_range must be (Δ_z(0), Δ_z(1)) with 0 < Δ_z(0) < Δ_z(1), got {z_range}")
    knots = int(m.knots)
    _need(knots >= 1, f"model.knots must be >= 1, got {knots}")
    for key in ("hyper_channels", "width", "blocks"):
        _need(int(m[key]) > 0, f"model.{key} must be > 0, got {m[key]}")
    _need(len(m.multipliers) >= 1 and all(int(v) > 0 for v in m.multipliers),
          f"model.multipliers must be positive integers, got {m.multipliers}")
    y_steps = initial_log_steps(lmbdas, channels / factor**2, knots)
    z_steps = np.linspace(math.log(z_range[0]), math.log(z_range[1]), knots + 1)
    return {"codec": "rvdiff", "autoencoder": autoencoder, "channels": int(channels),
            "hyper_channels": int(m.hyper_channels), "width": int(m.width),
            "multipliers": [int(v) for v in m.multipliers], "blocks": int(m.blocks),
            "y_steps": [float(v) for v in y_steps], "z_steps": [float(v) for v in z_steps],
            "lmbda_range": list(lmbdas)}


class RvdiffTask:
    """:class:`nlc_jax.train.task.TrainTask` of the rate-variable diffusion codec.

    Parameters are ``{"model": <network params>, "z_prior": <factorized prior params>}``; the
    autoencoder is frozen and not part of them.

    Args:
      config: from ``configs/rvdiff.py``.
      autoencoder: use this autoencoder instead of loading ``config.autoencoder`` (tests).

    Raises:
      RvdiffConfigError: bad config values; CheckpointError: the autoencoder cannot be loaded.
    """

    def __init__(self, config: Any, autoencoder: BoundAutoencoder | None = None):
        _need(config.compute_dtype in DTYPES,
              f"compute_dtype must be one of {sorted(DTYPES)}, got {config.compute_dtype!r}")
        for key in ("pixel_weight", "lpips_weight"):
            _need(float(config[key]) >= 0, f"{key} must be >= 0, got {config[key]}")
        _need(0.0 <= float(config.renoise_fraction) <= 1.0,
              f"renoise_fraction must be in [0, 1], got {config.renoise_fraction}")
        self.config = config
        rate = float(config.get("train_rate", -1.0))
        self.train_rate = None if rate < 0 else check_rate(rate)
        self.eval_rates = tuple(check_rate(t) for t in config.eval_rates)
        check_sampler(int(config.steps), float(config.alpha_max), float(config.alpha_power))
        self.autoencoder = autoencoder or load_autoencoder(config)
        ae = self.autoencoder
        self._model_config = model_config_of(config, ae.channels, ae.factor, ae.name)
        self.model = build_model(self._model_config, DTYPES[config.compute_dtype])
        multiple = ae.factor * self.model.stride
        _need(int(config.crop) % multiple == 0,
              f"crop={config.crop} must be a multiple of {multiple} (autoencoder factor × "
              "model stride)")
        self.entropy = HyperpriorEntropyModel(FactorizedPrior(self.model.hyper_channels))
        self.lpips = None
        if float(config.lpips_weight) > 0:
            from nlc_jax.metrics.lpips import load_lpips_params

            self.lpips = load_lpips_params("alex")

    def init(self, rng: jax.Array, crop: int) -> dict[str, Any]:
        """Initial parameters (jit-compiled: eager Flax init is slow on CPU)."""
        f = self.autoencoder.factor
        shape = (1, crop // f, crop // f, self.autoencoder.channels)

        def init(key: jax.Array) -> dict[str, Any]:
            k_model, k_prior = jax.random.split(key)
            return {"model": self.model.init(k_model, jnp.zeros(shape, jnp.float32),
                                             jnp.zeros((1,), jnp.float32)),
                    "z_prior": self.entropy.init(k_prior)}

        return jax.jit(init)(rng)

    def _ae_encode(self, images: jax.Array) -> jax.Array:
        ae = self.autoencoder
        return jax.lax.stop_gradient(ae.fns.encode(ae.params, images))

    def loss(self, params: dict[str, Any], images: jax.Array,
             rng: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``images`` ``[B, H, W, 3]`` in [0, 1] → (mean loss, scalar metrics)."""
        b, h, w, _ = images.shape
        k_t, k_y, k_z, k_mix, k_noise = jax.random.split(rng, 5)
        t = jax.random.uniform(k_t, (b,), jnp.float32)
        if self.train_rate is not None:  # a per-rate model (the BD-rate baseline)
            t = jnp.full((b,), self.train_rate, jnp.float32)
        apply, mp = self.model.apply, params["model"]
        y0 = self._ae_encode(images)
        step_y, _ = apply(mp, t, method="steps")
        step = step_y[:, None, None, :]
        z = apply(mp, y0, t, method="hyper_analyse")
        z_noisy, z_bits = jax.vmap(lambda zi, k: self.entropy.z_rate(
            params["z_prior"], zi, "noise", k))(z, jax.random.split(k_z, b))
        loc, scale = apply(mp, z_noisy, t, method="hyper_synthesise")
        units = y0 / step
        _, y_bits = jax.vmap(lambda yi, mu, s, k: self.entropy.y_rate(yi, mu, s, "noise", k))(
            units, loc, scale, jax.random.split(k_y, b))
        quantized = step * (jax.lax.stop_gradient(jnp.round(units - loc)) + loc)
        renoised = y0 + step / math.sqrt(12.0) * jax.random.normal(k_noise, y0.shape)
        use_noise = jax.random.uniform(k_mix, (b,)) < float(self.config.renoise_fraction)
        y_t = jnp.where(use_noise[:, None, None, None], renoised, quantized)
        x0 = apply(mp, y_t, t, method="denoise")
        latent_mse = jnp.mean(jnp.square(x0 - y0), axis=(1, 2, 3))
        distortion, extra = latent_mse, {}
        if float(self.config.pixel_weight) > 0 or self.lpips is not None:
            decoded = self.autoencoder.fns.decode(self.autoencoder.params, x0)
            pixel_mse = jnp.mean(jnp.square(decoded - images), axis=(1, 2, 3))
            distortion = distortion + float(self.config.pixel_weight) * pixel_mse
            extra["pixel_mse"] = jnp.mean(pixel_mse)
            if self.lpips is not None:
                from nlc_jax.metrics.lpips import lpips

                perceptual = lpips(jnp.clip(decoded, 0.0, 1.0), images, self.lpips, 1.0)
                distortion = distortion + float(self.config.lpips_weight) * perceptual
                extra["lpips"] = jnp.mean(perceptual)
        bpp_y, bpp_z = y_bits / (h * w), z_bits / (h * w)
        lmbda = lmbda_at(t, tuple(self._model_config["lmbda_range"]))
        loss = jnp.mean(bpp_y + bpp_z + lmbda * distortion)
        # on the examples whose input was really quantized: the U-Net's x̂₀ against ŷ itself
        # (the plain hyperprior decode), the gain of one denoising step
        quantized_examples = 1.0 - use_noise.astype(jnp.float32)
        count = jnp.maximum(jnp.sum(quantized_examples), 1.0)
        plain_mse = jnp.mean(jnp.square(quantized - y0), axis=(1, 2, 3))
        return loss, {"bpp": jnp.mean(bpp_y + bpp_z), "bpp_y": jnp.mean(bpp_y),
                      "bpp_z": jnp.mean(bpp_z), "latent_mse": jnp.mean(latent_mse),
                      "x0_mse_quantized": jnp.sum(latent_mse * quantized_examples) / count,
                      "yhat_mse_quantized": jnp.sum(plain_mse * quantized_examples) / count,
                      "mean_step": jnp.mean(step_y), **extra}

    def model_config(self) -> dict[str, Any]:
        return dict(self._model_config)

    def export(self, params: dict[str, Any]) -> dict[str, Any]:
        """Inference params: weights, frozen coding tables, the autoencoder's digest."""
        return export_params(self.entropy, params, self.autoencoder.digest)

    def codec(self, params: dict[str, Any], rate: float, steps: int | None = None) -> RvdiffCodec:
        """A codec of the current (training) params at ``rate`` (``steps``: config's)."""
        from nlc_jax.codecs.weights import weights_hash

        inference = self.export(params)
        c = self.config
        return RvdiffCodec(inference, self.model_config(), weights_hash(inference),
                           self.autoencoder, rate, int(c.steps if steps is None else steps),
                           float(c.alpha_max), float(c.alpha_power), int(c.noise_seed))

    def evaluate(self, params: dict[str, Any], images: Sequence[np.ndarray]) -> dict[str, float]:
        """Real coding at every ``eval_rates`` entry; mean bpp/PSNR per rate (suffix: index)."""
        out: dict[str, float] = {}
        for i, t in enumerate(self.eval_rates):
            codec = self.codec(params, t)
            infos = [codec.encode(im).info for im in images]
            for key in ("bpp", "psnr", "encode_seconds"):
                out[f"{key}_{i}"] = float(np.mean([info[key] for info in infos]))
        return out


def load_autoencoder(config: Any) -> BoundAutoencoder:
    """``config.autoencoder`` (a ``nlc_jax.autoencoders.load`` name or path), loaded.

    Raises:
      CheckpointError: it cannot be loaded (one line).
    """
    from nlc_jax.autoencoders import AutoencoderError, WeightsError
    from nlc_jax.codecs.weights import CheckpointError, one_line

    try:
        return BoundAutoencoder.load(str(config.autoencoder), config.get("weights_dir") or None)
    except (AutoencoderError, WeightsError, OSError) as e:
        raise CheckpointError(f"rvdiff: cannot load autoencoder {config.autoencoder!r} "
                              f"({one_line(e)}); set --config.weights_dir or $NLC_WEIGHTS_DIR"
                              ) from None


def make_task(config: Any) -> RvdiffTask:
    """The task ``nlc_jax.codecs.registry.task_factory("rvdiff")`` returns."""
    return RvdiffTask(config)
