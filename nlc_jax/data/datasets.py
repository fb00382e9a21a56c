"""Input specs → images: a file, a directory, a glob, or ``tfds:<name>[:split]``.

:func:`open_inputs` returns :class:`ImageSource` objects that read lazily (a file is only
decoded when a batch needs it; its size comes from the header, so an image that is too large is
refused before its pixels are decoded). Output names are the file stems; inputs whose stems
clash are named by their file names instead (``dup.png`` and ``dup.jpg`` give ``dup.png.nlc``
and ``dup.jpg.nlc``), see :func:`input_names`. TensorFlow Datasets is an optional extra
(``pip install 'nlc_jax[tf]'``): it is imported only for ``tfds:`` specs and
:func:`image_folder_builder`, with a one-line error when it is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nlc_jax.bitstream.limits import check_image_size
from nlc_jax.data.images import ImageReadError, image_size, list_images, load_image

TFDS_PREFIX = "tfds:"


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One input image.

    Attributes:
      name: output stem (see :func:`input_names`, or ``<dataset>_<split>_<index>`` for tfds).
      path: the file, or ``None`` for in-memory images.
      array: ``[H, W, 3]`` uint8 for in-memory images.
      error: why this input is refused (raised by :meth:`load` and :meth:`size`), or ``None``.
    """

    name: str
    path: Path | None = None
    array: np.ndarray | None = None
    error: str | None = None

    def load(self) -> np.ndarray:
        """``[H, W, 3]`` uint8; raises :class:`ImageReadError` (one line) if unreadable or
        refused."""
        if self.error is not None:
            raise ImageReadError(self.error)
        if self.array is not None:
            self.size()
            return self.array
        return load_image(self.path)

    def size(self) -> tuple[int, int]:
        """``(height, width)`` from the file header (no decoding, EXIF orientation applied);
        raises :class:`ImageReadError` (one line) if unreadable, refused or too large."""
        if self.error is not None:
            raise ImageReadError(self.error)
        if self.path is not None:
            return image_size(self.path)
        height, width = int(self.array.shape[0]), int(self.array.shape[1])
        try:
            check_image_size(height, width, ImageReadError)
        except ImageReadError as e:
            raise ImageReadError(f"{self.name}: {e}") from None
        return height, width


def input_names(paths: Sequence[Path]) -> list[str | None]:
    """Output names of input files (in the same order): each file's stem; where several files
    share a stem, their file names (``dup.png``, ``dup.jpg``). A file whose name still clashes
    with an earlier one in sorted path order (the same file name in two folders of a glob) gets
    ``None``: it cannot be given a name of its own and is refused."""
    stems = [p.stem for p in paths]
    names = [p.stem if stems.count(p.stem) == 1 else p.name for p in paths]
    taken: set[str] = set()
    out: list[str | None] = [None] * len(paths)
    for i in sorted(range(len(paths)), key=lambda i: str(paths[i])):
        if names[i] not in taken:
            taken.add(names[i])
            out[i] = names[i]
    return out


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
    paths = list_images(spec)
    return [ImageSource(name, path=p) if name is not None else ImageSource(
        str(p), path=p, error=f"{p}: another input has the same file name; rename one (each "
                              "output needs a name of its own)")
        for p, name in zip(paths, input_names(paths), strict=True)]


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

    Features: ``image`` (uint8 RGB) and ``name`` (:func:`input_names`), in sorted file order. After
    ``builder.download_and_prepare()`` the dataset loads as ``tfds:<name>:test`` (with the same
    ``data_dir``) in ``encode.py --input`` and in training (``data=tfds:<name>:test``). The
    default ``array_record`` format gives the random access that training needs.
    """
    tfds = _import_tfds()
    files = list_images(folder)
    names = input_names(files)
    if None in names:
        raise ImageReadError(f"{folder}: two images share the file name "
                             f"{files[names.index(None)].name}")

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
            for path, stem in zip(files, names, strict=True):
                yield stem, {"image": load_image(path), "name": stem}

    _ImageFolder.name = name
    return _ImageFolder(data_dir=data_dir, file_format=file_format)
