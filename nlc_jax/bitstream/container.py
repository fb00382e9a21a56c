"""The versioned ``.nlc`` container shared by every codec.

Layout (all integers little-endian or LEB128 varints)::

    magic     3 bytes  b"NLC"
    version   1 byte   FORMAT_VERSION
    codec     1 byte   codec id (CODEC_IDS)
    height    uvarint  1..MAX_SIDE
    width     uvarint  1..MAX_SIDE
    format    1 byte   (channels - 1) << 4 | (bit_depth - 1)
    nsections uvarint
    per section: type (1 byte), length (uvarint)
    payloads  the section payloads, in order
    crc32     4 bytes  zlib.crc32 of everything before it

A 256×256 RGB 8-bit image with one section costs 15 bytes of framing plus 2–4 per section.
Readers also refuse images over :func:`~nlc_jax.bitstream.limits.max_pixels` (a setting, see
``nlc_jax.bitstream.limits``) before a decoder allocates anything. ``channels`` is 3 for colour
and 1 for a gray image (coded with the codec's RGB model; decoders return equal R, G and B, see
``nlc_jax.codecs.gray``).
"""

from __future__ import annotations

import dataclasses
import enum
import zlib
from collections.abc import Iterable

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.bitstream.limits import MAX_PIXELS, MAX_SIDE, check_image_size

MAGIC = b"NLC"
FORMAT_VERSION = 1
MAX_CHANNELS = 16
MAX_BIT_DEPTH = 16
MAX_SECTIONS = 255

# Fixed forever: a file names its own decoder by this id. Never renumber; only append.
CODEC_IDS: dict[str, int] = {
    "coolchic": 1,
    "hyperprior": 2,
    "clric": 3,
    "noise2latent": 4,
    "glc": 5,
    "rvdiff": 6,  # the rate-variable diffusion codec (reserved as "diffusion" before it existed)
    "entropy_demo": 127,
}
_CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}


class SectionType(enum.IntEnum):
    """Common section types (codecs may use any value 0–255 for their own sections)."""

    HEADER = 0      # codec configuration needed to decode
    LATENTS = 1     # entropy-coded latents
    NETWORKS = 2    # entropy-coded decoder weights
    HYPER = 3       # side information (hyper-latents)
    AUX = 4         # anything else


@dataclasses.dataclass(frozen=True)
class Section:
    """One typed payload of a container."""

    type: int
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Container:
    """A parsed ``.nlc`` file: codec, geometry and typed sections (in file order)."""

    codec: str
    version: int
    height: int
    width: int
    channels: int
    bit_depth: int
    sections: tuple[Section, ...]

    def section(self, type_: int) -> bytes:
        """Payload of the only section of type ``type_``; BitstreamError if missing/repeated."""
        found = self.sections_of(type_)
        if len(found) != 1:
            raise BitstreamError(f"{self.codec} file must hold exactly one section of type "
                                 f"{int(type_)}, found {len(found)}")
        return found[0]

    def sections_of(self, type_: int) -> list[bytes]:
        """Payloads of all sections of type ``type_``, in file order."""
        return [s.payload for s in self.sections if s.type == type_]


def codec_id(codec: str) -> int:
    """The fixed id of codec name ``codec``."""
    try:
        return CODEC_IDS[codec]
    except KeyError:
        raise ValueError(f"codec {codec!r} has no container id; known: "
                         f"{', '.join(sorted(CODEC_IDS))}") from None


