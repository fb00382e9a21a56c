"""Read PyTorch-trained weights without PyTorch and turn them into Flax parameter trees.

Two file kinds are read:

* ``.safetensors`` through the ``safetensors`` package's NumPy API (no code execution possible).
* ``.pth`` / ``.ckpt`` / ``.pt`` written by ``torch.save`` (the zip format of PyTorch ≥ 1.6) with
  a *restricted* unpickler: it resolves only the handful of globals a plain state dict needs
  (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``
  and the typed ``torch.*Storage`` classes, all replaced by NumPy equivalents) and refuses every
  other global, so an untrusted checkpoint cannot run code. Tensor bytes are read from the
  archive's ``data/<key>`` records.

Then :func:`to_flax` maps PyTorch names to Flax paths (``down_blocks.0.resnets.1.conv1.weight``
→ ``down_blocks_0/resnets_1/conv1/kernel``), transposes conv (``[O, I, kh, kw]`` →
``[kh, kw, I, O]``) and linear (``[O, I]`` → ``[I, O]``) weights, and checks the result against
the model's expected parameter shapes, raising one :class:`WeightsError` that lists every
missing, unexpected and wrongly shaped tensor.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from flax import traverse_util

StateDict = dict[str, np.ndarray]


class WeightsError(ValueError):
    """A weight file cannot be read or does not match the model (one-line message)."""


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for a ``torch.*Storage`` class: only carries the element dtype."""

    def __init__(self, dtype: Any):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_unused: Any) -> np.ndarray:
    """NumPy version of ``torch._utils._rebuild_tensor_v2`` (strides are in elements)."""
    if not size:
        return storage[offset].copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data: np.ndarray, *_unused: Any) -> np.ndarray:
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dt) for name, dt in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for ``data.pkl`` of a torch zip checkpoint that allows an explicit list of globals."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._source = source
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise WeightsError(
                f"{self._source}: refusing to load global '{module}.{name}' "
                "(only plain tensor state dicts are accepted)") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise WeightsError(f"{self._source}: unsupported persistent id {pid[:2]!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise WeightsError(f"{self._source}: tensor data record '{key}' is missing") from None
            arr = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
            if arr.size < numel:
                raise WeightsError(f"{self._source}: tensor data record '{key}' is truncated")
            self._storages[key] = arr[:numel]
        return self._storages[key]


def _read_torch_zip(path: Path) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise WeightsError(
            f"{path}: not a PyTorch zip checkpoint (legacy or corrupt file)") from None
    with archive:
        pkls = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pkls) != 1:
            raise WeightsError(f"{path}: expected one data.pkl in the archive, found {len(pkls)}")
        prefix = pkls[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise WeightsError(f"{path}: big-endian checkpoints are not supported")
        with archive.open(pkls[0]) as f:
            try:
                return _RestrictedUnpickler(f, archive, prefix, path).load()
            except WeightsError:
                raise
            except Exception as e:  # corrupt pickle stream: report in one line
                raise WeightsError(f"{path}: cannot unpickle checkpoint ({type(e).__name__}: {e})") from None


def _flatten_tensors(obj: Any, prefix: str = "") -> StateDict:
    out: StateDict = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten_tensors(v, f"{prefix}{k}."))
    elif isinstance(obj, np.ndarray):
        out[prefix[:-1]] = obj
    return out


def read_state_dict(path: str | Path) -> StateDict:
    """Read every tensor of a weight file as NumPy arrays.

    Args:
      path: a ``.safetensors`` file, or a ``.pth`` / ``.pt`` / ``.ckpt`` PyTorch zip checkpoint.
        A Lightning checkpoint's ``"state_dict"`` entry is used when present; nested dicts are
        flattened with dots; non-tensor entries are dropped.

    Returns:
      ``{name: array}`` in the file's own dtype (float16/bfloat16 kept as such).

    Raises:
      WeightsError: the file is missing, corrupt, or holds anything but plain tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as e:
            raise WeightsError(f"{path}: cannot read safetensors file ({e})") from None
    if path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        obj = _read_torch_zip(path)
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]  # PyTorch Lightning checkpoint
        return _flatten_tensors(obj)
    raise WeightsError(f"{path}: unknown weight file type '{path.suffix}'")


def strip_prefix(state: StateDict, prefix: str) -> StateDict:
    """Keep only the keys that start with ``prefix``, without it."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def flax_path(key: str) -> tuple[str, ...]:
    """PyTorch key → Flax module path, without the leaf rename.

    A numeric segment is joined to the preceding name (``resnets.1`` → ``resnets_1``); a
    leading one (``nn.Sequential`` index) becomes ``layers_N``.
    """
    out: list[str] = []
    for seg in key.split("."):
        if seg.isdigit():
            if out:
                out[-1] = f"{out[-1]}_{seg}"
            else:
                out.append(f"layers_{seg}")
        else:
            out.append(seg)
    return tuple(out)


def _convert_leaf(value: np.ndarray, expected_leaf: str) -> np.ndarray:
    if expected_leaf == "kernel":
        if value.ndim == 4:
            return value.transpose(2, 3, 1, 0)
        if value.ndim == 2:
            return value.T
    return value


def _torch_shape(shape: tuple[int, ...], leaf: str) -> tuple[int, ...]:
    """A Flax parameter shape in PyTorch's layout (inverse of :func:`_convert_leaf`)."""
    if leaf == "kernel" and len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if leaf == "kernel" and len(shape) == 2:
        return shape[::-1]
    return shape


def to_flax(state: StateDict, expected: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Map a PyTorch state dict onto a Flax parameter tree and verify it completely.

    Args:
      state: ``{torch_name: array}``, names already in the model's own (diffusers-style) scheme.
      expected: the model's parameter tree (arrays or ``jax.ShapeDtypeStruct``), e.g. from
        ``jax.eval_shape(module.init, ...)["params"]``.
      what: the file/model named in error messages.

    Returns:
      A nested dict of float32 NumPy arrays with exactly ``expected``'s structure.

    Raises:
      WeightsError: listing all missing, unexpected and wrongly shaped tensors at once.
    """
    want = {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(dict(expected)).items()}
    got: dict[tuple[str, ...], np.ndarray] = {}
    unexpected: list[str] = []
    wrong: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for key, value in state.items():
        path = flax_path(key)
        leaf = path[-1]
        if leaf == "weight":
            cands = [path[:-1] + ("kernel",), path[:-1] + ("scale",)]
        else:
            cands = [path]
        target = next((c for c in cands if c in want), None)
        if target is None:
            unexpected.append(key)
            continue
        seen.add(target)
        arr = _convert_leaf(np.asarray(value), target[-1])
        if tuple(arr.shape) != want[target]:
            wrong.append(f"{key} {tuple(value.shape)}, expected "
                         f"{_torch_shape(want[target], target[-1])}")
            continue
        got[target] = np.asarray(arr, np.float32)
    missing = ["/".join(p) for p in want if p not in seen]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(sorted(missing))}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(sorted(unexpected))}")
    if wrong:
        problems.append(f"wrong shape {len(wrong)}: {', '.join(sorted(wrong))}")
    if problems:
        raise WeightsError(f"{what}: weights do not match the model; " + "; ".join(problems))
    return traverse_util.unflatten_dict(got)
