"""Deterministic range coding of integer symbols with ``constriction``'s FIFO range coder.

Streams are coded with ``constriction.stream.queue.RangeEncoder`` / ``RangeDecoder`` (32-bit
words, 24-bit probabilities). The queue (FIFO) coder lets a decoder read the stream back in the
order it was written, call by call, so an autoregressive decoder can decode chunk by chunk
(e.g. wavefront by wavefront) as the parameters of the next chunk become available.

Determinism (see ``docs/entropy.md``): the decoder must feed the coder *exactly* the numbers the
encoder used. Float parameters are therefore snapped before coding:

* scales to the fixed log-spaced table :data:`SCALE_TABLE` (16 steps per octave, from 2^-6 to
  2^14; every entry is a multiple of 2^-24, so the table is the same on every machine: a test
  pins its checksum);
* means to the fixed-point grid :data:`MEAN_STEP` (1/64). The integer part of the snapped mean is
  subtracted from the symbol, so the coder only sees a fractional mean in [-0.5, 0.5);
* categorical probabilities to integer counts, each row ~2^16 in total, by an exact
  power-of-two scaling (:func:`snap_probabilities`).

Out-of-support symbols are escaped: the coded support is ``[-B, B]`` around the mean with ``B``
chosen from the snapped scale (at least 16 scales); the edge bins carry the tail mass and a
symbol on an edge is followed by an Elias-gamma-like code of its excess. No value is ever clipped
or refused.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Literal

import constriction
import numpy as np

from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.entropy.distributions import numpy_bin_mass

CodedFamily = Literal["laplace", "gaussian"]
CODED_FAMILIES: tuple[str, ...] = ("laplace", "gaussian")

SCALE_MIN_LOG2 = -6
SCALE_MAX_LOG2 = 14
SCALE_STEPS_PER_OCTAVE = 16
MEAN_STEP = 1.0 / 64.0
_MEAN_CELLS = round(1.0 / MEAN_STEP)  # mean grid steps per unit (fractional means in [-1/2, 1/2))
PROB_BITS = 16
COUNT_TOTAL = 1 << PROB_BITS
MAX_ABS_LOC = float(1 << 24)
_SQRT2 = np.float32(math.sqrt(2.0))  # class boundaries of categorical row totals
_SNAP_CHUNK_ELEMENTS = 1 << 18  # categorical counts are made and coded in ~1 MB blocks

# Coded residual supports [-B, B]; a symbol uses the smallest B >= _TAIL_SCALES * scale.
SUPPORT_BOUNDS = np.array([4 ** (k + 2) - 1 for k in range(8)], dtype=np.int64)
_TAIL_SCALES = 16.0
_CODER_PRECISION = 24  # constriction's default probability precision for the queue coder
_ESCAPE_LENGTHS = 33  # bit lengths 0..32 of an escape excess
_ESCAPE_CHUNK_BITS = 16


def _make_scale_table() -> np.ndarray:
    exponents = SCALE_MIN_LOG2 + np.arange(
        (SCALE_MAX_LOG2 - SCALE_MIN_LOG2) * SCALE_STEPS_PER_OCTAVE + 1) / SCALE_STEPS_PER_OCTAVE
    # Rounding to a 2^-24 grid absorbs last-ulp differences between libm implementations.
    return np.round(np.exp2(exponents) * 2.0 ** 24) / 2.0 ** 24


SCALE_TABLE: np.ndarray = _make_scale_table()
SCALE_TABLE.setflags(write=False)
# Coded support class of each scale-table entry: the smallest bound >= _TAIL_SCALES * scale.
_SUPPORT_OF_SCALE = np.minimum(np.searchsorted(SUPPORT_BOUNDS, _TAIL_SCALES * SCALE_TABLE),
                               len(SUPPORT_BOUNDS) - 1).astype(np.uint8)


def _check_family(family: str) -> None:
    if family not in CODED_FAMILIES:
        raise ValueError(
            f"family {family!r} cannot be range coded; expected one of {CODED_FAMILIES}")


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return values


def scale_index(scale: np.ndarray) -> np.ndarray:
    """Index into :data:`SCALE_TABLE` of the nearest (log-domain) entry; ``[...]`` → int32 ``[...]``.

    Scales outside the table are clamped to its ends.
    """
    scale = _finite("scale", np.asarray(scale, np.float64))
    log2 = np.log2(np.maximum(scale, 2.0 ** (SCALE_MIN_LOG2 - 1)))
    idx = np.rint((log2 - SCALE_MIN_LOG2) * SCALE_STEPS_PER_OCTAVE)
    return np.clip(idx, 0, len(SCALE_TABLE) - 1).astype(np.int32)


def mean_steps(loc: np.ndarray) -> np.ndarray:
    """Means on the fixed-point grid, in steps of :data:`MEAN_STEP`: integer-valued float64
    ``[...]`` (clipped to ``±MAX_ABS_LOC``). Both coding paths snap their means with this."""
    steps = np.clip(_finite("loc", np.asarray(loc, np.float64)), -MAX_ABS_LOC, MAX_ABS_LOC)
    steps *= 1.0 / MEAN_STEP  # exact: MEAN_STEP is a power of two
    return np.rint(steps, out=steps)


def snap_loc(loc: np.ndarray) -> np.ndarray:
    """Means on the fixed-point grid: integer multiples of :data:`MEAN_STEP`, float64 ``[...]``
    (:func:`mean_steps` times the step: the means the coder uses)."""
    return mean_steps(loc) * MEAN_STEP


def snap_params(family: str, loc: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Snap float parameters to what the coder sees: ``(loc, scale)`` float64 arrays ``[...]``.

    The coder snaps with the same functions (:func:`mean_steps`, :func:`scale_index`), so
    whenever the encoder's and the decoder's floats fall in the same snapping cell (differences
    far below the grid step), the coder receives bit-identical inputs.
    """
    _check_family(family)
    return snap_loc(loc), SCALE_TABLE[scale_index(scale)]


