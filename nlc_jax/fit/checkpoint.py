"""Checkpoints of the in-flight batch (orbax), so a killed encode resumes where it stopped.

Layout of a checkpoint folder::

    state_<n>/      orbax StandardCheckpointer of the FitState (host arrays, [B, K, ...])
    meta.json       {"key", "phase_index", "step", "state": "state_<n>", "fits": [...]} (atomic)

``meta.json`` is replaced (temp file + rename) only after ``state_<n>`` is complete, and older
``state_*`` folders are removed afterwards, so a SIGKILL at any moment leaves a readable pair.
``key`` identifies the batch (its fits, λ, seeds, shape, codec recipe); a checkpoint of another
batch is ignored.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from nlc_jax.data.files import atomic_write_bytes


class BatchCheckpoint:
    """Save/restore the state of one batch.

    Args:
      directory: checkpoint folder (created on first save).
      key: identity of the batch (see module docstring).
      every_s: minimum seconds between two saves (0 saves after every chunk).
      fits: JSON-able description of the batch's fits, stored in ``meta.json`` so a resumed run
        can rebuild the same batch (see :func:`read_meta`).
    """

    def __init__(self, directory: str | Path, key: str, every_s: float = 60.0,
                 fits: list | None = None):
        self.directory = Path(directory)
        self.key = key
        self.every_s = float(every_s)
        self.fits = fits or []
        self._last = time.monotonic()
        self._count = 0
        self.resumed_from: tuple[int, int] | None = None  # (phase_index, step) after restore
        self._ckptr = ocp.StandardCheckpointer()

    def maybe_save(self, state: Any, phase_index: int, step: int) -> bool:
        """Save if ``every_s`` has elapsed since the last save (or the batch started)."""
        if time.monotonic() - self._last < self.every_s:
            return False
        self.save(state, phase_index, step)
        return True

    def save(self, state: Any, phase_index: int, step: int) -> None:
        """Write ``state`` (at ``step`` of phase ``phase_index``) and point ``meta.json`` to it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"state_{int(time.time() * 1000)}_{self._count}"
        self._count += 1
        self._ckptr.save((self.directory / name).absolute(), jax.device_get(state))
        self._ckptr.wait_until_finished()
        meta = {"key": self.key, "phase_index": phase_index, "step": step, "state": name,
                "fits": self.fits}
        atomic_write_bytes(self.directory / "meta.json", json.dumps(meta).encode())
        for stale in self.directory.glob("state_*"):
            if stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)
        self._last = time.monotonic()

    def restore(self, engine: Any, targets: Any, masks: Any, lmbdas: Any,
                seeds: Any) -> tuple[int, int, Any] | None:
        """``(phase_index, step, state)`` placed like ``targets``, or ``None`` (no/other batch)."""
        meta = read_meta(self.directory)
        if meta is None or meta.get("key") != self.key:
            return None
        abstract = engine.abstract_state(meta["phase_index"], targets, masks, lmbdas, seeds)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), abstract)
        state = self._ckptr.restore((self.directory / meta["state"]).absolute(), abstract)
        state = jax.tree.map(np.asarray, state)
        self.resumed_from = (int(meta["phase_index"]), int(meta["step"]))
        return int(meta["phase_index"]), int(meta["step"]), engine.put(state)

    def clear(self) -> None:
        """Remove the checkpoint (the batch is finished and written)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def read_meta(directory: str | Path) -> dict | None:
    """The ``meta.json`` of a checkpoint folder, or ``None`` when there is none (or unreadable)."""
    path = Path(directory) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
