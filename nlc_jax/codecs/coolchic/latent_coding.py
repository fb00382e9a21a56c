"""Range coding of the latent pyramid with the integer ARM, many latents per coder call.

Every grid is cut into tiles of :data:`TILE` = ``(rows, cols)`` latents (edge tiles are smaller)
whose ARM contexts never reach into another tile, neither above nor to the left or right
(training masks the same neighbours, see :func:`tile_context_mask`). All tiles of all levels are
then independent, and each is coded along wavefronts ``t = x_local + s·y_local`` with ``s`` the
smallest slope that keeps every causal neighbour in an earlier wavefront. Latents are written in
the order (wavefront, tile, raster position; tiles in raster order, level by level): the
decoder decodes wavefront ``t`` of every tile of every level at once, so an image of any size takes at most
``cols + s·(rows - 1)`` decoder steps.

The encoder knows every latent and evaluates the integer ARM on all of them at once; the decoder
evaluates it per wavefront. Both make one coder call per wavefront (the coder's escape codes
follow each call, so the calls must match).

Grids are coded in *passes* (``passes``: lists of grid indices, one layout each, one coder
stream for all): the ARM context of a grid may end with extra per-position values computed
from the grids of earlier passes (COOL-CHIC's inter-feature context), given by ``features``.
With one pass and no features every grid is decoded at once.

The tile shape :data:`TILE` is part of the file format (the current COOL-CHIC header,
``codec.HEADER_VERSION``, is the only one read). ``tile`` arguments exist so benchmarks can
measure other layouts, e.g. :data:`STRIPES` (the full-width stripes of the first header
version, which no longer decodes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nlc_jax.codecs.coolchic.arm import IntArm, input_activations
from nlc_jax.entropy.coding import ConditionalDecoder, ConditionalEncoder

FAMILY = "laplace"
TILE = (64, 64)  # (rows, cols) of a coding tile; part of the file format
STRIPES = (64, 1 << 30)  # full-width stripes of 64 rows (the first header version's layout)
_ENCODE_CHUNK = 1 << 14  # latents per integer-ARM call in the encoder


def parse_tile(text: str) -> tuple[int, int]:
    """A layout's name → its tile: ``"RxC"`` → ``(R, C)``; ``"stripes"`` → :data:`STRIPES`."""
    if text == "stripes":
        return STRIPES
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def tile_name(tile: tuple[int, int]) -> str:
    """``(R, C)`` → ``"RxC"`` (``"stripes"`` for :data:`STRIPES`)."""
    return "stripes" if tuple(tile) == STRIPES else f"{tile[0]}x{tile[1]}"


def wavefront_slope(offsets: np.ndarray) -> int:
    """Smallest ``s`` such that every causal neighbour of ``(y, x)`` has a smaller ``x + s·y``."""
    s = 1
    for dy, dx in np.asarray(offsets):
        if dy < 0:
            s = max(s, int(np.floor(dx / -dy)) + 1)
    return s


def _same_band(n: int, delta: np.ndarray, size: int) -> np.ndarray:
    """``[n, k]`` bool: position ``i + delta[j]`` lies in the same band of ``size`` as ``i``."""
    i = np.arange(n)[:, None]
    return (i + np.asarray(delta)[None, :]) // size == i // size


def tile_context_mask(height: int, width: int, offsets: np.ndarray, tile: tuple[int, int] = TILE,
                      xp=np):
    """``[height, width, n]`` float32 (``xp`` array): 1 where neighbour ``(y + dy, x + dx)`` of
    ``(y, x)`` lies in the same tile as ``(y, x)``, 0 elsewhere.

    Built as the product of a ``[height, 1, n]`` row-band and a ``[1, width, n]`` column-band
    factor, so with ``xp=jax.numpy`` a jitted caller holds only the small factors as constants.
    """
    offsets = np.asarray(offsets).reshape(-1, 2)
    rows = _same_band(height, offsets[:, 0], tile[0]).astype(np.float32)
    cols = _same_band(width, offsets[:, 1], tile[1]).astype(np.float32)
    return xp.asarray(rows)[:, None, :] * xp.asarray(cols)[None, :, :]