class _CountSnapper:
    """Validated probabilities ``[N, K]`` and the power-of-two class of each row (see
    :func:`snap_probabilities`); writes counts for any row range into a caller's buffer."""

    def __init__(self, probs: np.ndarray):
        p = np.asarray(probs, np.float32)
        if p.ndim < 1 or p.shape[-1] < 2:
            raise ValueError(
                f"probabilities need a last axis of at least 2 classes, got {p.shape}")
        self.shape = p.shape
        self.flat = p.reshape(-1, p.shape[-1])
        self.exponent: np.ndarray | None = None  # None: every row in class 0
        if self.flat.size == 0:
            return
        total = self.flat @ np.ones(p.shape[-1], np.float32)  # [N]; only its class is used
        if not np.all(np.isfinite(total)):
            raise ValueError("probabilities contain NaN or infinite values")
        if self.flat.min() < 0:
            raise ValueError("probabilities must be non-negative")
        centred = total * _SQRT2  # class e ⇔ centred ∈ [2^e, 2^(e+1))
        if not np.all((centred >= 1) & (centred < 2)):
            self.exponent = np.frexp(centred)[1] - 1  # centred = m · 2^(e + 1), m ∈ [1/2, 1)

    def write(self, start: int, end: int, out: np.ndarray) -> np.ndarray:
        """Counts of rows ``[start, end)`` into ``out [end - start, K]`` (float32); returns it."""
        rows = self.flat[start:end]
        if self.exponent is None:  # one exact scalar scale
            np.multiply(rows, np.float32(COUNT_TOTAL), out=out)
            np.rint(out, out=out)
        else:  # exact float64 power-of-two scale per row
            scaled = rows * np.ldexp(1.0, PROB_BITS - self.exponent[start:end])[:, None]
            out[...] = np.rint(scaled, out=scaled)
        return np.fmax(out, np.float32(1.0), out=out)

    def chunks(self):
        """``(start, end, counts)`` over cache-sized row blocks; ``counts`` is a reused buffer."""
        n, k = self.flat.shape
        rows = max(1, _SNAP_CHUNK_ELEMENTS // k)
        buffer = np.empty((min(rows, n), k), np.float32)
        for start in range(0, n, rows):
            end = min(start + rows, n)
            yield start, end, self.write(start, end, buffer[:end - start])


def snap_probabilities(probs: np.ndarray) -> np.ndarray:
    """Probabilities ``[..., K]`` → integer counts ``[..., K]`` (float32, each >= 1).

    Rule: ``count = max(rint(p · 2^(16 − e)), 1)`` with ``e`` the row's power-of-two class,
    ``total · 2^-e ∈ [2^-0.5, 2^0.5)`` (``total = sum(p)``), so every row's counts sum to about
    2^16 (between 2^15.5 and 2^16.5). Scaling by a power of two is exact, so each count depends on
    its own ``p`` and on ``e`` only: the row sum's summation order (BLAS) can matter only when a
    total lies within a few ulps of a class boundary ``2^(k+0.5)``, which normalized rows (total
    ≈ 1) never do. The counts are exact small integers, so ``constriction``'s (IEEE,
    non-transcendental) conversion to its fixed-point tables is identical on every machine.
    An all-zero row becomes uniform.
    """
    snapper = _CountSnapper(probs)
    counts = np.empty(snapper.flat.shape, np.float32)
    if counts.size:
        snapper.write(0, counts.shape[0], counts)
    return counts.reshape(snapper.shape)


@functools.cache
def _quantized_family(family: str, bound: int):
    model = constriction.stream.model
    cls = model.QuantizedLaplace if family == "laplace" else model.QuantizedGaussian
    return cls(-bound, bound)


@functools.cache
def _categorical_family():
    return constriction.stream.model.Categorical(perfect=False)


@functools.cache
def _uniform_family():
    return constriction.stream.model.Uniform()


def _flat_float64(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if values.shape != shape:
        values = np.broadcast_to(values, shape)
    return values.reshape(-1)


class _Plan:
    """Snapped parameters of one conditional call, grouped by coded support (flat arrays ``[N]``)."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray | None, shape: tuple[int, ...],
                 index: np.ndarray | None = None):
        loc = _flat_float64(loc, shape)
        steps = mean_steps(loc)
        shift = steps + _MEAN_CELLS // 2
        shift *= 1.0 / _MEAN_CELLS
        np.floor(shift, out=shift)
        self.mean = (steps - shift * _MEAN_CELLS) * MEAN_STEP
        self.shift = shift.astype(np.int64)
        if index is None:
            index = scale_index(_flat_float64(scale, shape))
        else:
            index = np.broadcast_to(np.asarray(index, np.int64), shape).reshape(-1)
            if index.size and (index.min() < 0 or index.max() >= len(SCALE_TABLE)):
                raise ValueError("scale index outside the scale table")
        self.scale = SCALE_TABLE[index]
        support = _SUPPORT_OF_SCALE[index]
        self.bound = SUPPORT_BOUNDS[support]
        self.groups = np.bincount(support, minlength=len(SUPPORT_BOUNDS))
        single = np.count_nonzero(self.groups) == 1
        self.order = None if single else np.argsort(support, kind="stable")

    def slices(self):
        """``(bound, indices)`` for each non-empty support group, in a fixed order.

        ``indices`` is a slice (no copy) when all symbols share one support.
        """
        start = 0
        for k, count in enumerate(self.groups):
            if count:
                idx = slice(None) if self.order is None else self.order[start:start + count]
                yield int(SUPPORT_BOUNDS[k]), idx
                start += count


def _escape_parts(excess: np.ndarray):
    """Split excesses ``[M]`` (< 2^32) into bit lengths and two low/high chunks with their sizes."""
    length = np.frexp(excess.astype(np.float64))[1].astype(np.int64)  # bit_length; 0 for 0
    rest_bits = np.maximum(length - 1, 0)
    rest = excess - np.where(length > 0, np.left_shift(1, np.maximum(length - 1, 0)), 0)
    lo_bits = np.minimum(rest_bits, _ESCAPE_CHUNK_BITS)
    hi_bits = rest_bits - lo_bits
    lo = rest & ((np.int64(1) << lo_bits) - 1)
    hi = rest >> lo_bits
    return length, lo, lo_bits, hi, hi_bits


def _escape_bits(excess: np.ndarray) -> float:
    length = np.frexp(excess.astype(np.float64))[1]
    return float(len(excess) * math.log2(_ESCAPE_LENGTHS) + np.maximum(length - 1, 0).sum())


def _as_words(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise BitstreamError(f"range-coded payload of {len(data)} bytes is not a whole number "
                             "of 32-bit words")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


class ConditionalEncoder:
    """Streaming FIFO range encoder: call ``encode*`` any number of times, then :meth:`finish`.

    ``family`` ("laplace" or "gaussian") is used by :meth:`encode`; :meth:`encode_categorical`
    and :meth:`encode_tables` can be mixed into the same stream.
    """

    def __init__(self, family: str = "laplace"):
        _check_family(family)
        self.family = family
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray | None = None, *,
               scale_index: np.ndarray | None = None, family: str | None = None) -> None:
        """Encode integer ``symbols [...]`` under the family with per-symbol ``loc``/``scale``.

        ``loc`` and ``scale`` (float, broadcastable to ``symbols.shape``) are snapped here; or,
        instead of ``scale``, ``scale_index``: integer indices into :data:`SCALE_TABLE` (what an
        integer entropy model computes; skips the snapping of float scales). ``family`` overrides
        the encoder's for this call (the decoder's call must name the same).
        """
        if family is not None:
            _check_family(family)
        symbols = np.asarray(symbols)
        if symbols.size == 0:
            return
        plan = _Plan(loc, scale, symbols.shape, scale_index)
        residual = symbols.reshape(-1).astype(np.int64) - plan.shift
        clipped = np.clip(residual, -plan.bound, plan.bound)
        for bound, idx in plan.slices():
            self._coder.encode(clipped[idx].astype(np.int32),
                               _quantized_family(family or self.family, bound),
                               plan.mean[idx], plan.scale[idx])
        edge = np.abs(clipped) == plan.bound
        self._encode_escapes(np.abs(residual[edge]) - plan.bound[edge])

    def encode_tabled(self, symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> None:
        """Like :meth:`encode` but with fixed per-(scale, mean cell) tables (table path).

        For streams whose ``loc``/``scale [...]`` are all known before decoding; much faster than
        :meth:`encode` (one fixed-model call per group). Read back with
        :meth:`ConditionalDecoder.decode_tabled`; the two paths' streams differ.
        """
        symbols = np.asarray(symbols)
        if symbols.size == 0:
            return
        plan = _TablePlan(loc, scale, symbols.shape)
        flat = symbols.reshape(-1).astype(np.int64)
        residual = flat - plan.shift
        clipped = np.clip(residual, -plan.bound, plan.bound)
        coded = (clipped + plan.bound).astype(np.int32)[plan.order]
        coder = self._coder
        for s, m, start, end in plan.groups():
            coder.encode(coded[start:end], _table_models(self.family, s)[m])
        # Escapes in position order (the decoder finds them after scattering back).
        edge = np.abs(clipped) == plan.bound
        if plan.big.size:
            edge[plan.big] = False
        self._encode_escapes(np.abs(residual[edge]) - plan.bound[edge])
        if plan.big.size:
            self.encode(flat[plan.big], plan.loc[plan.big], plan.scale[plan.big])

    def encode_categorical(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        """Encode ``symbols [...]`` in ``[0, K)`` under per-symbol ``probs [..., K]`` (snapped).

        The counts are made and coded block by block (same bytes as one call, no full-size
        temporary).
        """
        symbols = np.asarray(symbols).reshape(-1)
        snapper = _CountSnapper(probs)
        n, k = snapper.flat.shape
        if n != symbols.size:
            raise ValueError(f"{symbols.size} symbols but {n} probability vectors")
        if symbols.size and (symbols.min() < 0 or symbols.max() >= k):
            raise ValueError(f"categorical symbols must lie in [0, {k})")
        symbols = symbols.astype(np.int32, copy=False)
        for start, end, counts in snapper.chunks():
            self._coder.encode(symbols[start:end], _categorical_family(), counts)

    def encode_tables(self, symbols: np.ndarray, index: np.ndarray, counts: np.ndarray,
                      offsets: np.ndarray) -> None:
        """Encode ``symbols [N]`` with fixed integer tables (e.g. a factorized prior).

        Symbol ``i`` uses table ``index[i]``: ``counts [T, K]`` (from :func:`snap_probabilities`)
        over the support ``offsets[t] + [0, K)``; the two edge entries carry the tail masses and
        symbols beyond them are escaped.
        """
        symbols = np.asarray(symbols).reshape(-1).astype(np.int64)
        if symbols.size == 0:
            return
        index = np.asarray(index).reshape(-1)
        residual = symbols - np.asarray(offsets, np.int64)[index]
        top = counts.shape[1] - 1
        clipped = np.clip(residual, 0, top)
        self._coder.encode(clipped.astype(np.int32), _categorical_family(),
                           np.asarray(counts, np.float32)[index])
        edge = (clipped == 0) | (clipped == top)
        self._encode_escapes(np.where(clipped == 0, -residual, residual - top)[edge])

    def _encode_escapes(self, excess: np.ndarray) -> None:
        if excess.size == 0:
            return
        length, lo, lo_bits, hi, hi_bits = _escape_parts(excess)
        self._coder.encode(length.astype(np.int32),
                           constriction.stream.model.Uniform(_ESCAPE_LENGTHS))
        for value, nbits in ((lo, lo_bits), (hi, hi_bits)):
            used = nbits > 0
            if used.any():
                self._coder.encode(value[used].astype(np.int32), _uniform_family(),
                                   (np.int64(1) << nbits[used]).astype(np.int32))

    def num_bits(self) -> int:
        """Bits written so far (whole 32-bit words once finished)."""
        return int(self._coder.num_bits())

    def finish(self) -> bytes:
        """The coded stream as little-endian bytes (a multiple of 4; empty if nothing coded)."""
        return self._coder.get_compressed().astype("<u4").tobytes()


class ConditionalDecoder:
    """Reads a :class:`ConditionalEncoder` stream back, call for call, in the same order."""

    def __init__(self, data: bytes, family: str = "laplace"):
        _check_family(family)
        self.family = family
        self._coder = constriction.stream.queue.RangeDecoder(_as_words(data))

    def _call(self, *args):
        try:
            return np.asarray(self._coder.decode(*args))
        except (ValueError, RuntimeError, OverflowError, AssertionError) as err:
            raise BitstreamError(f"corrupt range-coded payload: {err}") from None

    def decode(self, loc: np.ndarray, scale: np.ndarray | None = None, *,
               scale_index: np.ndarray | None = None, family: str | None = None) -> np.ndarray:
        """Decode ``loc.shape`` symbols with per-symbol ``loc`` and ``scale`` (or ``scale_index``,
        and ``family``, as in :meth:`ConditionalEncoder.encode`); returns int32 ``[...]``."""
        if family is not None:
            _check_family(family)
        shape = np.broadcast_shapes(np.shape(loc), np.shape(scale if scale_index is None
                                                            else scale_index))
        plan = _Plan(loc, scale, shape, scale_index)
        if plan.mean.size == 0:
            return np.zeros(shape, np.int32)
        residual = np.empty(plan.mean.shape, np.int64)
        for bound, idx in plan.slices():
            residual[idx] = self._call(_quantized_family(family or self.family, bound),
                                       plan.mean[idx], plan.scale[idx])
        edge = np.flatnonzero(np.abs(residual) == plan.bound)
        if edge.size:
            residual[edge] += np.sign(residual[edge]) * self._decode_escapes(edge.size)
        residual += plan.shift
        return _to_int32(residual).reshape(shape)

    def decode_tabled(self, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`ConditionalEncoder.encode_tabled`; returns int32 ``[...]``."""
        shape = np.broadcast_shapes(np.shape(loc), np.shape(scale))
        plan = _TablePlan(loc, scale, shape)
        out = np.zeros(plan.shift.size, np.int64)
        if out.size == 0:
            return out.astype(np.int32).reshape(shape)
        decoded = np.empty(plan.tabled, np.int32)
        for s, m, start, end in plan.groups():
            decoded[start:end] = self._call(_table_models(self.family, s)[m], end - start)
        out[plan.order[:plan.tabled]] = decoded
        out -= plan.bound
        if plan.big.size:
            out[plan.big] = 0  # coded after the escapes, never an edge
        edge = np.flatnonzero(np.abs(out) == plan.bound)
        out[edge] += np.sign(out[edge]) * self._decode_escapes(edge.size)
        out += plan.shift
        if plan.big.size:
            out[plan.big] = self.decode(plan.loc[plan.big], plan.scale[plan.big])
        return _to_int32(out).reshape(shape)

    def decode_categorical(self, probs: np.ndarray) -> np.ndarray:
        """Decode one symbol per probability vector of ``probs [..., K]``; returns int32 ``[...]``."""
        snapper = _CountSnapper(probs)
        out = np.empty(snapper.flat.shape[0], np.int32)
        for start, end, counts in snapper.chunks():
            out[start:end] = self._call(_categorical_family(), counts)
        return out.reshape(snapper.shape[:-1])

    def decode_tables(self, index: np.ndarray, counts: np.ndarray,
                      offsets: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`ConditionalEncoder.encode_tables`; returns int32 ``index.shape``."""
        index = np.asarray(index)
        flat = index.reshape(-1)
        if flat.size == 0:
            return np.zeros(index.shape, np.int32)
        top = counts.shape[1] - 1
        clipped = self._call(_categorical_family(),
                             np.asarray(counts, np.float32)[flat]).astype(np.int64)
        edge = (clipped == 0) | (clipped == top)
        excess = self._decode_escapes(int(edge.sum()))
        residual = clipped.copy()
        residual[edge] += np.where(clipped[edge] == 0, -excess, excess)
        return _to_int32(residual + np.asarray(offsets, np.int64)[flat]).reshape(index.shape)

    def _decode_escapes(self, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, np.int64)
        length = self._call(constriction.stream.model.Uniform(_ESCAPE_LENGTHS), count)
        length = length.astype(np.int64)
        rest_bits = np.maximum(length - 1, 0)
        lo_bits = np.minimum(rest_bits, _ESCAPE_CHUNK_BITS)
        hi_bits = rest_bits - lo_bits
        parts = []
        for nbits in (lo_bits, hi_bits):
            value = np.zeros(count, np.int64)
            used = nbits > 0
            if used.any():
                value[used] = self._call(_uniform_family(),
                                         (np.int64(1) << nbits[used]).astype(np.int32))
            parts.append(value)
        top = np.where(length > 0, np.left_shift(1, rest_bits), 0)
        return top + parts[0] + (parts[1] << lo_bits)


def _to_int32(values: np.ndarray) -> np.ndarray:
    info = np.iinfo(np.int32)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise BitstreamError("corrupt range-coded payload: decoded symbol outside int32")
    return values.astype(np.int32)


def symbol_bits(symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray,
                family: str = "laplace") -> np.ndarray:
    """Bits :meth:`ConditionalEncoder.encode` spends on each of ``symbols [...]``: float64
    ``[N]`` (flattened), escape codes included in the edge symbols' bits.

    Uses the same snapped parameters, supports, tail-carrying edge bins, the coder's 24-bit
    probability floor and escape codes.
    """
    _check_family(family)
    symbols = np.asarray(symbols)
    if symbols.size == 0:
        return np.zeros(0)
    plan = _Plan(loc, scale, symbols.shape)
    residual = symbols.reshape(-1).astype(np.int64) - plan.shift
    clipped = np.clip(residual, -plan.bound, plan.bound)
    lo = np.where(clipped == -plan.bound, -np.inf, clipped - 0.5)
    hi = np.where(clipped == plan.bound, np.inf, clipped + 0.5)
    mass = numpy_bin_mass(family, lo, hi, plan.mean, plan.scale)
    total = 2.0 ** _CODER_PRECISION
    out = -np.log2((mass * (total - (2 * plan.bound + 1)) + 1.0) / total)
    edge = np.flatnonzero(np.abs(clipped) == plan.bound)
    excess = np.abs(residual[edge]) - plan.bound[edge]
    out[edge] += math.log2(_ESCAPE_LENGTHS) + np.maximum(
        np.frexp(excess.astype(np.float64))[1] - 1, 0)
    return out


def exact_bits(symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray,
               family: str = "laplace") -> float:
    """Bits :meth:`ConditionalEncoder.encode` spends on ``symbols [...]`` (before word padding):
    the sum of :func:`symbol_bits`; the finished stream is this plus at most ~64 bits."""
    return float(symbol_bits(symbols, loc, scale, family).sum())


def categorical_exact_bits(symbols: np.ndarray, probs: np.ndarray) -> float:
    """Bits :meth:`ConditionalEncoder.encode_categorical` spends on ``symbols [...]``."""
    counts = snap_probabilities(probs).astype(np.float64)
    counts = counts.reshape(-1, counts.shape[-1])
    picked = counts[np.arange(counts.shape[0]), np.asarray(symbols).reshape(-1)]
    return float(-np.log2(picked / counts.sum(axis=1)).sum())


def encode_categorical(symbols: np.ndarray, probs: np.ndarray) -> bytes:
    """One-shot: ``symbols [...]`` under ``probs [..., K]`` → bytes."""
    encoder = ConditionalEncoder()
    encoder.encode_categorical(symbols, probs)
    return encoder.finish()


def decode_categorical(data: bytes, probs: np.ndarray) -> np.ndarray:
    """One-shot inverse of :func:`encode_categorical`; returns int32 ``probs.shape[:-1]``."""
    return ConditionalDecoder(data).decode_categorical(probs)


# --- Table path: streams whose parameters are all known before decoding ---------------------
#
# Every (scale-table index, mean cell) pair of a snapped (loc, scale) selects one fixed integer
# table, so a whole non-autoregressive stream is coded as a few large fixed-model calls instead
# of one per-symbol parameterised call: symbols are grouped by that key (a stable radix sort of a
# uint16 key, reproducible by the decoder from the parameters alone) and each group is coded with
# a non-parameterised ``Categorical``. Scales whose support exceeds :data:`TABLE_MAX_BOUND` keep
# the per-symbol parameterised path (after all table groups). Escapes are as in :meth:`encode`.

TABLE_MAX_BOUND = 1023  # largest support bound [-B, B] coded with a fixed table
TABLE_PROB_BITS = 24  # table counts sum to 2^24 (the coder's precision), each >= 1


@functools.cache
def _table_counts(family: str, index: int) -> np.ndarray:
    """Integer counts ``[MEAN_CELLS, 2B + 1]`` (float64) of scale-table entry ``index``.

    Row ``m`` is the mean ``(m - MEAN_CELLS/2) * MEAN_STEP``; edge bins carry the tails. Masses
    are rounded to a 2^-40 grid before flooring, so last-ulp libm differences cannot move a
    count except on an exact grid tie; a test pins the checksum of all tables.
    """
    bound = int(SUPPORT_BOUNDS[_SUPPORT_OF_SCALE[index]])
    mean = ((np.arange(_MEAN_CELLS) - _MEAN_CELLS // 2) * MEAN_STEP)[:, None]
    k = np.arange(-bound, bound + 1, dtype=np.float64)[None, :]
    lo = np.where(k == -bound, -np.inf, k - 0.5)
    hi = np.where(k == bound, np.inf, k + 0.5)
    mass = numpy_bin_mass(family, lo, hi, mean, np.full_like(mean, SCALE_TABLE[index]))
    mass = np.round(mass * 2.0 ** 40) / 2.0 ** 40
    free = (1 << TABLE_PROB_BITS) - (2 * bound + 1)
    counts = np.floor(mass * free) + 1.0
    # Hand the rounding remainder to the most probable bin so every row sums to exactly 2^24.
    top = np.argmax(counts, axis=1)
    counts[np.arange(_MEAN_CELLS), top] += (1 << TABLE_PROB_BITS) - counts.sum(axis=1)
    counts.setflags(write=False)
    return counts


@functools.cache
def _table_models(family: str, index: int) -> tuple:
    counts = _table_counts(family, index)
    cat = constriction.stream.model.Categorical
    return tuple(cat(row, perfect=False) for row in counts)


def table_checksum(family: str, indices: np.ndarray) -> str:
    """sha256 of the counts of scale-table entries ``indices`` (for pinning tests)."""
    digest = hashlib.sha256()
    for index in np.asarray(indices).reshape(-1):
        digest.update(_table_counts(family, int(index)).astype("<f8").tobytes())
    return digest.hexdigest()


class _TablePlan:
    """Symbols of one table-path call grouped by ``(scale index, mean cell)`` (flat ``[N]``)."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray, shape: tuple[int, ...]):
        loc = np.broadcast_to(np.asarray(loc), shape).reshape(-1)
        scale = np.broadcast_to(np.asarray(scale), shape).reshape(-1)
        steps = mean_steps(loc).astype(np.int64)
        self.shift = (steps + _MEAN_CELLS // 2) // _MEAN_CELLS
        cell = steps - self.shift * _MEAN_CELLS + _MEAN_CELLS // 2  # in [0, MEAN_CELLS)
        self.index = scale_index(scale)
        self.bound = SUPPORT_BOUNDS[_SUPPORT_OF_SCALE[self.index]]
        self.big = np.flatnonzero(self.bound > TABLE_MAX_BOUND)
        key = (self.index.astype(np.uint16) * _MEAN_CELLS + cell.astype(np.uint16))
        if self.big.size:
            key[self.big] = np.iinfo(np.uint16).max  # sorted last, coded per symbol
        self.order = np.argsort(key, kind="stable")  # radix sort for uint16
        sizes = np.bincount(key, minlength=1 << 16)
        self.keys = np.flatnonzero(sizes[:-1])
        self.ends = np.cumsum(sizes[self.keys])
        self.tabled = int(self.ends[-1]) if self.keys.size else 0
        self.loc, self.scale, self.cell = loc, scale, cell

    def groups(self):
        """``(scale index, mean cell, start, end)`` of each table group, in coding order."""
        start = 0
        for key, end in zip(self.keys.tolist(), self.ends.tolist(), strict=True):
            yield key // _MEAN_CELLS, key % _MEAN_CELLS, start, end
            start = end


def table_exact_bits(symbols: np.ndarray, loc: np.ndarray, scale: np.ndarray,
                     family: str = "laplace") -> float:
    """Bits :meth:`ConditionalEncoder.encode_tabled` spends on ``symbols [...]`` (before padding)."""
    _check_family(family)
    symbols = np.asarray(symbols)
    if symbols.size == 0:
        return 0.0
    plan = _TablePlan(loc, scale, symbols.shape)
    flat = symbols.reshape(-1).astype(np.int64)
    residual = flat - plan.shift
    clipped = np.clip(residual, -plan.bound, plan.bound)
    tabled = np.ones(flat.size, bool)
    tabled[plan.big] = False
    counts = np.empty(flat.size, np.float64)
    for s in np.unique(plan.index[tabled]).tolist():
        sel = np.flatnonzero(tabled & (plan.index == s))
        table = _table_counts(family, s)
        counts[sel] = table[plan.cell[sel], clipped[sel] + plan.bound[sel]]
    edge = tabled & (np.abs(clipped) == plan.bound)
    # constriction rescales the counts to its 24-bit total minus one guaranteed count per bin.
    total = 2.0 ** _CODER_PRECISION
    width = (2 * plan.bound[tabled] + 1).astype(np.float64)
    quantized = (counts[tabled] / 2.0 ** TABLE_PROB_BITS * (total - width) + 1.0) / total
    bits = float(-np.log2(quantized).sum())
    bits += _escape_bits(np.abs(residual[edge]) - plan.bound[edge])
    if plan.big.size:
        bits += exact_bits(flat[plan.big], plan.loc[plan.big], plan.scale[plan.big], family)
    return bits
