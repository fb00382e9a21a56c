"""Stacks of ``<out>-<kernel>-<linear|residual>-<relu|none>`` layers: the spec, its file-header
form, its MAC count, initialisation, and the forward pass (``jax.numpy`` or ``numpy``)."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs.overfitted.padding import fill_edges

_LAYER = re.compile(r"^(\d+)-([13])-(linear|residual)-(relu|none)$")


class ArchError(ValueError):
    """A malformed architecture description (config value or file header)."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One synthesis layer, ``<out>-<kernel>-<linear|residual>-<relu|none>``."""

    out: int
    kernel: int
    residual: bool
    relu: bool

    @classmethod
    def parse(cls, spec: str) -> Layer:
        m = _LAYER.match(spec)
        if not m:
            raise ArchError(f"bad synthesis layer {spec!r}; expected e.g. '16-1-linear-relu' "
                            "(<out>-<1|3>-<linear|residual>-<relu|none>)")
        return cls(int(m[1]), int(m[2]), m[3] == "residual", m[4] == "relu")

    def __str__(self) -> str:
        kind = "residual" if self.residual else "linear"
        return f"{self.out}-{self.kernel}-{kind}-{'relu' if self.relu else 'none'}"


def write_layers(w: ByteWriter, layers: tuple[Layer, ...]) -> None:
    """Append a layer list to a file header: count, then per layer out, kernel, flags."""
    w.uvarint(len(layers))
    for layer in layers:
        w.uvarint(layer.out).fixed("u8", layer.kernel)
        w.fixed("u8", int(layer.residual) | int(layer.relu) << 1)


def read_layers(r: ByteReader) -> tuple[Layer, ...]:
    """Inverse of :func:`write_layers`; raises ``BitstreamError`` (naming ``r.what``).

    Each layer's weights are counted with ``r.declare_parameters`` (the first layer's per input
    channel, which the list does not state), so a forged list of many wide layers is refused
    before a decoder allocates them.
    """
    layers = []
    cin = 1
    for _ in range(r.uvarint(32)):
        out, kernel, flags = r.uvarint(4096), r.fixed("u8"), r.fixed("u8")
        if not out or kernel not in (1, 3) or flags > 3:
            raise BitstreamError(f"{r.what}: invalid layer (outputs {out}, kernel {kernel}, "
                                 f"flags {flags})")
        r.declare_parameters(cin * out * kernel * kernel + out)
        cin = out
        layers.append(Layer(out, kernel, bool(flags & 1), bool(flags & 2)))
    return tuple(layers)


def layers_mac_per_position(layers: tuple[Layer, ...], in_channels: int) -> float:
    """Multiply-accumulates per position of a stack of 1×1 / 3×3 layers."""
    total, cin = 0.0, in_channels
    for layer in layers:
        total += cin * layer.out * layer.kernel ** 2
        cin = layer.out
    return float(total)


def dense_init(key: jax.Array, fan_in: int, shape: tuple[int, ...]) -> jax.Array:
    """Uniform fan-in initialisation ``U(-1/√fan_in, 1/√fan_in)`` of a weight ``shape``."""
    bound = 1.0 / np.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def init_layers(keys: Iterator[jax.Array], layers: tuple[Layer, ...], in_channels: int,
                small: bool = False) -> dict:
    """Parameters ``{"l<i>": {"w": [k, k, Cin, Cout], "b": [Cout]}}`` of a layer stack.

    Linear layers take :func:`dense_init` (one key of ``keys`` each), divided by ``Cout²`` with
    ``small`` (Cool-chic's init when a linear stabiliser carries the signal at the start);
    residual layers start at zero (the identity); biases at zero.
    """
    params, cin = {}, in_channels
    for i, layer in enumerate(layers):
        shape = (layer.kernel, layer.kernel, cin, layer.out)
        w = (jnp.zeros(shape, jnp.float32) if layer.residual
             else dense_init(next(keys), cin * layer.kernel ** 2, shape)
             / (layer.out ** 2 if small else 1))
        params[f"l{i}"] = {"w": w, "b": jnp.zeros((layer.out,), jnp.float32)}
        cin = layer.out
    return params


def zeros_template(init_fn, arch) -> dict:
    """Zero numpy float32 networks with the shapes ``init_fn(rng, arch=arch)`` would give
    (what decoders fill with decoded weights; nothing is initialised)."""
    shapes = jax.eval_shape(functools.partial(init_fn, arch=arch), jax.random.key(0))
    return jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)