def _small_key(values: np.ndarray) -> np.ndarray:
    """``values`` as uint16 when they fit (numpy sorts those with a radix sort)."""
    return values.astype(np.uint16) if values.max() < 1 << 16 else values


class _Layout:
    """Tiles of all grids in one flat zero-padded buffer, with the gather indices of each
    latent's context and the coding order (wavefront, then tile, then raster position).

    Every tile is stored as a ``(rows + pad) × pitch`` block (``pad`` zero rows above, ``pad``
    zero columns left and at least ``pad`` right), one ``pitch`` for all blocks, so a context
    offset is one flat ``dy · pitch + dx`` for every latent and never leaves its tile's block.
    """

    def __init__(self, shapes: list[tuple[int, int]], offsets: np.ndarray,
                 tile: tuple[int, int] = TILE):
        offsets = np.asarray(offsets, np.int64).reshape(-1, 2)
        self.pad = pad = int(np.abs(offsets).max()) if offsets.size else 0
        slope = wavefront_slope(offsets)
        th, tw = tile
        self.tile = tile
        self.pitch = pitch = min(tw, max(w for _, w in shapes)) + 2 * pad
        self.shapes, self.blocks = shapes, []     # (level, y0, x0, rows, cols, base)
        index, wave, block_of, base = [], [], [], 0
        for level, (h, w) in enumerate(shapes):
            # Blocks of this level in raster order of tiles; rows of block j: tile_rows[j].
            y0s, x0s = np.arange(0, h, th), np.arange(0, w, tw)
            tile_rows = np.minimum(th, h - y0s)                       # [n_ty]
            bases = base + np.concatenate([[0], np.cumsum(
                np.repeat((tile_rows + pad) * pitch, len(x0s)))])     # [n_ty · n_tx + 1]
            first = len(self.blocks)
            for j, (y0, x0) in enumerate((y, x) for y in y0s for x in x0s):
                self.blocks.append((level, int(y0), int(x0), int(min(th, h - y0)),
                                    int(min(tw, w - x0)), int(bases[j])))
            base = int(bases[-1])
            ty, yl = np.divmod(np.arange(h), th)                      # [h] tile row, local y
            tx, xl = np.divmod(np.arange(w), tw)                      # [w] tile column, local x
            block = ty[:, None] * len(x0s) + tx[None, :]              # [h, w] raster positions
            index.append((bases[block] + ((yl + pad) * pitch)[:, None]
                          + (xl + pad)[None, :]).ravel())
            wave.append((xl[None, :] + slope * yl[:, None]).ravel())
            block_of.append((first + block).ravel())
        self.size = base
        wave, block_of = np.concatenate(wave), np.concatenate(block_of)
        # Coding order: wavefront, then tile, then raster position (two stable radix passes).
        order = np.argsort(_small_key(block_of), kind="stable")
        order = order[np.argsort(_small_key(wave[order]), kind="stable")]
        self.index = np.concatenate(index)[order]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(wave))])
        self.ctx_off = offsets[:, 0] * pitch + offsets[:, 1]   # [n]

    @property
    def n_waves(self) -> int:
        """Decoder steps (coder calls) of this layout."""
        return len(self.starts) - 1

    def context(self, buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``[hi - lo, n]`` context of the latents ``lo:hi`` of the coding order."""
        return buf[self.index[lo:hi, None] + self.ctx_off[None, :]]

    def _views(self, buf: np.ndarray):
        pad, pitch = self.pad, self.pitch
        for level, y0, x0, rows, cols, base in self.blocks:
            block = buf[base:base + (rows + pad) * pitch]
            block = block.reshape(rows + pad, pitch, *buf.shape[1:])
            yield level, y0, x0, block[pad:, pad:pad + cols]

    def fill(self, grids: list[np.ndarray]) -> np.ndarray:
        """Flat buffer ``[size, ...]`` holding ``grids`` ``[h_i, w_i, ...]`` (any trailing
        channel axes)."""
        buf = np.zeros((self.size,) + np.shape(grids[0])[2:], np.float64)
        for level, y0, x0, view in self._views(buf):
            view[...] = grids[level][y0:y0 + view.shape[0], x0:x0 + view.shape[1]]
        return buf

    def grids(self, buf: np.ndarray) -> list[np.ndarray]:
        """The ``[h, w]`` int32 grids held in ``buf``."""
        out = [np.zeros(s, np.int32) for s in self.shapes]
        for level, y0, x0, view in self._views(buf):
            out[level][y0:y0 + view.shape[0], x0:x0 + view.shape[1]] = view
        return out


Features = Callable[[int, list], "list[np.ndarray] | None"]
"""``features(pass_index, grids)`` → per grid of the pass its extra context ``[h, w, C]``
(float64 ARM input activations), computed from the grids of earlier passes only (``grids`` holds
every grid, those of later passes possibly not decoded yet); ``None``: no extra context."""


def _no_features(pass_index: int, grids: list) -> None:
    return None


def _extra(layout: _Layout, extra: list[np.ndarray] | None) -> np.ndarray | None:
    """``[n_latents, C]`` extra context in the layout's coding order."""
    if extra is None:
        return None
    return layout.fill(extra)[layout.index]


def encode_latents(grids: list[np.ndarray], offsets: np.ndarray, arm: IntArm,
                   passes: Sequence[Sequence[int]] | None = None,
                   features: Features = _no_features, tile: tuple[int, int] = TILE) -> bytes:
    """Integer grids ``[h_i, w_i]`` → range-coded bytes (``passes``: default one pass over all
    grids)."""
    passes = passes or [list(range(len(grids)))]
    enc = ConditionalEncoder(FAMILY)
    for p, members in enumerate(passes):
        layout = _Layout([grids[i].shape for i in members], offsets, tile)
        buf = layout.fill([grids[i] for i in members])
        symbols = buf[layout.index].astype(np.int64)
        acts = input_activations(buf)  # contexts are gathered as ARM input activations
        extra = _extra(layout, features(p, grids))
        loc, index = np.empty(len(symbols)), np.empty(len(symbols), np.int64)
        for lo in range(0, len(symbols), _ENCODE_CHUNK):  # every context is known: big blocks
            hi = min(lo + _ENCODE_CHUNK, len(symbols))
            ctx = layout.context(acts, lo, hi)
            if extra is not None:
                ctx = np.concatenate([ctx, extra[lo:hi]], axis=1)
            loc[lo:hi], index[lo:hi] = arm.coder_params(ctx, scaled=True)
        for lo, hi in zip(layout.starts[:-1], layout.starts[1:], strict=True):
            enc.encode(symbols[lo:hi], loc[lo:hi], scale_index=index[lo:hi])
    return enc.finish()


def decode_latents(data: bytes, shapes: list[tuple[int, int]], offsets: np.ndarray, arm: IntArm,
                   passes: Sequence[Sequence[int]] | None = None,
                   features: Features = _no_features,
                   tile: tuple[int, int] = TILE) -> list[np.ndarray]:
    """Range-coded bytes → integer grids ``[h_i, w_i]`` (raises ``BitstreamError`` if corrupt)."""
    passes = passes or [list(range(len(shapes)))]
    grids: list[np.ndarray | None] = [None] * len(shapes)
    dec = ConditionalDecoder(data, FAMILY)
    for p, members in enumerate(passes):
        layout = _Layout([shapes[i] for i in members], offsets, tile)
        acts = np.zeros(layout.size, np.float64)         # ARM input activations of decoded latents
        values = np.empty(len(layout.index), np.int32)   # decoded latents, coding order
        extra = _extra(layout, features(p, grids))
        for lo, hi in zip(layout.starts[:-1], layout.starts[1:], strict=True):
            ctx = layout.context(acts, lo, hi)
            if extra is not None:
                ctx = np.concatenate([ctx, extra[lo:hi]], axis=1)
            loc, index = arm.coder_params(ctx, scaled=True)
            values[lo:hi] = dec.decode(loc, scale_index=index)
            acts[layout.index[lo:hi]] = input_activations(values[lo:hi])
        buf = np.zeros(layout.size, np.float64)
        buf[layout.index] = values
        for i, grid in zip(members, layout.grids(buf), strict=True):
            grids[i] = grid
    return grids
