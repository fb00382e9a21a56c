"""COOL-CHIC decoder architecture: its description, parameter initialisation and MAC/pixel count.

The decoder is fixed by an :class:`Arch` (stored in every file's header, so a file decodes
without its config):

* ``n_levels`` one-channel latent grids at 1/1 … 1/2^(n_levels-1) resolution, and ``n_hyper``
  one-channel *hyper-latent* grids at levels ``hyper_start …`` that only the entropy model reads
  (Cool-chic 5's hyper-latents);
* an auto-regressive model (ARM) whose context is ``arm_context`` causal neighbours plus, for the
  ``ifce_levels`` finest grids, ``ifce_features`` inter-feature values: one linear layer (the
  IFCE) over every already decoded coarser grid, nearest-upsampled. ``arm_hidden_layers``
  residual layers ``relu(x + Wx + b)`` of the context's width, then ``Linear(·, 2)`` → Laplace
  location and log2-scale, plus (``arm_stabiliser``) a parallel ``Linear(·, 2)`` on the context;
* a learned upsampling (per level a symmetric 8-tap 2× transposed kernel initialised to bicubic
  and a symmetric 7-tap pre-concatenation smoothing initialised to identity);
* a synthesis of 1×1 / 3×3 layers, plus (``synthesis_stabiliser``) a parallel 1×1 linear layer
  on the upsampled features;
* boundaries: zero padding, or (``edge_padding``, Cool-chic's choice) edge samples replicated by
  the 2× upsampling and the 3×3 synthesis layers.
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
    n_hyper: int = 0               # hyper-latent grids (entropy model only)
    hyper_start: int = 0           # level of the finest hyper grid; 0: by image size (resolve)
    ifce_levels: int = 0           # the finest grids that get an inter-feature context
    ifce_features: int = 0         # IFCE outputs appended to the ARM context
    arm_stabiliser: bool = False   # parallel linear branch in the ARM
    synthesis_stabiliser: bool = False  # parallel 1×1 linear branch in the synthesis
    edge_padding: bool = False     # 2× upsampling and 3×3 synthesis layers replicate edges

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
        if not 0 <= self.n_hyper <= 4:
            raise ArchError(f"n_hyper must be in 0..4, got {self.n_hyper}")
        if self.hyper_start and not self.ifce_levels <= self.hyper_start <= 12:
            raise ArchError(f"hyper_start must be in {self.ifce_levels}..12 (coarser than every "
                            f"IFCE grid), got {self.hyper_start}")
        if not 0 <= self.ifce_levels < self.n_levels:
            raise ArchError(f"ifce_levels must be in 0..{self.n_levels - 1}, got "
                            f"{self.ifce_levels}")
        if self.ifce_levels and not 1 <= self.ifce_features <= 32:
            raise ArchError(f"ifce_features must be in 1..32, got {self.ifce_features}")
        if self.ifce_levels and self.ifce_inputs(self.ifce_levels - 1) < 1:
            raise ArchError("an IFCE needs at least one coarser grid")
        if self.arm_width > 64:
            raise ArchError(f"the ARM context (spatial + IFCE) must be at most 64, got "
                            f"{self.arm_width}")

    @property
    def arm_width(self) -> int:
        """Width of the ARM's context and hidden layers (spatial + IFCE features)."""
        return self.arm_context + (self.ifce_features if self.ifce_levels else 0)

    @property
    def n_grids(self) -> int:
        """Entropy-coded grids: latents ``0 … n_levels-1``, then hyper-latents."""
        return self.n_levels + self.n_hyper

    def ifce_inputs(self, level: int) -> int:
        """Inputs of latent ``level``'s IFCE: every coarser latent and every hyper grid."""
        return self.n_levels - 1 - level + self.n_hyper

    def resolve(self, height: int, width: int) -> Arch:
        """This architecture with ``hyper_start`` fixed for an ``height × width`` target
        (Cool-chic's rule: 1/16 below 1 Mpx, 1/32 below 3 Mpx, else 1/64)."""
        if self.hyper_start or not self.n_hyper:
            return self
        pixels = height * width
        start = 4 if pixels < 1_000_000 else 5 if pixels < 3_000_000 else 6
        return dataclasses.replace(self, hyper_start=max(start, self.ifce_levels))

    def grid_levels(self) -> list[int]:
        """Resolution level of every coded grid (latents, then hyper-latents); resolved only."""
        if self.n_hyper and not self.hyper_start:
            raise ArchError("hyper_start is not resolved (call Arch.resolve)")
        return list(range(self.n_levels)) + [self.hyper_start + j for j in range(self.n_hyper)]

    def passes(self) -> list[list[int]]:
        """Decoding passes over grid indices: first every grid without an IFCE, then the IFCE
        latents from coarse to fine (each pass needs all grids of the earlier passes)."""
        first = list(range(self.ifce_levels, self.n_grids))
        return [first] + [[level] for level in range(self.ifce_levels - 1, -1, -1)]

    @classmethod
    def from_config(cls, model) -> Arch:
        """From a config's ``model`` block."""
        return cls(int(model.n_levels), int(model.arm_context), int(model.arm_hidden_layers),
                   tuple(Layer.parse(s) for s in model.synthesis),
                   int(model.get("out_channels", 3)), int(model.get("n_hyper", 0)),
                   int(model.get("hyper_start", 0)), int(model.get("ifce_levels", 0)),
                   int(model.get("ifce_features", 0)), bool(model.get("arm_stabiliser", False)),
                   bool(model.get("synthesis_stabiliser", False)),
                   bool(model.get("edge_padding", False)))


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
    """Decoding multiply-accumulates per image pixel (ARM + IFCE + upsampling + synthesis).

    The ARM runs once per latent; the latent count per pixel is taken for a large image
    (sum of 4^-i), as Cool-chic reports it. An IFCE runs at the next coarser grid's resolution.
    """
    arch = arch.resolve(1, 1)
    n = arch.arm_width
    latents_per_px = sum(4.0 ** -level for level in arch.grid_levels())
    arm = (arch.arm_hidden_layers * n * n + 2 * n * (1 + arch.arm_stabiliser)) * latents_per_px
    ifce = sum(arch.ifce_inputs(i) * arch.ifce_features * 4.0 ** -(i + 1)
               for i in range(arch.ifce_levels))
    stab = arch.n_levels * arch.out_channels if arch.synthesis_stabiliser else 0
    return float(arm + ifce + upsampling_mac_per_pixel(arch.n_levels)
                 + layers_mac_per_position(arch.synthesis, arch.n_levels) + stab)


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


