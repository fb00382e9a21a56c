"""COOL-CHIC decoder architecture: its description, parameter initialisation and MAC/pixel count.

The decoder is fixed by an :class:`Arch` (stored in every file's header, so a file decodes
without its config): ``n_levels`` one-channel latent grids at 1/1 … 1/2^(n_levels-1) resolution,
an auto-regressive model (ARM) over ``arm_context`` causal neighbours with ``arm_hidden_layers``
residual Linear+ReLU layers of width ``arm_context``, a learned upsampling (per level a symmetric
8-tap 2× transposed kernel initialised to bicubic and a symmetric 7-tap pre-concatenation
smoothing initialised to identity), and a synthesis of 1×1 / 3×3 layers.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError

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


@dataclasses.dataclass(frozen=True)
class Arch:
    """Decoder architecture (everything the decoder needs besides the coded values)."""

    n_levels: int
    arm_context: int
    arm_hidden_layers: int
    synthesis: tuple[Layer, ...]
    out_channels: int = 3  # channels of the synthesis output (RGB; CLRIC: the VAE latent's)

    def __post_init__(self):
        if not 1 <= self.n_levels <= 12:
            raise ArchError(f"n_levels must be in 1..12, got {self.n_levels}")
        if not 1 <= self.arm_context <= 64:
            raise ArchError(f"arm_context must be in 1..64, got {self.arm_context}")
        if not 0 <= self.arm_hidden_layers <= 8:
            raise ArchError(f"arm_hidden_layers must be in 0..8, got {self.arm_hidden_layers}")
        if not self.synthesis or self.synthesis[-1].out != self.out_channels:
            raise ArchError(f"the last synthesis layer must have {self.out_channels} outputs")
        cin = self.n_levels
        for layer in self.synthesis:
            if layer.residual and layer.out != cin:
                raise ArchError(f"residual layer {layer} needs {cin} outputs (its input width)")
            cin = layer.out

    @classmethod
    def from_config(cls, model) -> Arch:
        """From a config's ``model`` block."""
        return cls(int(model.n_levels), int(model.arm_context), int(model.arm_hidden_layers),
                   tuple(Layer.parse(s) for s in model.synthesis),
                   int(model.get("out_channels", 3)))


def write_layers(w: ByteWriter, layers: tuple[Layer, ...]) -> None:
    """Append a layer list to a file header: count, then per layer out, kernel, flags."""
    w.uvarint(len(layers))
    for layer in layers:
        w.uvarint(layer.out).fixed("u8", layer.kernel)
        w.fixed("u8", int(layer.residual) | int(layer.relu) << 1)


def read_layers(r: ByteReader) -> tuple[Layer, ...]:
    """Inverse of :func:`write_layers`; raises ``BitstreamError`` (naming ``r.what``)."""
    layers = []
    for _ in range(r.uvarint(32)):
        out, kernel, flags = r.uvarint(4096), r.fixed("u8"), r.fixed("u8")
        if kernel not in (1, 3) or flags > 3:
            raise BitstreamError(f"{r.what}: invalid layer")
        layers.append(Layer(out, kernel, bool(flags & 1), bool(flags & 2)))
    return tuple(layers)


