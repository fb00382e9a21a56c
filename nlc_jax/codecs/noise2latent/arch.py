"""Noise-to-Latent decoder architecture, its header encoding and its MAC/pixel count.

The decoder (see ``docs/noise2latent.md``) regenerates a pyramid of ``n_levels`` noise grids
``ε_i`` (``[H/2^i, W/2^i, noise_channels]``) from the seed in the file, maps each level with
the Gaussian Parameter Prediction (GPP) network to a mean and a standard deviation, forms the
latent ``y_i = μ_i + σ_i · ε_i[..., 0]`` (reparameterisation), upsamples the latents with
COOL-CHIC's learned upsampling and synthesises the image with COOL-CHIC-style layers.

Every level has its own GPP (a stack of 1×1 / 3×3 layers ending in 2 outputs): the weights are
the whole rate, and a level's GPP costs its parameter count in MACs per position of that level
only, so capacity is cheap at coarse levels (1/4^i positions per pixel). With ``conditional``,
the GPP of level ``i`` also sees the bicubic 2× upsampling of the latent of level ``i + 1``
(coarse-to-fine generation: ``n_levels`` sequential steps, each fully parallel; nothing is
autoregressive within a level).
"""

from __future__ import annotations

import dataclasses

import jax

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs.overfitted.layers import (
    ArchError,
    Layer,
    init_layers,
    layers_mac_per_position,
    read_layers,
    write_layers,
)
from nlc_jax.codecs.overfitted.upsampling import init_upsampling, upsampling_mac_per_pixel

HEADER_VERSION = 2  # 2: one GPP per level
NETWORKS = ("gpp", "upsampling", "synthesis")


@dataclasses.dataclass(frozen=True)
class N2LArch:
    """Everything the decoder needs besides the seed and the coded weights."""

    n_levels: int
    noise_channels: int
    conditional: bool
    gpp: tuple[tuple[Layer, ...], ...]  # per level (0 first): noise (+1) → … → 2 (μ, ρ)
    synthesis: tuple[Layer, ...]        # n_levels → … → 3

    def __post_init__(self):
        if not 1 <= self.n_levels <= 12:
            raise ArchError(f"n_levels must be in 1..12, got {self.n_levels}")
        if not 1 <= self.noise_channels <= 64:
            raise ArchError(f"noise_channels must be in 1..64, got {self.noise_channels}")
        if len(self.gpp) != self.n_levels:
            raise ArchError(f"need one gpp per level ({self.n_levels}), got {len(self.gpp)}")
        stacks = [(f"gpp (level {i})", layers, self.gpp_inputs, 2)
                  for i, layers in enumerate(self.gpp)]
        for name, layers, cin, cout in (*stacks, ("synthesis", self.synthesis, self.n_levels, 3)):
            if not layers or layers[-1].out != cout:
                raise ArchError(f"the last {name} layer must have {cout} outputs")
            if layers[0].residual:
                raise ArchError(f"the first {name} layer cannot be residual")
            for layer in layers:
                if layer.residual and layer.out != cin:
                    raise ArchError(f"residual {name} layer {layer} needs {cin} outputs "
                                    "(its input width)")
                cin = layer.out

    @property
    def gpp_inputs(self) -> int:
        """Input channels of the GPP: the level's noise (+ the upsampled coarser latent)."""
        return self.noise_channels + int(self.conditional)

    @classmethod
    def from_config(cls, model) -> N2LArch:
        """From a config's ``model`` block (``configs/noise2latent.py``): ``gpp`` layer specs in
        which ``W`` stands for the level's entry of ``gpp_widths`` (one per level, level 0
        first; a single entry serves every level)."""
        n_levels = int(model.n_levels)
        widths = tuple(int(w) for w in model.gpp_widths)
        if len(widths) == 1:
            widths *= n_levels
        if len(widths) != n_levels:
            raise ArchError(f"gpp_widths needs 1 or n_levels={n_levels} entries, got "
                            f"{len(widths)}")
        gpp = tuple(tuple(Layer.parse(s.replace("W", str(w), 1) if s.startswith("W-") else s)
                          for s in model.gpp) for w in widths)
        return cls(n_levels, int(model.noise_channels), bool(model.conditional), gpp,
                   tuple(Layer.parse(s) for s in model.synthesis))


def mac_per_pixel(arch: N2LArch) -> float:
    """Decoding multiply-accumulates per image pixel: GPP at every latent position,
    conditioning upsampling, latent upsampling and synthesis (noise generation excluded:
    integer hashing, about 0.02 µs per value)."""
    gpp = sum(layers_mac_per_position(layers, arch.gpp_inputs) * 4.0 ** -i
              for i, layers in enumerate(arch.gpp))
    cond = 8.0 * sum(4.0 ** -i for i in range(arch.n_levels - 1)) if arch.conditional else 0.0
    return float(gpp + cond + upsampling_mac_per_pixel(arch.n_levels)
                 + layers_mac_per_position(arch.synthesis, arch.n_levels))


def init_networks(rng: jax.Array, arch: N2LArch) -> dict:
    """Random ``{"gpp", "upsampling", "synthesis"}`` parameters (float32 pytree).

    ``gpp`` holds one layer stack per level: ``{"level<i>": {"l<j>": {"w", "b"}}}``.
    """
    keys = iter(jax.random.split(rng, sum(map(len, arch.gpp)) + len(arch.synthesis)))
    gpp = {f"level{i}": init_layers(keys, layers, arch.gpp_inputs)
           for i, layers in enumerate(arch.gpp)}
    return {"gpp": gpp, "upsampling": init_upsampling(arch.n_levels),
            "synthesis": init_layers(keys, arch.synthesis, arch.n_levels)}


def write_header(arch: N2LArch, seed: int) -> bytes:
    """``HEADER`` section: version, architecture and the 32-bit noise seed."""
    w = ByteWriter().fixed("u8", HEADER_VERSION).fixed("u32", seed)
    w.uvarint(arch.n_levels).uvarint(arch.noise_channels).fixed("u8", int(arch.conditional))
    for layers in arch.gpp:
        write_layers(w, layers)
    write_layers(w, arch.synthesis)
    return w.getvalue()


def read_header(data: bytes) -> tuple[N2LArch, int]:
    """Inverse of :func:`write_header` → (architecture, seed).

    Raises:
      BitstreamError: unsupported version or an impossible architecture.
    """
    r = ByteReader(data, "noise2latent header")
    if r.fixed("u8") != HEADER_VERSION:
        raise BitstreamError("noise2latent header: unsupported version")
    seed = int(r.fixed("u32"))
    n_levels, channels, conditional = r.uvarint(64), r.uvarint(64), r.fixed("u8")
    if conditional > 1:
        raise BitstreamError("noise2latent header: invalid conditional flag")
    gpp = tuple(read_layers(r) for _ in range(n_levels))
    synthesis = read_layers(r)
    r.expect_end()
    try:
        return N2LArch(n_levels, channels, bool(conditional), gpp, synthesis), seed
    except ArchError as err:
        raise BitstreamError(f"noise2latent header: {err}") from None
