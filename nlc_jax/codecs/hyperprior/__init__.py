"""Mean-scale hyperprior codec (Minnen et al. 2018, CompressAI's "mbt2018-mean").

``make_codec(config)`` loads the trained model named by ``config.checkpoint`` (a training workdir
or its ``export/`` directory) and returns a :class:`HyperpriorCodec` (a ``LearnedCodec``) that
encodes at λ index ``config.rate_index`` (variable-rate models; 0 otherwise).
"""

from __future__ import annotations

from typing import Any

from nlc_jax.codecs.hyperprior.codec import HyperpriorCodec, file_weights_hash

__all__ = ["HyperpriorCodec", "file_weights_hash", "make_codec", "make_task"]


def make_task(config: Any) -> Any:
    """The training task (``nlc_jax.train.task.TrainTask``) of a hyperprior config."""
    from nlc_jax.codecs.hyperprior.training import make_task as make

    return make(config)


def make_codec(config: Any) -> HyperpriorCodec:
    """Codec from ``config.checkpoint`` (required) and ``config.rate_index`` (default 0).

    ``config`` is a ``ConfigDict`` (or a dict); ``None`` (no config) raises, since decoding needs
    the trained weights too.

    Raises:
      CheckpointError: no checkpoint given, or a missing/corrupt/mismatched export.
    """
    from nlc_jax.codecs.weights import CheckpointError, load_inference

    checkpoint = (config.get("checkpoint", "") if config is not None else "") or ""
    if not checkpoint:
        raise CheckpointError("the hyperprior codec needs a trained model: pass "
                              "--config.checkpoint=<training workdir or its export/ directory>")
    params, model_config, _ = load_inference(checkpoint)
    if model_config.get("codec") != "hyperprior":
        raise CheckpointError(f"{checkpoint}: holds a {model_config.get('codec')!r} model, not a "
                              "hyperprior")
    rate_index = int(config.get("rate_index", 0))
    return HyperpriorCodec.from_params(params, model_config, rate_index)