def _check_geometry(height: int, width: int, channels: int, bit_depth: int, error: type) -> None:
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE) or height * width > MAX_PIXELS:
        raise error(f"implausible image size {height}x{width} (each side 1..{MAX_SIDE}, "
                    f"at most {MAX_PIXELS} pixels)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise error(f"implausible channel count {channels} (1..{MAX_CHANNELS})")
    if not 1 <= bit_depth <= MAX_BIT_DEPTH:
        raise error(f"implausible bit depth {bit_depth} (1..{MAX_BIT_DEPTH})")


def write_container(codec: str, height: int, width: int, channels: int, bit_depth: int,
                    sections: Iterable[Section | tuple[int, bytes]]) -> bytes:
    """Serialize a container; ``sections`` are ``Section`` or ``(type, payload)`` pairs."""
    sections = [s if isinstance(s, Section) else Section(int(s[0]), bytes(s[1])) for s in sections]
    _check_geometry(height, width, channels, bit_depth, ValueError)
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"at most {MAX_SECTIONS} sections, got {len(sections)}")
    out = ByteWriter().raw(MAGIC).fixed("u8", FORMAT_VERSION).fixed("u8", codec_id(codec))
    out.uvarint(height).uvarint(width).fixed("u8", (channels - 1) << 4 | (bit_depth - 1))
    out.uvarint(len(sections))
    for s in sections:
        if not 0 <= s.type <= 255:
            raise ValueError(f"section type must be 0..255, got {s.type}")
        out.fixed("u8", s.type).uvarint(len(s.payload))
    for s in sections:
        out.raw(s.payload)
    body = out.getvalue()
    return body + zlib.crc32(body).to_bytes(4, "little")


def read_image_container(data: bytes, codec: str) -> Container:
    """:func:`read_container`, checked to be a ``codec`` file of an 8-bit RGB (3 channels) or
    gray (1 channel) image.

    Raises:
      BitstreamError: malformed data, another codec's file, or another image format.
    """
    c = read_container(data)
    if c.codec != codec:
        raise BitstreamError(f"not a {codec} file (codec {c.codec!r})")
    if c.channels not in (1, 3) or c.bit_depth != 8:
        raise BitstreamError(f"{codec} files hold 8-bit RGB or gray images, header says "
                             f"{c.channels} channels of {c.bit_depth} bits")
    return c


def with_channels(data: bytes, channels: int) -> bytes:
    """The same ``.nlc`` file with its header's channel count set to ``channels`` (sections
    unchanged, checksum recomputed).

    Raises:
      BitstreamError: ``data`` is not a valid ``.nlc`` file.
    """
    c = read_container(data)
    return write_container(c.codec, c.height, c.width, channels, c.bit_depth, c.sections)


def read_container(data: bytes) -> Container:
    """Parse and verify ``.nlc`` bytes; raises :class:`BitstreamError` for anything malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise BitstreamError("not an .nlc file (wrong magic bytes)")
    reader = ByteReader(data[len(MAGIC):], "container header")
    version = reader.fixed("u8")
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported .nlc format version {version} "
                             f"(this library reads version {FORMAT_VERSION})")
    cid = reader.fixed("u8")
    if cid not in _CODEC_NAMES:
        raise BitstreamError(f"unknown codec id {cid} in .nlc header")
    height = reader.uvarint(max_value=MAX_SIDE)
    width = reader.uvarint(max_value=MAX_SIDE)
    fmt = reader.fixed("u8")
    channels, bit_depth = (fmt >> 4) + 1, (fmt & 0xF) + 1
    _check_geometry(height, width, channels, bit_depth, BitstreamError)
    check_image_size(height, width, BitstreamError)
    count = reader.uvarint(max_value=MAX_SECTIONS)
    table = [(reader.fixed("u8"), reader.uvarint()) for _ in range(count)]
    declared = sum(n for _, n in table)
    if declared + 4 > reader.remaining:
        raise BitstreamError(f"truncated .nlc file: sections declare {declared} payload bytes "
                             f"plus a 4-byte checksum, {reader.remaining} bytes present")
    sections = tuple(Section(t, reader.raw(n)) for t, n in table)
    if reader.remaining > 4:
        raise BitstreamError(f"{reader.remaining - 4} bytes of trailing garbage after the .nlc "
                             "checksum")
    stored = int.from_bytes(reader.raw(4), "little")
    if zlib.crc32(data[:-4]) != stored:
        raise BitstreamError(".nlc checksum mismatch: the file is corrupt")
    return Container(_CODEC_NAMES[cid], version, height, width, channels, bit_depth, sections)
