"""Rate-variable diffusion codec (after Han et al. 2025, arXiv 2505.20984; see ``docs/rvdiff.md``).

Compression is the forward process of an SDE in a VAE latent space: the latent is quantized with
a step ``Δ(t)`` that grows with the rate/time ``t ∈ [0, 1]`` under one rate-variable mean-scale
hyperprior; decoding starts from the decoded quantized latent and runs a few-step stochastic
sampler whose denoiser is a latent U-Net trained with one x̂₀-prediction loss.

``make_codec(config)`` loads the trained model named by ``config.checkpoint`` (a training
workdir or its ``export/`` directory) and the autoencoder it was trained with, and returns an
:class:`RvdiffCodec` (a ``LearnedCodec``) that encodes at ``config.rate`` with
``config.steps`` sampler steps.
"""

from __future__ import annotations

from typing import Any

from nlc_jax.codecs.rvdiff.codec import RvdiffCodec, file_weights_hash

__all__ = ["RvdiffCodec", "file_weights_hash", "make_codec", "make_task"]

_DEFAULTS = {"rate": 0.5, "steps": 2, "alpha_max": 0.5, "alpha_power": 1.0, "noise_seed": 0,
             "weights_dir": ""}


def make_task(config: Any) -> Any:
    """The training task (``nlc_jax.train.task.TrainTask``) of an rvdiff config."""
    from nlc_jax.codecs.rvdiff.training import make_task as make

    return make(config)


def make_codec(config: Any, autoencoder: Any = None) -> RvdiffCodec:
    """Codec from ``config.checkpoint`` (required) and the coding settings ``rate``, ``steps``,
    ``alpha_max``, ``alpha_power``, ``noise_seed`` (defaults as the ``cpu`` preset).

    Args:
      config: a ``ConfigDict`` or a dict (a decoder needs only ``checkpoint``).
      autoencoder: a ``BoundAutoencoder`` to use instead of loading the one the export names.

    Raises:
      CheckpointError: no checkpoint given, a missing/corrupt/mismatched export, or an
        autoencoder that cannot be loaded or is not the trained one.
      RateError, SamplerError: bad coding settings.
    """
    from nlc_jax.codecs.weights import load_codec_export

    get = (lambda k: config.get(k, _DEFAULTS.get(k))) if config is not None else _DEFAULTS.get
    params, model_config, digest = load_codec_export(get("checkpoint"), "rvdiff")
    if autoencoder is None:
        from ml_collections import config_dict

        from nlc_jax.codecs.rvdiff.training import load_autoencoder

        autoencoder = load_autoencoder(config_dict.ConfigDict(
            {"autoencoder": model_config["autoencoder"], "weights_dir": get("weights_dir")}))
    return RvdiffCodec(params, model_config, digest, autoencoder, float(get("rate")),
                       int(get("steps")), float(get("alpha_max")), float(get("alpha_power")),
                       int(get("noise_seed")))
