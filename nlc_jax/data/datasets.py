"""Input specs → images: a file, a directory, a glob, or ``tfds:<name>[:split]``.

:func:`open_inputs` returns :class:`ImageSource` objects that read lazily (a file is only
decoded when a batch needs it; its size comes from the header). TensorFlow Datasets is an
optional extra (``pip install 'nlc_jax[tf]'``): it is imported only for ``tfds:`` specs and
:func:`image_folder_builder`, with a one-line error when it is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from nlc_jax.data.images import ImageReadError, list_images, load_image

TFDS_PREFIX = "tfds:"


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One input image.

    Attributes:
      name: output stem (file stem, or ``<dataset>_<split>_<index>`` for tfds).
      path: the file, or ``None`` for in-memory images.
      array: ``[H, W, 3]`` uint8 for in-memory images.
    """

    name: str
    path: Path | None = None
    array: np.ndarray | None = None

    def load(self) -> np.ndarray:
        """``[H, W, 3]`` uint8; raises :class:`ImageReadError` (one line) if unreadable."""
        if self.array is not None:
            return self.array
        return load_image(self.path)

    def size(self) -> tuple[int, int]:
        """``(height, width)`` from the file header (no decoding)."""
        if self.array is not None:
            return int(self.array.shape[0]), int(self.array.shape[1])
        try:
            with Image.open(self.path) as im:
                width, height = im.size
        except FileNotFoundError:
            raise ImageReadError(f"{self.path}: no such file") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ImageReadError(f"{self.path}: cannot read image ({reason})") from None
        return int(height), int(width)


def open_inputs(spec: str, data_dir: str | None = None) -> list[ImageSource]:
    """Expand an input spec into image sources, in a deterministic order.

    Args:
      spec: an image file, a directory, a glob, or ``tfds:<name>[:split]`` (default split
        ``test``).
      data_dir: tfds data folder (tfds specs only).

    Raises:
      ImageReadError: the spec names no image, or tfds is missing / cannot load the dataset.
    """
    if spec.startswith(TFDS_PREFIX):
        name, _, split = spec[len(TFDS_PREFIX):].partition(":")
        if not name:
            raise ImageReadError(f"{spec}: expected tfds:<name>[:split]")
        return tfds_sources(name, split or "test", data_dir)
    return [ImageSource(p.stem, path=p) for p in list_images(spec)]


def shard(sources: list[ImageSource], index: int, count: int) -> list[ImageSource]:
    """Process ``index`` of ``count``'s disjoint, deterministic share (round robin)."""
    if not 0 <= index < count:
        raise ValueError(f"process index {index} out of range for {count} processes")
    return sources[index::count]


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImageReadError(
            "tfds inputs need tensorflow-datasets, which is not installed "
            "(pip install 'nlc_jax[tf]')") from None
    return tfds


def tfds_examples(name: str, split: str, data_dir: str | None = None):
    """Random-access examples of a TensorFlow Datasets split: ``examples[i]`` is a dict of numpy.

    A dataset prepared as ``array_record`` (or ``parquet``) is read lazily through
    ``tfds.data_source``; one prepared as ``tfrecord`` (tfds' default, which has no random access)
    is read into memory once through ``tfds.load``.

    Raises:
      ImageReadError: tfds is missing or cannot load the dataset (one line).
    """
    tfds = _import_tfds()
    try:
        try:
            return tfds.data_source(name, split=split, data_dir=data_dir)
        except NotImplementedError:  # tfrecord files: sequential reads only
            ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
            return list(tfds.as_numpy(ds))
    except Exception as e:  # tfds raises many types (DatasetNotFoundError, ValueError, …)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ImageReadError(f"tfds:{name}:{split}: cannot load ({reason})") from None


def example_image(example: dict, where: str) -> np.ndarray:
    """The ``image`` feature of a tfds example as ``[H, W, 3]`` uint8 (gray replicated)."""
    if "image" not in example:
        raise ImageReadError(f"{where}: examples have no 'image' feature")
    image = np.asarray(example["image"], np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ImageReadError(f"{where}: 'image' has shape {image.shape}, expected [H, W, 1|3|4]")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def tfds_sources(name: str, split: str = "test", data_dir: str | None = None) -> list[ImageSource]:
    """Images of a TensorFlow Datasets split (its ``image`` feature), read into memory."""
    where = f"tfds:{name}:{split}"
    sources = []
    for i, example in enumerate(tfds_examples(name, split, data_dir)):
        image = example_image(example, where)
        stem = example.get("name")
        stem = stem.decode() if isinstance(stem, bytes) else f"{name}_{split}_{i:05d}"
        sources.append(ImageSource(stem, array=image))
    return sources


def image_folder_builder(folder: str | Path, name: str, data_dir: str | None = None,
                         file_format: str = "array_record") -> Callable:
    """A tfds builder for a local image folder (e.g. Kodak, CLIC), one ``test`` split.

    Features: ``image`` (uint8 RGB) and ``name`` (file stem), in sorted file order. After
    ``builder.download_and_prepare()`` the dataset loads as ``tfds:<name>:test`` (with the same
    ``data_dir``) in ``encode.py --input`` and in training (``data=tfds:<name>:test``). The
    default ``array_record`` format gives the random access that training needs.
    """
    tfds = _import_tfds()
    files = list_images(folder)

    class _ImageFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "name": tfds.features.Text()}), disable_shuffling=True)  # sorted file order

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"test": self._generate_examples()}

        def _generate_examples(self):
            for path in files:
                yield path.stem, {"image": load_image(path), "name": path.stem}

    _ImageFolder.name = name
    return _ImageFolder(data_dir=data_dir, file_format=file_format)
