"""Metric writer: console + ``metrics.jsonl`` always, TensorBoard when TensorFlow is installed.

``clu.metric_writers`` imports TensorFlow (and its summary writer the ``tensorboard`` package,
which TensorFlow ≥ 2.20 no longer installs) at import time, so it is only imported when both are
importable (the optional ``tf`` extra); without them, no TensorBoard events.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging


class MetricWriter:
    """Writes scalar metrics per step to the log, ``<workdir>/metrics.jsonl`` and TensorBoard.

    Each JSONL line is ``{"step": int, "split": str, "time": float, <name>: float, ...}``.
    """

    def __init__(self, workdir: str | Path, tensorboard: bool = True, enabled: bool = True):
        self._enabled = enabled
        self._path = Path(workdir) / "metrics.jsonl"
        self._tb = None
        if enabled and tensorboard and all(importlib.util.find_spec(m) is not None
                                           for m in ("tensorflow", "tensorboard")):
            from clu import metric_writers  # imports TensorFlow

            self._tb = metric_writers.SummaryWriter(str(Path(workdir) / "tensorboard"))

    def write(self, step: int, scalars: Mapping[str, Any], split: str = "train") -> None:
        """Record ``scalars`` (numbers or 0-d arrays) at ``step``."""
        if not self._enabled:
            return
        values = {k: float(np.asarray(v)) for k, v in scalars.items()}
        logging.info("[%s %d] %s", split, step,
                     ", ".join(f"{k}={v:.5g}" for k, v in sorted(values.items())))
        with self._path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, "time": time.time(),
                                **values}) + "\n")
        if self._tb is not None:
            self._tb.write_scalars(step, {f"{split}/{k}": v for k, v in values.items()})

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()


def read_metrics(workdir: str | Path, split: str = "train") -> list[dict[str, float]]:
    """The records of ``split`` in ``<workdir>/metrics.jsonl``, in file order."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("split") == split]
