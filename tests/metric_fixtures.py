"""Shared loader of the metric parity fixtures (tests/fixtures/metrics/reference.json)."""

import json
from pathlib import Path

import numpy as np

from nlc_jax.data.images import load_image

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests/fixtures/metrics/reference.json").read_text())


def load_pair(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """(original, distorted) ``[H, W, 3]`` uint8 of one fixture record, cropped if it says so."""
    a = load_image(ROOT / record["original"])
    b = load_image(ROOT / record["distorted"])
    if record["crop"]:
        top, left, h, w = record["crop"]
        a, b = a[top:top + h, left:left + w], b[top:top + h, left:left + w]
    return a, b


def record_id(record: dict) -> str:
    """Readable test id of a fixture record."""
    return Path(record["distorted"]).stem + ("_odd_crop" if record["crop"] else "")
