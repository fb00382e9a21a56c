"""Little helpers to write and read compact codec headers: varints, fixed-width ints, floats.

:class:`ByteReader` raises :class:`~nlc_jax.bitstream.errors.BitstreamError` (never
``IndexError``/``struct.error``) when the data runs out or a value is malformed.
"""

from __future__ import annotations

import struct

from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.bitstream.limits import MAX_PARAMETERS

MAX_VARINT_BYTES = 10  # enough for any value < 2^70; longer runs are rejected as corrupt

_FIXED = {"u8": "<B", "u16": "<H", "u32": "<I", "i8": "<b", "i16": "<h", "i32": "<i",
          "f16": "<e", "f32": "<f", "f64": "<d"}


class ByteWriter:
    """Appends encoded values to a growing byte buffer; :meth:`getvalue` returns the bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uvarint(self, value: int) -> ByteWriter:
        """Unsigned LEB128 varint (7 bits per byte)."""
        value = int(value)
        if value < 0:
            raise ValueError(f"uvarint needs a non-negative value, got {value}")
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
        if len(out) > MAX_VARINT_BYTES:
            raise ValueError("uvarint value too large")
        self._parts.append(bytes(out))
        return self

    def svarint(self, value: int) -> ByteWriter:
        """Signed varint (zig-zag mapped, so small magnitudes take one byte)."""
        value = int(value)
        return self.uvarint(2 * value if value >= 0 else -2 * value - 1)

    def fixed(self, kind: str, value: int | float) -> ByteWriter:
        """A fixed-width little-endian value; ``kind`` in u8/u16/u32/i8/i16/i32/f16/f32/f64."""
        try:
            self._parts.append(struct.pack(_FIXED[kind], value))
        except KeyError:
            raise ValueError(f"unknown fixed-width kind {kind!r}") from None
        except struct.error as err:
            raise ValueError(f"cannot write {value!r} as {kind}: {err}") from None
        return self

    def raw(self, data: bytes) -> ByteWriter:
        """Bytes as they are (the reader must know their length)."""
        self._parts.append(bytes(data))
        return self

    def blob(self, data: bytes) -> ByteWriter:
        """Length-prefixed bytes (uvarint length, then the bytes)."""
        return self.uvarint(len(data)).raw(data)

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return b"".join(self._parts)


class ByteReader:
    """Reads what :class:`ByteWriter` wrote; ``what`` names the data in error messages."""

    def __init__(self, data: bytes, what: str = "data") -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0
        self.what = what
        self._parameters = 0

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self._data) - self._pos

    @property
    def position(self) -> int:
        """Bytes read so far."""
        return self._pos

    def raw(self, size: int) -> bytes:
        """Exactly ``size`` bytes."""
        if size < 0 or size > self.remaining:
            raise BitstreamError(f"truncated {self.what}: needed {size} bytes at offset "
                                 f"{self._pos}, {self.remaining} left")
        out = bytes(self._data[self._pos:self._pos + size])
        self._pos += size
        return out

    def uvarint(self, max_value: int | None = None) -> int:
        """An unsigned varint, optionally checked against ``max_value``."""
        value = 0
        for shift in range(0, 7 * MAX_VARINT_BYTES, 7):
            byte = self.raw(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        else:
            raise BitstreamError(f"malformed varint in {self.what} at offset {self._pos}")
        if max_value is not None and value > max_value:
            raise BitstreamError(f"implausible value {value} in {self.what} (max {max_value})")
        return value

    def svarint(self) -> int:
        """A zig-zag signed varint."""
        value = self.uvarint()
        return value // 2 if value % 2 == 0 else -(value + 1) // 2

    def fixed(self, kind: str) -> int | float:
        """A fixed-width value written by :meth:`ByteWriter.fixed`."""
        try:
            fmt = _FIXED[kind]
        except KeyError:
            raise ValueError(f"unknown fixed-width kind {kind!r}") from None
        return struct.unpack(fmt, self.raw(struct.calcsize(fmt)))[0]

    def blob(self) -> bytes:
        """Length-prefixed bytes."""
        return self.raw(self.uvarint(max_value=self.remaining))

    def declare_parameters(self, count: int) -> None:
        """Count ``count`` network parameters that the data read so far asks a decoder to
        allocate; raise once the total exceeds :data:`~nlc_jax.bitstream.limits.MAX_PARAMETERS`
        (before anything is allocated)."""
        self._parameters += int(count)
        if self._parameters > MAX_PARAMETERS:
            raise BitstreamError(f"implausible {self.what}: declares over {MAX_PARAMETERS:,} "
                                 "network parameters")

    def expect_end(self) -> None:
        """Raise unless everything was read."""
        if self.remaining:
            raise BitstreamError(f"{self.remaining} unexpected trailing bytes in {self.what}")
