"""Training input pipeline for learned codecs, built on ``grain``.

A dataset is named by one string (the config key ``data``):

* a folder (or a glob / a single file) of images, read with :func:`nlc_jax.data.images.load_image`;
* ``tfds:<name>`` or ``tfds:<name>:<split>`` (default split ``train``): a TensorFlow Datasets
  split (``tfds.data_source`` for ``array_record`` datasets, read into memory for ``tfrecord``
  ones; needs the optional ``tf`` extra; ``data_dir`` names the tfds folder).

Each training example is a random ``crop × crop`` window of one image (images smaller than the
crop are mirror-padded first) with a random horizontal flip, kept as uint8 so that the host sends
4× fewer bytes; the training step converts to float on the device. The order is a pure function of
the seed: the dataset is a ``grain.MapDataset`` (seeded shuffle, repeated with a new shuffle each
epoch, per-example RNG derived from the seed and the index), so batch ``k`` is always the same
batch and resuming at step ``k`` is just slicing. Decoding runs in grain's reader threads with
prefetch. An unreadable file is skipped with a warning (its slot takes the next readable file).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from nlc_jax.data.datasets import example_image, tfds_examples
from nlc_jax.data.images import ImageReadError, list_images, load_image


class DataSpecError(ValueError):
    """A ``data`` spec that names no usable dataset."""


class SkippedImageWarning(UserWarning):
    """A training image could not be read and was skipped."""


class FolderSource:
    """Random-access source over image files; ``source[i]`` is ``[H, W, 3]`` uint8.

    A file that cannot be read is reported once (:class:`SkippedImageWarning`) and replaced by the
    next readable file, so indices stay valid and the order stays deterministic.
    """

    def __init__(self, paths: Sequence[Path]):
        if not paths:
            raise DataSpecError("the dataset holds no image")
        self._paths = list(paths)
        self._bad: set[int] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> np.ndarray:
        n = len(self._paths)
        for k in range(n):
            i = (int(index) + k) % n
            if i in self._bad:
                continue
            try:
                return load_image(self._paths[i])
            except ImageReadError as e:
                with self._lock:
                    self._bad.add(i)
                warnings.warn(f"skipping unreadable training image: {e}", SkippedImageWarning,
                              stacklevel=2)
        raise DataSpecError(f"no readable image among the {n} files of the dataset")


class TfdsSource:
    """Random-access source over a TFDS split's ``image`` feature (``[H, W, 3]`` uint8).

    Datasets prepared as ``array_record`` are read lazily (``tfds.data_source``); ``tfrecord``
    ones are read into memory once (see :func:`nlc_jax.data.datasets.tfds_examples`).
    """

    def __init__(self, name: str, split: str, data_dir: str | None = None):
        self._where = f"data=tfds:{name}:{split}"
        try:
            self._examples = tfds_examples(name, split, data_dir)
        except ImageReadError as e:
            raise DataSpecError(f"{self._where}: {e}") from None
        if len(self._examples) == 0:
            raise DataSpecError(f"{self._where}: the split holds no example")

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index: int) -> np.ndarray:
        try:
            return example_image(self._examples[int(index)], self._where)
        except ImageReadError as e:
            raise DataSpecError(str(e)) from None


def open_source(spec: str, data_dir: str | None = None) -> FolderSource | TfdsSource:
    """The random-access source named by ``spec`` (folder, glob, file, or ``tfds:<name>[:split]``;
    ``data_dir`` is the TFDS data folder, default tfds' own)."""
    spec = str(spec)
    if spec.startswith("tfds:"):
        name, _, split = spec[len("tfds:"):].partition(":")
        if not name:
            raise DataSpecError(f"data={spec!r}: expected tfds:<name> or tfds:<name>:<split>")
        return TfdsSource(name, split or "train", data_dir)
    try:
        return FolderSource(list_images(spec))
    except ImageReadError as e:
        raise DataSpecError(f"data={spec!r}: {e}") from None


def random_crop_flip(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``[crop, crop, 3]`` uint8 window of ``image`` ``[H, W, 3]``, flipped with p=1/2.

    Images smaller than ``crop`` along an axis are mirror-padded to ``crop`` first.
    """
    h, w = image.shape[:2]
    pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - crop + 1))
    x = int(rng.integers(0, w - crop + 1))
    out = image[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def train_dataset(spec: str, *, crop: int, batch_size: int, seed: int,
                  shard_index: int = 0, shard_count: int = 1,
                  data_dir: str | None = None) -> grain.MapDataset:
    """Infinite dataset of ``[batch_size, crop, crop, 3]`` uint8 batches; element ``k`` = step ``k``.

    Args:
      spec: dataset name (see module docstring).
      crop: side of the square training crops.
      batch_size: examples per batch *for this shard* (process).
      seed: fixes the shuffle, the crops and the flips.
      shard_index, shard_count: this process's share of every global batch (multi-host: pass
        ``jax.process_index()`` / ``jax.process_count()``); examples are interleaved so the union
        over shards is the global batch.
      data_dir: TFDS data folder for ``tfds:`` specs (``None``: tfds' default).
    """
    if crop <= 0 or batch_size <= 0:
        raise DataSpecError(f"crop and batch size must be positive, got {crop} and {batch_size}")
    source = open_source(spec, data_dir)
    ds = (grain.MapDataset.source(source).seed(seed).shuffle().repeat()
          .random_map(lambda im, rng: random_crop_flip(im, crop, rng)))
    if shard_count > 1:
        ds = ds[shard_index::shard_count]
    return ds.batch(batch_size, drop_remainder=True, batch_fn=np.stack)


def iterate(dataset: grain.MapDataset, start: int = 0, *, threads: int = 4,
            prefetch: int = 8) -> Iterator[Any]:
    """Iterate ``dataset`` from element ``start`` with ``threads`` reader threads and prefetch."""
    options = grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=max(prefetch, 1))
    return iter(dataset[start:].to_iter_dataset(options))
