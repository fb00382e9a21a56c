"""What the training loop needs from a trainable model; the codec registry finds it by name
(``nlc_jax.codecs.registry.task_factory``).

Two optional extensions (used by GLC's VQ autoencoder and GAN stages, ignored otherwise):

* ``loss_takes_step = True``: the loop calls ``loss(params, images, rng, step=step)`` with the
  int32 step (a discriminator that starts at a given step);
* a loss whose metrics hold :data:`STATE_STATS` (a pytree of arrays, not a scalar): the loop pops
  it and, after the optimizer update, sets ``params = task.update_state(params, stats, rng)``
  (non-gradient updates such as EMA codebooks and dead-code restarts; parameters updated this
  way get zero gradients, so Adam leaves them alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import jax
import numpy as np

STATE_STATS = "state_stats"  # metrics key of the non-gradient statistics (see module doc)


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
    """The training task of ``config.codec``.

    Raises:
      ValueError: the codec cannot be trained.
    """
    from nlc_jax.codecs import registry

    return registry.task_factory(config.codec)(config)
