"""Weights of learned models, shared by the codecs that need them (hyperprior, CLRIC) and by
training: the hashes files record of the weights that made them, and inference exports.

* :func:`weights_hash`: 8 bytes over a params pytree's names, dtypes, shapes and values; the
  hash an inference export records and a hyperprior file carries.
* :func:`autoencoder_hash`: over the pytree's paths, shapes and float32 values; the hash a
  CLRIC file carries of its autoencoder.
* :func:`load_codec_export`: the export a learned codec's coder is given, checked to be its own;
  :func:`check_file_weights`: a decoder's refusal of a file made with other weights.
* An inference export is a directory with ``params.safetensors`` (float32 weights and integer
  tables, keys joined by ``/``) and ``model.json`` (the model config and :func:`weights_hash`).
  Encoders write the hash into each file; decoders refuse a file made with other weights.

Each file format fixes its hash, so the two stay separate functions.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from nlc_jax.data.files import plain_file_mode


class CheckpointError(ValueError):
    """A checkpoint or an export that is missing, corrupt or made for another model."""


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def one_line(e: BaseException) -> str:
    """An exception as ``Type: first line`` (for one-line errors)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def weights_hash(params: Any) -> bytes:
    """8-byte SHA-256 digest of a params pytree (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for key, value in sorted(traverse_util.flatten_dict(params, sep="/").items()):
        value = np.ascontiguousarray(np.asarray(value))
        h.update(f"{key}|{value.dtype.str}|{value.shape}".encode())
        h.update(value.tobytes())
    return h.digest()[:8]


def autoencoder_hash(params: Any, n_bytes: int = 16) -> bytes:
    """Deterministic ``n_bytes``-byte SHA-256 of a parameter pytree (paths, shapes, float32
    values in pytree order): what a CLRIC file records of the autoencoder that made it."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        a = np.ascontiguousarray(np.asarray(leaf, np.float32))
        h.update(jax.tree_util.keystr(path).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.digest()[:n_bytes]


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


def export_untrained(directory: str | Path, task: Any, crop: int = 64, seed: int = 0) -> Path:
    """Export the randomly initialised parameters of a training ``task`` (``init(rng, crop)``,
    ``export``, ``model_config``) to ``directory``: untrained weights code just as exactly, for
    tests and the fuzzing corpus. Returns the directory."""
    return export_inference(directory, task.export(task.init(jax.random.key(seed), crop)),
                            task.model_config())


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
        raise CheckpointError(f"{directory / 'model.json'}: corrupt ({one_line(e)})") from None
    try:
        flat = load_file(str(directory / "params.safetensors"))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(
            f"{directory / 'params.safetensors'}: cannot read weights ({one_line(e)})") from None
    params = traverse_util.unflatten_dict(flat, sep="/")
    if weights_hash(params) != expected:
        raise CheckpointError(f"{directory}: weights do not match the hash in model.json "
                              "(corrupt or modified export)")
    return params, model_config, expected


def load_codec_export(checkpoint: str | Path | None, codec: str) -> tuple[Any, dict[str, Any],
                                                                         bytes]:
    """:func:`load_inference` of the trained ``codec`` model a coder was given.

    Raises:
      CheckpointError: no checkpoint given (the message names ``--config.checkpoint``), a
        missing or corrupt export, or the export of another codec's model.
    """
    if not checkpoint:
        raise CheckpointError(f"the {codec} codec needs a trained model: pass "
                              "--config.checkpoint=<training workdir or its export/ directory>")
    params, model_config, digest = load_inference(checkpoint)
    if model_config.get("codec") != codec:
        raise CheckpointError(f"{checkpoint}: holds a {model_config.get('codec')!r} model, not "
                              f"a {codec} one")
    return params, model_config, digest


def check_file_weights(file_hash: bytes, weights_hash: bytes) -> None:
    """Refuse to decode a file whose header names other weights than the decoder's.

    Raises:
      BitstreamError: the hashes differ (the message names both).
    """
    from nlc_jax.bitstream import BitstreamError

    if bytes(file_hash) != bytes(weights_hash):
        raise BitstreamError(
            f"file was encoded with model weights {bytes(file_hash).hex()}, but the checkpoint "
            f"has weights {bytes(weights_hash).hex()}: pass the checkpoint used to encode it")
