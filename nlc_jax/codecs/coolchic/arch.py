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

import jax
import jax.numpy as jnp

from nlc_jax.codecs.overfitted.layers import (
    ArchError,
    Layer,
    dense_init,
    init_layers,
    layers_mac_per_position,
)
from nlc_jax.codecs.overfitted.upsampling import init_upsampling, upsampling_mac_per_pixel


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
