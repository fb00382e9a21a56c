"""Training checkpoints (orbax: periodic, keep-last-N, exact resume); the inference export that
training writes at the end is :func:`nlc_jax.codecs.weights.export_inference`.

* Training state ``{"step", "params", "opt_state"}`` is saved by an orbax ``CheckpointManager``
  under ``<workdir>/checkpoints/<step>``. The random streams are pure functions of
  ``(seed, step)`` (see ``loop.py``), so restoring the state is enough for an exact resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from nlc_jax.codecs.weights import CheckpointError, one_line


class TrainCheckpoints:
    """Periodic orbax checkpoints of the training state, the last ``keep`` kept."""

    def __init__(self, directory: str | Path, keep: int):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1), create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Save ``state`` (a pytree of arrays) as checkpoint ``step`` (asynchronously)."""
        self._manager.save(int(step), args=ocp.args.StandardSave(state))

    def restore(self, step: int, like: Any) -> Any:
        """Restore checkpoint ``step`` with the structure, shapes and shardings of ``like``.

        Raises:
          CheckpointError: unreadable or corrupt checkpoint, or one of another model.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self._manager.restore(int(step), args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # orbax/tensorstore raise many types for bad files
            raise CheckpointError(
                f"{self.directory / str(step)}: cannot restore the training checkpoint "
                f"({one_line(e)}); delete it to restart from the previous one") from None

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
