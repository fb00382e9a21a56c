"""Training checkpoints (orbax: periodic, keep-last-N, exact resume) and inference exports.

* Training state ``{"step", "params", "opt_state"}`` is saved by an orbax ``CheckpointManager``
  under ``<workdir>/checkpoints/<step>``. The random streams are pure functions of
  ``(seed, step)`` (see ``loop.py``), so restoring the state is enough for an exact resume.
* The inference export is a directory with ``params.safetensors`` (float32 weights and integer
  tables, keys joined by ``/``) and ``model.json`` (the model config and a hash of the weights). Encoders write the hash
  into each file; decoders refuse a file made with other weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from nlc_jax.data.files import plain_file_mode


class CheckpointError(ValueError):
    """A checkpoint or an export that is missing, corrupt or made for another model."""


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class TrainCheckpoints:
    """Periodic orbax checkpoints of the training state, the last ``keep`` kept."""

    def __init__(self, directory: str | Path, keep: int):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1), create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Save ``state`` (a pytree of arrays) as checkpoint ``step`` (asynchronously)."""
        self._manager.save(int(step), args=ocp.args.StandardSave(state))

    def restore(self, step: int, like: Any) -> Any:
        """Restore checkpoint ``step`` with the structure, shapes and shardings of ``like``.

        Raises:
          CheckpointError: unreadable or corrupt checkpoint, or one of another model.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self._manager.restore(int(step), args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # orbax/tensorstore raise many types for bad files
            raise CheckpointError(
                f"{self.directory / str(step)}: cannot restore the training checkpoint "
                f"({_one_line(e)}); delete it to restart from the previous one") from None

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def weights_hash(params: Any) -> bytes:
    """8-byte SHA-256 digest of a params pytree (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for key, value in sorted(traverse_util.flatten_dict(params, sep="/").items()):
        value = np.ascontiguousarray(np.asarray(value))
        h.update(f"{key}|{value.dtype.str}|{value.shape}".encode())
        h.update(value.tobytes())
    return h.digest()[:8]


def export_inference(directory: str | Path, params: Any, model_config: dict[str, Any]) -> Path:
    """Write ``params`` and ``model_config`` as an inference export; returns the directory.

    Floating-point leaves are stored as float32, integer leaves (e.g. entropy tables) as they are.
    """
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = jax.tree.map(
        lambda a: np.asarray(a, np.float32) if np.issubdtype(np.asarray(a).dtype, np.floating)
        else np.asarray(a), jax.device_get(params))
    flat = traverse_util.flatten_dict(params, sep="/")
    tmp = directory / "params.safetensors.tmp"
    save_file(flat, str(tmp))
    os.chmod(tmp, plain_file_mode())  # safetensors creates it 0o600
    tmp.replace(directory / "params.safetensors")
    meta = {"model": model_config, "weights_hash": weights_hash(params).hex()}
    (directory / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return directory


def load_inference(directory: str | Path) -> tuple[Any, dict[str, Any], bytes]:
    """Read an inference export: ``(params, model_config, weights_hash)``.

    ``directory`` may also be a training workdir (its ``export/`` is used).

    Raises:
      CheckpointError: missing or corrupt files, or weights that do not match the recorded hash.
    """
    from safetensors.numpy import load_file

    directory = Path(directory)
    if (directory / "export" / "model.json").exists():
        directory = directory / "export"
    if not (directory / "model.json").exists():
        raise CheckpointError(f"{directory}: not a model export (no model.json); pass the "
                              "workdir of a training run or its export/ directory")
    try:
        meta = json.loads((directory / "model.json").read_text())
        model_config, expected = meta["model"], bytes.fromhex(meta["weights_hash"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{directory / 'model.json'}: corrupt ({_one_line(e)})") from None
    try:
        flat = load_file(str(directory / "params.safetensors"))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(
            f"{directory / 'params.safetensors'}: cannot read weights ({_one_line(e)})") from None
    params = traverse_util.unflatten_dict(flat, sep="/")
    if weights_hash(params) != expected:
        raise CheckpointError(f"{directory}: weights do not match the hash in model.json "
                              "(corrupt or modified export)")
    return params, model_config, expected