def level_shape(height: int, width: int, level: int) -> tuple[int, int]:
    """Size of latent grid ``level`` for an image of ``height × width``."""
    s = 2 ** level
    return -(-height // s), -(-width // s)


def upsampling_mac_per_pixel(n_levels: int) -> float:
    """Multiply-accumulates per image pixel of the learned upsampling of ``n_levels`` grids.

    At level i < n_levels-1, (n_levels-1-i) channels, separable 4+4 taps per output (polyphase
    8-tap kernel); pre-smoothing of levels >= 1: 7+7 taps per latent.
    """
    ups = sum((n_levels - 1 - i) * 8 * 4.0 ** -i for i in range(n_levels - 1))
    return ups + sum(14 * 4.0 ** -i for i in range(1, n_levels))


def layers_mac_per_position(layers: tuple[Layer, ...], in_channels: int) -> float:
    """Multiply-accumulates per position of a stack of 1×1 / 3×3 layers."""
    total, cin = 0.0, in_channels
    for layer in layers:
        total += cin * layer.out * layer.kernel ** 2
        cin = layer.out
    return float(total)


def mac_per_pixel(arch: Arch) -> float:
    """Decoding multiply-accumulates per image pixel (ARM + upsampling + synthesis).

    The ARM runs once per latent; the latent count per pixel is taken for a large image
    (sum of 4^-i), as Cool-chic reports it.
    """
    n = arch.arm_context
    latents_per_px = sum(4.0 ** -i for i in range(arch.n_levels))
    arm = (arch.arm_hidden_layers * n * n + 2 * n) * latents_per_px
    return float(arm + upsampling_mac_per_pixel(arch.n_levels)
                 + layers_mac_per_position(arch.synthesis, arch.n_levels))


def _cubic(t: float, a: float = -0.75) -> float:
    t = abs(t)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    if t < 2:
        return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return 0.0


# Half-kernels: weights at distances 0.25, 0.75, 1.25, 1.75 (upsampling) and 0..3 (smoothing).
BICUBIC_HALF = np.array([_cubic(d) for d in (0.25, 0.75, 1.25, 1.75)], np.float32)
IDENTITY_HALF = np.array([1.0, 0.0, 0.0, 0.0], np.float32)


def dense_init(key: jax.Array, fan_in: int, shape: tuple[int, ...]) -> jax.Array:
    """Uniform fan-in initialisation ``U(-1/√fan_in, 1/√fan_in)`` of a weight ``shape``."""
    bound = 1.0 / np.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def init_layers(keys: Iterator[jax.Array], layers: tuple[Layer, ...], in_channels: int) -> dict:
    """Parameters ``{"l<i>": {"w": [k, k, Cin, Cout], "b": [Cout]}}`` of a layer stack.

    Linear layers take :func:`dense_init` (one key of ``keys`` each); residual layers start at
    zero (the identity); biases at zero.
    """
    params, cin = {}, in_channels
    for i, layer in enumerate(layers):
        shape = (layer.kernel, layer.kernel, cin, layer.out)
        w = (jnp.zeros(shape, jnp.float32) if layer.residual
             else dense_init(next(keys), cin * layer.kernel ** 2, shape))
        params[f"l{i}"] = {"w": w, "b": jnp.zeros((layer.out,), jnp.float32)}
        cin = layer.out
    return params


def init_upsampling(n_levels: int) -> dict:
    """Upsampling half-kernels ``{"up": [n_levels-1, 4] (bicubic), "smooth": [n_levels-1, 4]
    (identity)}``."""
    n_up = n_levels - 1
    return {"up": jnp.tile(jnp.asarray(BICUBIC_HALF), (n_up, 1)),
            "smooth": jnp.tile(jnp.asarray(IDENTITY_HALF), (n_up, 1))}


def zeros_template(init_fn, arch) -> dict:
    """Zero numpy float32 networks with the shapes ``init_fn(rng, arch=arch)`` would give
    (what decoders fill with decoded weights; nothing is initialised)."""
    shapes = jax.eval_shape(functools.partial(init_fn, arch=arch), jax.random.key(0))
    return jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)


def init_networks(rng: jax.Array, arch: Arch) -> dict:
    """Random network parameters ``{"arm", "upsampling", "synthesis"}`` (float32 pytree).

    Linear layers use a uniform fan-in init; the ARM output and residual layers start at zero.
    """
    keys = iter(jax.random.split(rng, 2 * (arch.arm_hidden_layers + len(arch.synthesis)) + 2))
    n = arch.arm_context
    arm = {f"h{i}": {"w": dense_init(next(keys), n, (n, n)), "b": jnp.zeros((n,), jnp.float32)}
           for i in range(arch.arm_hidden_layers)}
    arm["out"] = {"w": jnp.zeros((n, 2), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    return {"arm": arm, "upsampling": init_upsampling(arch.n_levels),
            "synthesis": init_layers(keys, arch.synthesis, arch.n_levels)}
