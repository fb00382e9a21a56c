"""What the training loop needs from a trainable model, and where to find it by codec name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

import jax
import numpy as np

# codec name (config.codec) -> "module:factory" returning a TrainTask; imported lazily.
_TASKS: dict[str, str] = {
    "hyperprior": "nlc_jax.codecs.hyperprior.training:make_task",
}


class TrainTask(Protocol):
    """A model the generic loop can train, evaluate with real coding, and export."""

    def init(self, rng: jax.Array, crop: int) -> Any:
        """Initial float32 parameters (a pytree) for ``[B, crop, crop, 3]`` inputs."""
        ...

    def loss(self, params: Any, images: jax.Array, rng: jax.Array) -> tuple[jax.Array,
                                                                          dict[str, jax.Array]]:
        """Training loss of ``images`` ``[B, H, W, 3]`` float32 in [0, 1], and scalar metrics."""
        ...

    def evaluate(self, params: Any, images: Sequence[np.ndarray]) -> dict[str, float]:
        """Host side: code each ``[H, W, 3]`` uint8 image for real; mean metrics (bpp, psnr…)."""
        ...

    def export(self, params: Any) -> Any:
        """Training params → the inference params written to ``<workdir>/export``."""
        ...

    def model_config(self) -> dict[str, Any]:
        """JSON-able description of the model, stored with the inference export."""
        ...


def make_task(config: Any) -> TrainTask:
    """The training task of ``config.codec``."""
    try:
        target = _TASKS[config.codec]
    except KeyError:
        raise ValueError(f"codec {config.codec!r} cannot be trained; trainable codecs: "
                         f"{', '.join(sorted(_TASKS))}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)(config)
