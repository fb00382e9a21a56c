"""GLC: generative latent coding (Jia et al., CVPR 2024) — transform coding of a VQ
autoencoder's continuous latent, decoded by the VQ decoder (see ``docs/glc.md``).

``make_codec(config)`` loads the trained stage-II/III model named by ``config.checkpoint`` (a
training workdir or its ``export/``) and returns a :class:`GLCCodec` (a ``LearnedCodec``) that
encodes with rate vector ``config.rate_index``; ``make_task(config)`` gives the training task of
``config.stage`` (``autoencoder``, ``transform`` or ``joint``).
"""

from __future__ import annotations

from typing import Any

from nlc_jax.codecs.glc.codec import GLCCodec, file_weights_hash

__all__ = ["GLCCodec", "file_weights_hash", "make_codec", "make_task"]


def make_task(config: Any) -> Any:
    """The training task (``nlc_jax.train.task.TrainTask``) of a GLC config's ``stage``."""
    from nlc_jax.codecs.glc.training import make_task as make

    return make(config)


def make_codec(config: Any) -> GLCCodec:
    """Codec from ``config.checkpoint`` (required), ``config.rate_index`` (default 0) and
    ``config.hyper_coding`` (``""``: the model's mode).

    Raises:
      CheckpointError: no checkpoint given, or a missing/corrupt export, or one that is not a
        trained GLC codec (e.g. only the stage-I autoencoder).
    """
    from nlc_jax.codecs.weights import CheckpointError, load_codec_export

    checkpoint = (config.get("checkpoint", "") if config is not None else "") or ""
    params, model_config, digest = load_codec_export(checkpoint, "glc")
    if "latent" not in model_config:
        raise CheckpointError(f"{checkpoint}: holds only the stage-I autoencoder; train stage "
                              "'transform' on it and pass that run's workdir")
    return GLCCodec(params, model_config, digest, int(config.get("rate_index", 0)),
                    config.get("hyper_coding", "") or None)
