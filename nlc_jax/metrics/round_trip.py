"""Timed encode → decode round trips of a codec over a dataset, for the RD benchmarks.

Every decoded image is checked equal to the encoder's reconstruction (array comparison), so a
benchmark never scores pixels that a file would not decode to.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlc_jax.data.files import atomic_write_bytes


def timed_round_trips(codec: Any, sources: Sequence[Any], files: Path | None = None,
                      what: str = "") -> tuple[list[tuple[str, np.ndarray, bytes, np.ndarray]],
                                               dict[str, float]]:
    """Encode and decode every source with ``codec`` (``encode(image) -> EncodeResult``,
    ``decode(data) -> [H, W, 3]`` uint8), after one untimed round trip of the first (compiles).

    Args:
      codec: the codec at one operating point.
      sources: ``nlc_jax.data.datasets`` sources (``.name``, ``.load() -> [H, W, 3]`` uint8).
      files: write each file to ``<files>/<name>.nlc`` when given.
      what: names the operating point in the mismatch error.

    Returns:
      ``(name, image [H, W, 3], file bytes, decoded [H, W, 3])`` per source, and the timings
      ``{"warmup_encode_decode_s", "encode_s_mean", "decode_s_mean"}``.

    Raises:
      RuntimeError: a decoded image differs from the encoder's reconstruction.
    """
    t0 = time.perf_counter()
    first = sources[0].load()
    codec.decode(codec.encode(first).data)
    warmup_s = time.perf_counter() - t0
    out, enc_s, dec_s = [], [], []
    for src in sources:
        image = src.load()
        t0 = time.perf_counter()
        result = codec.encode(image)
        enc_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decoded = codec.decode(result.data)
        dec_s.append(time.perf_counter() - t0)
        if not np.array_equal(decoded, result.reconstruction):
            raise RuntimeError(f"{src.name}: decoded image differs from the encoder's "
                               f"reconstruction ({what})")
        if files is not None:
            atomic_write_bytes(files / f"{src.name}.nlc", result.data)
        out.append((src.name, image, result.data, decoded))
    return out, {"warmup_encode_decode_s": warmup_s, "encode_s_mean": float(np.mean(enc_s)),
                 "decode_s_mean": float(np.mean(dec_s))}
