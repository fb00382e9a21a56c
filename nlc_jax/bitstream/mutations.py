"""Mutations of valid ``.nlc`` files, for fuzzing decoders (``nlc_jax.fuzz``).

Each kind of :data:`KINDS` turns a valid file into a damaged or hostile one, deterministically
from a ``numpy`` generator. With ``recompute_crc=False`` the damage is what storage or transfer
would do (the stored checksum is left as it was: the reader must refuse or reproduce the original
image); with ``recompute_crc=True`` the checksum is recomputed over the mutated body, as a hostile
file would be, so the decoders behind the container see the damage.

Kinds:

* ``bitflip``: 1–8 random bits flipped anywhere;
* ``header_bytes``: 1–3 bytes set at random in the container header or the codec's ``HEADER``
  section;
* ``payload_bytes``: 1–3 bytes set at random in the other sections;
* ``truncate``: cut at a random length (:func:`truncated` cuts at a given one);
* ``append``: 1–64 random bytes appended;
* ``extreme``: one varint (the container's height or width, or a varint read at a random offset
  of a section) replaced by an extreme value (0, 1, 2^k ± 1, 2^63, 2^64 − 1), the section table
  kept consistent;
* ``sections``: sections reordered, duplicated, dropped, or two payloads swapped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.container import MAGIC, SectionType, read_container
from nlc_jax.bitstream.errors import BitstreamError

KINDS = ("bitflip", "header_bytes", "payload_bytes", "truncate", "append", "extreme",
         "sections")
_EXTREMES = (0, 1, 2, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 65537, 1 << 20, 1 << 28,
             (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 63, (1 << 64) - 1)


def _body_and_crc(data: bytes) -> tuple[bytes, bytes]:
    return data[:-4], data[-4:]


def _seal(body: bytes, crc: bytes, recompute_crc: bool) -> bytes:
    return body + (zlib.crc32(body).to_bytes(4, "little") if recompute_crc else crc)


def _layout(data: bytes) -> tuple[bytes, list[tuple[int, bytes]], int]:
    """(container header bytes before the section table, [(type, payload)], offset of the first
    payload) of a valid file."""
    c = read_container(data)
    r = ByteReader(data[len(MAGIC):], "container header")
    r.fixed("u8"), r.fixed("u8"), r.uvarint(), r.uvarint(), r.fixed("u8")
    prefix_end = len(data) - r.remaining
    r.uvarint()
    for _ in c.sections:
        r.fixed("u8"), r.uvarint()
    first_payload = len(data) - r.remaining
    return data[:prefix_end], [(s.type, s.payload) for s in c.sections], first_payload


def _assemble(prefix: bytes, sections: list[tuple[int, bytes]]) -> bytes:
    """A container body (no checksum) from a header prefix and sections, without validation."""
    out = ByteWriter().raw(prefix).uvarint(len(sections))
    for kind, payload in sections:
        out.fixed("u8", kind).uvarint(len(payload))
    for _, payload in sections:
        out.raw(payload)
    return out.getvalue()


def _set_bytes(data: bytearray, lo: int, hi: int, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(1, 4))):
        if hi > lo:
            data[int(rng.integers(lo, hi))] = int(rng.integers(0, 256))


def _bitflip(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        out[int(rng.integers(0, len(out)))] ^= 1 << int(rng.integers(0, 8))
    out = bytes(out)
    return _seal(out[:-4], b"", True) if recompute_crc else out


def _header_region(data: bytes) -> tuple[int, int, int]:
    """(end of the header region, start and end of the payload region) of a valid file."""
    _, sections, first = _layout(data)
    header_end = first
    offset = first
    for kind, payload in sections:
        if kind == SectionType.HEADER:
            header_end = max(header_end, offset + len(payload))
        offset += len(payload)
    return header_end, first, offset


def _header_bytes(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    body, crc = _body_and_crc(data)
    out = bytearray(body)
    _set_bytes(out, 0, _header_region(data)[0], rng)
    return _seal(bytes(out), crc, recompute_crc)


def _payload_bytes(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    body, crc = _body_and_crc(data)
    out = bytearray(body)
    header_end, _, end = _header_region(data)
    _set_bytes(out, header_end, end, rng)
    return _seal(bytes(out), crc, recompute_crc)


def truncated(data: bytes, length: int, recompute_crc: bool) -> bytes:
    """``data`` cut to ``length`` bytes (``0 <= length < len(data)``); with ``recompute_crc``
    the body is cut to ``length`` bytes and a checksum of it appended."""
    if recompute_crc:
        body = data[:min(length, len(data) - 4)]
        return body + zlib.crc32(body).to_bytes(4, "little")
    return data[:length]


def _truncate(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    return truncated(data, int(rng.integers(0, len(data))), recompute_crc)


def _append(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    garbage = rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    if recompute_crc:
        body, _ = _body_and_crc(data)
        return _seal(body + garbage, b"", True)
    return data + garbage


def _extreme(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    prefix, sections, _ = _layout(data)
    value = int(_EXTREMES[int(rng.integers(0, len(_EXTREMES)))])
    candidates = [i for i, (_, p) in enumerate(sections) if p]
    if rng.random() < 0.3 or not candidates:  # the container's height or width
        r = ByteReader(prefix[len(MAGIC):], "prefix")
        r.fixed("u8"), r.fixed("u8")
        start = len(MAGIC) + 2
        r.uvarint()
        height_end = len(prefix) - r.remaining
        r.uvarint()
        width_end = len(prefix) - r.remaining
        lo, hi = (start, height_end) if rng.random() < 0.5 else (height_end, width_end)
        prefix = prefix[:lo] + ByteWriter().uvarint(value).getvalue() + prefix[hi:]
    else:  # a varint at a random offset of a section, the section's length updated
        index = candidates[int(rng.integers(0, len(candidates)))]
        kind, payload = sections[index]
        at = int(rng.integers(0, len(payload)))
        r = ByteReader(payload[at:], "section")
        try:
            r.uvarint()
            end = len(payload) - r.remaining
        except BitstreamError:  # no whole varint there: overwrite one byte
            end = at + 1
        payload = payload[:at] + ByteWriter().uvarint(value).getvalue() + payload[end:]
        sections = [*sections[:index], (kind, payload), *sections[index + 1:]]
    return _seal(_assemble(prefix, sections), data[-4:], recompute_crc)


def _sections(data: bytes, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    prefix, sections, _ = _layout(data)
    n = len(sections)
    how = int(rng.integers(0, 4))
    if how == 0 and n > 1:  # reorder
        order = rng.permutation(n)
        while n > 1 and (order == np.arange(n)).all():
            order = rng.permutation(n)
        sections = [sections[i] for i in order]
    elif how == 1 or n < 2:  # duplicate one section
        i = int(rng.integers(0, n)) if n else 0
        sections = [*sections[:i + 1], *sections[i:]] if n else [(0, b"")]
    elif how == 2:  # drop one section
        i = int(rng.integers(0, n))
        sections = sections[:i] + sections[i + 1:]
    else:  # swap two payloads, types kept
        i, j = rng.choice(n, 2, replace=False)
        payloads = [p for _, p in sections]
        payloads[i], payloads[j] = payloads[j], payloads[i]
        sections = [(t, p) for (t, _), p in zip(sections, payloads, strict=True)]
    return _seal(_assemble(prefix, sections), data[-4:], recompute_crc)


_MUTATORS: dict[str, Callable[[bytes, np.random.Generator, bool], bytes]] = {
    "bitflip": _bitflip, "header_bytes": _header_bytes, "payload_bytes": _payload_bytes,
    "truncate": _truncate, "append": _append, "extreme": _extreme, "sections": _sections,
}


def mutate(data: bytes, kind: str, rng: np.random.Generator, recompute_crc: bool) -> bytes:
    """A mutation of kind ``kind`` (one of :data:`KINDS`) of the valid ``.nlc`` file ``data``.

    Raises:
      ValueError: ``kind`` is unknown.
      BitstreamError: ``data`` is not a valid ``.nlc`` file.
    """
    try:
        mutator = _MUTATORS[kind]
    except KeyError:
        raise ValueError(f"unknown mutation kind {kind!r}; known: {', '.join(KINDS)}") from None
    read_container(data)
    return mutator(bytes(data), rng, recompute_crc)