def _normal(key: jax.Array, shape: tuple[int, ...], std: float) -> jax.Array:
    return std * jax.random.normal(key, shape, jnp.float32)


def init_networks(rng: jax.Array, arch: Arch) -> dict:
    """Random network parameters ``{"arm", "upsampling", "synthesis"}`` and, with IFCEs,
    ``"ifce"`` (float32 pytree).

    As Cool-chic 5: ARM hidden layers (residual) start at zero, its output and stabiliser layers
    (and the IFCE layers) at ``N(0, 1/Cout⁴)``; synthesis linear layers take a uniform fan-in
    init (divided by ``Cout²`` when a synthesis stabiliser is present), residual ones zero.
    Without an ARM stabiliser the ARM output starts at zero.
    """
    keys = iter(jax.random.split(rng, 2 * (arch.arm_hidden_layers + len(arch.synthesis))
                                 + arch.ifce_levels + 4))
    n = arch.arm_width
    arm = {f"h{i}": {"w": jnp.zeros((n, n), jnp.float32), "b": jnp.zeros((n,), jnp.float32)}
           for i in range(arch.arm_hidden_layers)}
    out_w = (_normal(next(keys), (n, 2), 0.25) if arch.arm_stabiliser
             else jnp.zeros((n, 2), jnp.float32))
    arm["out"] = {"w": out_w, "b": jnp.zeros((2,), jnp.float32)}
    if arch.arm_stabiliser:
        arm["stab"] = {"w": _normal(next(keys), (n, 2), 0.25), "b": jnp.zeros((2,), jnp.float32)}
    syn = init_layers(keys, arch.synthesis, arch.n_levels, small=arch.synthesis_stabiliser)
    if arch.synthesis_stabiliser:
        c = arch.out_channels
        syn["stab"] = {"w": dense_init(next(keys), arch.n_levels, (1, 1, arch.n_levels, c))
                       / c ** 2, "b": jnp.zeros((c,), jnp.float32)}
    nets = {"arm": arm, "upsampling": init_upsampling(arch.n_levels), "synthesis": syn}
    if arch.ifce_levels:
        f = arch.ifce_features
        nets["ifce"] = {f"l{i}": {"w": _normal(next(keys), (arch.ifce_inputs(i), f), 1.0 / f ** 2),
                                  "b": jnp.zeros((f,), jnp.float32)}
                        for i in range(arch.ifce_levels)}
    return nets
