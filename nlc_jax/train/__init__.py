"""Training pipeline for learned codecs: ``train_and_evaluate(config, workdir)``."""

from nlc_jax.codecs.weights import CheckpointError
from nlc_jax.train.loop import ConfigError, train_and_evaluate

__all__ = ["CheckpointError", "ConfigError", "train_and_evaluate"]
