"""Range coding of the latent pyramid with the integer ARM, many latents per coder call.

Every grid is cut into stripes of :data:`STRIPE_ROWS` rows whose ARM contexts do not reach into
the stripe above (training masks those neighbours too, see :func:`stripe_context_mask`). All
stripes of all levels are then independent, and each is coded along wavefronts
``t = x + s·y_local`` with ``s`` the smallest slope that keeps every causal neighbour in an
earlier wavefront. Latents are written in the order (wavefront, stripe, row): the decoder decodes
wavefront ``t`` of every stripe at once, so a Kodak image takes ``W + s·(STRIPE_ROWS - 1)``
decoder steps instead of one per latent.

The encoder knows every latent and evaluates the integer ARM on all of them at once; the decoder
evaluates it per wavefront. Both make one coder call per wavefront (the coder's escape codes
follow each call, so the calls must match).
"""

from __future__ import annotations

import numpy as np

from nlc_jax.codecs.coolchic.arm import arm_int
from nlc_jax.entropy.coding import ConditionalDecoder, ConditionalEncoder

FAMILY = "laplace"
STRIPE_ROWS = 64


def wavefront_slope(offsets: np.ndarray) -> int:
    """Smallest ``s`` such that every causal neighbour of ``(y, x)`` has a smaller ``x + s·y``."""
    s = 1
    for dy, dx in np.asarray(offsets):
        if dy < 0:
            s = max(s, int(np.floor(dx / -dy)) + 1)
    return s


def stripe_context_mask(height: int, offsets: np.ndarray) -> np.ndarray:
    """``[height, 1, n]`` float32: 1 where neighbour ``(y + dy)`` lies in the stripe of ``y``."""
    y = np.arange(height)[:, None]
    same = (y + np.asarray(offsets)[None, :, 0]) // STRIPE_ROWS == y // STRIPE_ROWS
    return same[:, None, :].astype(np.float32)


class _Layout:
    """Stripes of all grids in one flat zero-padded buffer, in coding order, with the gather
    indices of each latent's context."""

    def __init__(self, shapes: list[tuple[int, int]], offsets: np.ndarray):
        offsets = np.asarray(offsets, np.int64).reshape(-1, 2)
        self.pad = pad = int(np.abs(offsets).max()) if offsets.size else 0
        slope = wavefront_slope(offsets)
        self.shapes, self.blocks = shapes, []     # (level, y0, rows, width, base)
        index, wave, block_of, ctx_off, base = [], [], [], [], 0
        for level, (h, w) in enumerate(shapes):
            pw = w + 2 * pad
            for y0 in range(0, h, STRIPE_ROWS):
                rows = min(STRIPE_ROWS, h - y0)
                ys, xs = np.meshgrid(np.arange(rows), np.arange(w), indexing="ij")
                index.append(base + (ys.ravel() + pad) * pw + xs.ravel() + pad)
                wave.append(xs.ravel() + slope * ys.ravel())
                block_of.append(np.full(rows * w, len(self.blocks)))
                ctx_off.append(offsets[:, 0] * pw + offsets[:, 1])
                self.blocks.append((level, y0, rows, w, base))
                base += (rows + pad) * pw
        self.size = base
        index, wave, block_of = (np.concatenate(a).astype(np.int64)
                                 for a in (index, wave, block_of))
        order = np.lexsort((index, block_of, wave))   # by wavefront, then stripe, then row
        self.index, self.block = index[order], block_of[order]
        n_waves = int(wave.max()) + 1
        self.starts = np.searchsorted(wave[order], np.arange(n_waves + 1))
        self.ctx_off = np.stack(ctx_off)

    def context(self, buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``[hi - lo, n]`` context of the latents ``lo:hi`` of the coding order."""
        return buf[self.index[lo:hi, None] + self.ctx_off[self.block[lo:hi]]]

    def _views(self, buf: np.ndarray):
        for level, y0, rows, w, base in self.blocks:
            pw = w + 2 * self.pad
            block = buf[base:base + (rows + self.pad) * pw].reshape(rows + self.pad, pw)
            yield level, y0, rows, block[self.pad:, self.pad:self.pad + w]

    def fill(self, grids: list[np.ndarray]) -> np.ndarray:
        """Flat buffer holding ``grids``."""
        buf = np.zeros(self.size, np.float64)
        for level, y0, rows, view in self._views(buf):
            view[...] = grids[level][y0:y0 + rows]
        return buf

    def grids(self, buf: np.ndarray) -> list[np.ndarray]:
        """The ``[h, w]`` int32 grids held in ``buf``."""
        out = [np.zeros(s, np.int32) for s in self.shapes]
        for level, y0, rows, view in self._views(buf):
            out[level][y0:y0 + rows] = view
        return out


def _as_float(qarm: dict) -> dict:
    return {k: {n: np.asarray(v, np.float64) for n, v in layer.items()}
            for k, layer in qarm.items()}


def encode_latents(grids: list[np.ndarray], offsets: np.ndarray, qarm: dict, exps: dict,
                   n_hidden: int) -> bytes:
    """Integer grids ``[h_i, w_i]`` → range-coded bytes."""
    layout = _Layout([g.shape for g in grids], offsets)
    buf = layout.fill(grids)
    symbols = buf[layout.index].astype(np.int64)
    loc, scale = arm_int(layout.context(buf, 0, len(symbols)), _as_float(qarm), exps, n_hidden)
    enc = ConditionalEncoder(FAMILY)
    for lo, hi in zip(layout.starts[:-1], layout.starts[1:], strict=True):
        enc.encode(symbols[lo:hi], loc[lo:hi], scale[lo:hi])
    return enc.finish()


def decode_latents(data: bytes, shapes: list[tuple[int, int]], offsets: np.ndarray, qarm: dict,
                   exps: dict, n_hidden: int) -> list[np.ndarray]:
    """Range-coded bytes → integer grids ``[h_i, w_i]`` (raises ``BitstreamError`` if corrupt)."""
    layout = _Layout(shapes, offsets)
    buf = np.zeros(layout.size, np.float64)
    qarm = _as_float(qarm)
    dec = ConditionalDecoder(data, FAMILY)
    for lo, hi in zip(layout.starts[:-1], layout.starts[1:], strict=True):
        loc, scale = arm_int(layout.context(buf, lo, hi), qarm, exps, n_hidden)
        buf[layout.index[lo:hi]] = dec.decode(loc, scale)
    return layout.grids(buf)
