"""Encode a dataset to files and prove every file decodes to the encoder's own reconstruction:
what the RD benchmarks run (``benchmarks/coolchic_rd.py``, ``benchmarks/noise2latent_rd.py``).

:func:`encode_and_verify` runs :func:`nlc_jax.fit.encode_images` (files, ``results.tsv``,
resume), keeps each file's encoder reconstruction as ``<output>/.encoder/<file>.png`` (lossless,
so a resumed run can still check the files of the previous one), then decodes every file and
compares the pixels with that reconstruction (arrays, not PSNRs). A diverged fit, a file
without its reconstruction, or a single differing pixel raises :class:`VerifyError`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlc_jax.codecs import registry
from nlc_jax.codecs.base import EncodeResult, OverfittedCodec
from nlc_jax.data.datasets import ImageSource
from nlc_jax.data.images import load_image, save_png
from nlc_jax.fit.pipeline import EncodeSettings, encode_images, output_name
from nlc_jax.metrics.psnr import psnr_exact


class VerifyError(ValueError):
    """A fit diverged, or a file does not decode to the encoder's reconstruction."""


@dataclasses.dataclass(frozen=True)
class VerifiedFile:
    """One checked file: ``image`` at ``lmbda``, its rate, quality and decode time."""

    image: str
    lmbda: float
    path: Path
    bpp: float
    psnr_db: float
    decode_s: float


def encode_and_verify(codec: OverfittedCodec, sources: Sequence[ImageSource],
                      output_dir: str | Path, settings: EncodeSettings) -> list[VerifiedFile]:
    """Encode every (source, λ) of ``settings`` into ``output_dir`` and check every file.

    Returns:
      one :class:`VerifiedFile` per (source, λ), source-major.

    Raises:
      VerifyError: a diverged fit (the engine's one-line errors), a file with no kept
        reconstruction, or decoded pixels that differ from the encoder's.
    """
    output_dir = Path(output_dir)
    kept = output_dir / ".encoder"

    def keep(name: str, result: EncodeResult) -> None:
        save_png(kept / f"{name}.png", result.reconstruction)

    outcome = encode_images(codec, sources, output_dir, settings, on_result=keep)
    if outcome.errors:
        raise VerifyError(f"{len(outcome.errors)} fit(s) failed: " + "; ".join(outcome.errors))
    sweep = len(settings.lmbdas) > 1
    files = []
    for source in sources:
        image = source.load()
        for lmbda in settings.lmbdas:
            name = output_name(source.name, lmbda, sweep)
            path, reference = output_dir / name, kept / f"{name}.png"
            if not reference.is_file():
                raise VerifyError(f"{path}: no encoder reconstruction {reference} (written by "
                                  "an older run?); delete the file to encode it again")
            data = path.read_bytes()
            t0 = time.perf_counter()
            decoded = registry.decode_bytes(data)
            seconds = time.perf_counter() - t0
            expected = load_image(reference)
            if decoded.shape != expected.shape or not np.array_equal(decoded, expected):
                differ = (int(np.count_nonzero(decoded != expected))
                          if decoded.shape == expected.shape else "all")
                raise VerifyError(f"{path}: decoded pixels differ from the encoder's "
                                  f"reconstruction ({differ} values)")
            files.append(VerifiedFile(source.name, float(lmbda), path,
                                      8.0 * len(data) / (image.shape[0] * image.shape[1]),
                                      psnr_exact(image, decoded), seconds))
    return files
