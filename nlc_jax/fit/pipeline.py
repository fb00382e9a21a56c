"""Whole-dataset encoding: images × λ → shape buckets → batched fits → ``.nlc`` files.

:func:`encode_images` is what ``encode.py`` runs for overfitted codecs; :func:`encode_learned`
runs a :class:`LearnedCodec` image by image with the same outputs. Outputs in ``output_dir``:

* ``<stem>.nlc`` (one λ) or ``<stem>_lmbda<λ>.nlc`` (a sweep), written atomically (``<stem>``
  is the source's name: the file stem, or the file name where stems clash); a gray input's file
  is marked gray (``nlc_jax.codecs.gray``);
* ``results.tsv`` (``results.<process>.tsv`` on multi-host runs): one row per file, columns
  :data:`COLUMNS`; bpp = 8 × file size / pixels;
* ``.inflight[.<process>]/``: the checkpoint of the batch being fitted (removed when done).

A fit counts as finished when its row is in the results table and its file exists; a rerun
skips finished fits and first resumes the checkpointed batch, so a killed job loses at most
``checkpoint_every_s`` of work and never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from nlc_jax.codecs.base import EncodeResult, LearnedCodec, OverfittedCodec
from nlc_jax.codecs.gray import code_as_gray
from nlc_jax.data.datasets import ImageSource
from nlc_jax.data.files import atomic_write_bytes
from nlc_jax.data.images import ImageReadError
from nlc_jax.fit.buckets import BucketPolicy, plan_batches, wasted_fraction
from nlc_jax.fit.checkpoint import BatchCheckpoint, read_meta
from nlc_jax.fit.coding import TargetShapes, code_batch, decoder_candidates
from nlc_jax.fit.engine import Engine, FitOptions, Progress, make_mesh
from nlc_jax.machine import device_description
from nlc_jax.metrics.psnr import psnr_exact

COLUMNS = ("image", "lmbda", "bpp", "psnr_db", "encode_s", "mac_per_pixel", "batch_id", "device")


@dataclasses.dataclass(frozen=True)
class EncodeSettings:
    """How a dataset is encoded.

    Attributes:
      lmbdas: rate points; more than one is a sweep (one file per λ).
      batch_size: fits (image × λ) per batch, across all devices of this process.
      seed: base seed; a fit's seed is ``seed + crc32(image name)`` (independent of batching).
      policy: shape bucketing policy.
      options: engine options.
      checkpoint_every_s: seconds between checkpoints of the in-flight batch (``None``: never).
      progress: show tqdm bars on stderr.
      process_index, process_count: this process's place in a multi-host job.
    """

    lmbdas: tuple[float, ...]
    batch_size: int = 8
    seed: int = 0
    policy: BucketPolicy = BucketPolicy()
    options: FitOptions = FitOptions()
    checkpoint_every_s: float | None = 60.0
    progress: bool = True
    process_index: int = 0
    process_count: int = 1


@dataclasses.dataclass(frozen=True)
class _Fit:
    source: ImageSource
    lmbda: float
    seed: int


def output_name(stem: str, lmbda: float, sweep: bool) -> str:
    """File name of one fit: ``<stem>.nlc``, or ``<stem>_lmbda<λ>.nlc`` in a sweep."""
    return f"{stem}_lmbda{lmbda:g}.nlc" if sweep else f"{stem}.nlc"


class ResultsTable:
    """Append-only ``results.tsv``; a partial last line (a killed writer) is ignored."""

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().split("\n")
        rows = []
        for line in lines[1:-1]:  # header; the text after the last "\n" is incomplete
            cells = line.split("\t")
            if len(cells) == len(COLUMNS):
                rows.append(dict(zip(COLUMNS, cells, strict=True)))
        return rows

    def append(self, row: dict[str, Any]) -> None:
        prefix = b""
        if not self.path.exists() or self.path.stat().st_size == 0:
            prefix = ("\t".join(COLUMNS) + "\n").encode()
        else:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    prefix = b"\n"  # end a line cut by a kill; rows() skips it
        line = "\t".join(_cell(row[c]) for c in COLUMNS) + "\n"
        with open(self.path, "ab") as f:
            f.write(prefix + line.encode())
            f.flush()
            os.fsync(f.fileno())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _lmbda_key(lmbda: float | str) -> str:
    return f"{float(lmbda):g}"


def _finished(table: ResultsTable, output_dir: Path, sweep: bool) -> set[tuple[str, str]]:
    done = set()
    for row in table.rows():
        if (output_dir / output_name(row["image"], float(row["lmbda"]), sweep)).exists():
            done.add((row["image"], _lmbda_key(row["lmbda"])))
    return done


def _row(name: str, lmbda: float, result: EncodeResult, image: np.ndarray, seconds: float,
         batch_id: str, device: str) -> dict[str, Any]:
    h, w = image.shape[:2]
    psnr = psnr_exact(result.reconstruction, image)
    return {"image": name, "lmbda": float(lmbda), "bpp": 8.0 * len(result.data) / (h * w),
            "psnr_db": psnr, "encode_s": float(seconds),
            "mac_per_pixel": float(result.info.get("mac_per_pixel", float("nan"))),
            "batch_id": batch_id, "device": device}


@dataclasses.dataclass
class EncodeOutcome:
    """What an encode run did: the rows it appended and one line per image/fit it skipped."""

    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    #: with decoder candidates: output file name → {candidate preset: MSE + λ·bpp}
    candidate_costs: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    def error(self, message: str) -> None:
        self.errors.append(message)
        tqdm.write(f"error: {message}", file=sys.stderr)


def _results_path(output_dir: Path, settings: EncodeSettings) -> Path:
    if settings.process_count > 1:
        return output_dir / f"results.{settings.process_index}.tsv"
    return output_dir / "results.tsv"


def encode_images(codec: OverfittedCodec, sources: Sequence[ImageSource], output_dir: str | Path,
                  settings: EncodeSettings, mesh: Any | None = None,
                  on_result: Callable[[str, EncodeResult], None] | None = None) -> EncodeOutcome:
    """Encode every (image, λ) of this process's share with batched fits.

    Args:
      codec: an overfitted codec.
      sources: all input images (the caller shards them per process, see
        :func:`nlc_jax.data.datasets.shard`).
      output_dir: output folder.
      settings: :class:`EncodeSettings`.
      mesh: device mesh (default: all local devices).
      on_result: called with the file name and the :class:`EncodeResult` of each file written
        (e.g. to keep the encoder's reconstruction and check the decoder against it).

    Returns:
      :class:`EncodeOutcome`: rows appended to the results table, and the one-line errors of
      unreadable images and diverged fits (which have no row and no file).
    """
    outcome = EncodeOutcome()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sweep = len(settings.lmbdas) > 1
    table = ResultsTable(_results_path(output_dir, settings))
    done = _finished(table, output_dir, sweep)
    suffix = f".{settings.process_index}" if settings.process_count > 1 else ""
    ckpt_dir = output_dir / f".inflight{suffix}"
    mesh = make_mesh() if mesh is None else mesh
    candidates = decoder_candidates(codec)
    engines = [Engine(c, mesh, settings.options) for c in candidates]
    engine = engines[0]
    device = device_description()
    by_name = {s.name: s for s in sources}

    fits = [_Fit(s, float(lm), (settings.seed + zlib.crc32(s.name.encode())) % (2 ** 31))
            for s in sources for lm in settings.lmbdas
            if (s.name, _lmbda_key(lm)) not in done]
    # Resume the checkpointed batch first, exactly as it was composed.
    batches: list[list[_Fit]] = []
    meta = read_meta(ckpt_dir)
    if meta is not None and all(f[0] in by_name for f in meta.get("fits", [])):
        first = [_Fit(by_name[n], float(lm), int(sd)) for n, lm, sd in meta["fits"]]
        if first:
            batches.append(first)
            taken = {(f.source.name, _lmbda_key(f.lmbda)) for f in first}
            fits = [f for f in fits if (f.source.name, _lmbda_key(f.lmbda)) not in taken]
    shapes_of = TargetShapes(codec)
    sized, shapes, unreadable = [], [], set()
    for f in fits:
        if f.source.name in unreadable:
            continue
        try:
            shapes.append(shapes_of(f.source.size())[:2])
            sized.append(f)
        except ImageReadError as e:
            unreadable.add(f.source.name)
            outcome.error(str(e))
    plan = plan_batches(shapes, settings.batch_size, settings.policy)
    batches += [[sized[i] for i in b.fits] for b in plan]
    if plan:
        waste = wasted_fraction(plan, shapes, fits_multiple=engine.n_devices)
        tqdm.write(f"{len(sized)} fits in {len(plan)} batches; padding wastes {waste:.1%} of "
                   "the computed pixels", file=sys.stderr)

    n_total = sum(len(b) for b in batches)
    bar = tqdm(total=n_total, desc="fits", unit="fit", disable=not settings.progress,
               dynamic_ncols=True)
    start = time.monotonic()
    for batch_index, batch in enumerate(batches):
        batch_id = f"{settings.process_index}-{batch_index}"
        _run_batch(candidates, engines, batch, output_dir, sweep, settings, ckpt_dir, batch_id,
                   device, table, done, outcome, on_result)
        bar.update(len(batch))
        hours = (time.monotonic() - start) / 3600.0
        bar.set_postfix(images_per_hour=f"{bar.n / len(settings.lmbdas) / max(hours, 1e-9):.1f}")
    bar.close()
    return outcome


def _batch_key(codec: OverfittedCodec, fits: list[_Fit], shape: tuple[int, ...]) -> str:
    desc = json.dumps([[f.source.name, f.lmbda, f.seed] for f in fits] + [list(shape)]
                      + [repr(codec.recipe()), codec.n_candidates,
                         repr(getattr(codec, "arch", None))])
    return hashlib.sha256(desc.encode()).hexdigest()[:32]


def _run_batch(candidates: list, engines: list, batch: list[_Fit], output_dir: Path,
               sweep: bool, settings: EncodeSettings, ckpt_dir: Path, batch_id: str,
               device: str, table: ResultsTable, done: set, outcome: EncodeOutcome,
               on_result: Callable[[str, EncodeResult], None] | None) -> None:
    """Fit a batch with every decoder candidate (:func:`nlc_jax.fit.coding.code_batch`) and
    write, per fit, the file of the candidate with the lowest ``MSE + λ·bpp``."""
    t0 = time.monotonic()
    images, kept, loaded = [], [], {}
    for f in batch:
        if f.source.name not in loaded:
            try:
                loaded[f.source.name] = f.source.load()
            except ImageReadError as e:
                outcome.error(str(e))
                loaded[f.source.name] = None
        if loaded[f.source.name] is not None:
            images.append(loaded[f.source.name])
            kept.append(f)
    if not kept:
        return
    bars = []

    def on_candidate(codec, engine):
        bar = tqdm(total=sum(p.steps for p in engine.phases), leave=False, unit="step",
                   desc=f"batch {batch_id} ({len(kept)} fits)", dynamic_ncols=True,
                   disable=not settings.progress)
        bars.append(bar)

        def on_progress(p: Progress) -> None:
            bar.update(p.step - bar.n)
            bar.set_postfix(phase=p.phase, loss=f"{p.mean_loss:.4g}")
        return on_progress

    checkpoints = []

    def checkpoint_for(codec, shape):
        if settings.checkpoint_every_s is None:
            return None
        checkpoints.append(BatchCheckpoint(
            ckpt_dir, _batch_key(codec, kept, shape), settings.checkpoint_every_s,
            fits=[[f.source.name, f.lmbda, f.seed] for f in kept]))
        return checkpoints[-1]

    coded = code_batch(candidates, engines, images, [f.lmbda for f in kept],
                       [f.seed for f in kept], multiple=settings.policy.multiple,
                       options=settings.options, on_candidate=on_candidate,
                       checkpoint_for=checkpoint_for,
                       wanted=[(f.source.name, _lmbda_key(f.lmbda)) not in done for f in kept])
    for bar in bars:
        bar.close()
    for checkpoint in checkpoints:
        if checkpoint.resumed_from is not None:
            tqdm.write(f"batch {batch_id}: resumed from its checkpoint (phase "
                       f"{checkpoint.resumed_from[0]}, step {checkpoint.resumed_from[1]})",
                       file=sys.stderr)
    per_fit = (time.monotonic() - t0) / len(kept)
    for f, image, c in zip(kept, images, coded, strict=True):
        if (f.source.name, _lmbda_key(f.lmbda)) in done:
            continue  # written before a kill that happened after it; the checkpoint re-ran it
        if c.result is None:
            outcome.error(f"{f.source.name} (lmbda {f.lmbda:g}): {c.error}")
            continue
        name = output_name(f.source.name, f.lmbda, sweep)
        outcome.candidate_costs[name] = c.costs
        atomic_write_bytes(output_dir / name, c.result.data)
        row = _row(f.source.name, f.lmbda, c.result, image, per_fit, batch_id, device)
        table.append(row)
        outcome.rows.append(row)
        if on_result is not None:
            on_result(name, c.result)


def encode_learned(codec: LearnedCodec, sources: Sequence[ImageSource], output_dir: str | Path,
                   lmbda: float, settings: EncodeSettings) -> EncodeOutcome:
    """Encode each image with ``codec.encode`` (one pass per image); same outputs/rows."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = ResultsTable(_results_path(output_dir, settings))
    done = _finished(table, output_dir, False)
    device = device_description()
    outcome = EncodeOutcome()
    todo = [s for s in sources if (s.name, _lmbda_key(lmbda)) not in done]
    for index, source in enumerate(tqdm(todo, desc="images", unit="img",
                                        disable=not settings.progress, dynamic_ncols=True)):
        t0 = time.monotonic()
        try:
            image = source.load()
        except ImageReadError as e:
            outcome.error(str(e))
            continue
        result = code_as_gray(codec.encode(image), image)
        atomic_write_bytes(output_dir / output_name(source.name, lmbda, False), result.data)
        row = _row(source.name, lmbda, result, image, time.monotonic() - t0,
                   f"{settings.process_index}-{index}", device)
        table.append(row)
        outcome.rows.append(row)
    return outcome