STRIP_PIXELS = 16_384  # pixels per strip of the numpy decoder's 1×1 layers (L2-sized features)


def conv(x: Any, w: Any, b: Any, xp: Any, edge: bool = False) -> Any:
    """``[H, W, Cin]`` → ``[H, W, Cout]`` convolution, ``w`` ``[k, k, Cin, Cout]``, zero-padded
    (``edge``: edge samples replicated).

    jax: a k×k kernel is one matmul over the ``k²·Cin`` shifted inputs (im2col): with the few
    channels of a synthesis that is 4× faster on CPU (XLA) than ``k²`` matmuls of depth ``Cin``.
    numpy (the decoder): the ``k²`` shifted matmuls accumulated into one output buffer, which
    never builds the ``k²``-wide copy of the image (8× faster at 768×512, 3 channels).
    """
    k = w.shape[0]
    h, wd, cin = x.shape
    if k > 1 and xp is np:
        r = k // 2
        p = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge" if edge else "constant")
        out = np.empty((h, wd, w.shape[-1]), np.result_type(x, w))
        out[...] = b
        for dy in range(k):
            for dx in range(k):
                out += p[dy:dy + h, dx:dx + wd] @ w[dy, dx]
        return out
    if k > 1:
        r = k // 2
        p = xp.pad(x, ((r, r), (r, r), (0, 0)), mode="edge" if edge else "constant")
        x = xp.concatenate([p[dy:dy + h, dx:dx + wd] for dy in range(k) for dx in range(k)],
                           axis=-1)
    # one 2-D matmul: numpy runs a stacked [H, W, C] @ [C, C'] as H small ones (5× slower)
    out = x.reshape(h * wd, k * k * cin) @ w.reshape(k * k * cin, -1)
    out += b  # in place for numpy (no second image-sized buffer); a new array for jax
    return out.reshape(h, wd, -1)


def _pointwise_numpy(x: np.ndarray, params: dict, layers: tuple, first: int) -> np.ndarray:
    """numpy: consecutive 1×1 layers ``first, first + 1, …`` of ``layers`` on ``[H, W, Cin]``,
    run strip by strip (:data:`STRIP_PIXELS` pixels) so the wide hidden features stay in cache
    instead of making image-sized buffers (3× faster for hop's 48 channels at 768×512). Each
    pixel's arithmetic is the same as in one whole-image pass."""
    h, wd, cin = x.shape
    flat = x.reshape(h * wd, cin)
    last = first
    while last < len(layers) and layers[last].kernel == 1:
        last += 1
    pieces = []
    for lo in range(0, h * wd, STRIP_PIXELS):
        y = flat[lo:lo + STRIP_PIXELS]
        for i in range(first, last):
            p = params[f"l{i}"]
            z = y @ p["w"].reshape(p["w"].shape[-2:])
            z += p["b"]
            if layers[i].residual:
                z += y
            if layers[i].relu:
                np.maximum(z, 0, out=z)
            y = z
        pieces.append(y)
    return np.concatenate(pieces).reshape(h, wd, -1)


def apply_layers(x: Any, params: dict, layers: tuple, xp: Any, mask: Any = None,
                 edge: bool = False) -> Any:
    """A stack of ``<out>-<k>-<linear|residual>-<relu|none>`` layers on ``[H, W, Cin]``.

    ``params["l<i>"]`` holds layer ``i``'s ``w`` ``[k, k, Cin, Cout]`` and ``b``; ``mask``
    ``[H, W]`` zeroes the input of every 3×3 layer outside the valid region (padded buckets;
    ``edge``: 3×3 layers replicate edge samples, and their inputs repeat the last valid row
    and column over the padding).
    """
    i = 0
    while i < len(layers):
        if xp is np and layers[i].kernel == 1:
            x = _pointwise_numpy(x, params, layers, i)
            while i < len(layers) and layers[i].kernel == 1:
                i += 1
            continue
        layer, p = layers[i], params[f"l{i}"]
        inp = x
        if mask is not None and layer.kernel > 1:
            inp = fill_edges(x, mask) if edge else x * mask[..., None]
        y = conv(inp, p["w"], p["b"], xp, edge)
        if layer.residual:
            y = x + y
        x = xp.maximum(y, 0) if layer.relu else y
        i += 1
    return x
