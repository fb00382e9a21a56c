"""The versioned ``.nlc`` bitstream container and byte-level helpers (see ``docs/bitstream.md``)."""

from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.container import (
    CODEC_IDS,
    FORMAT_VERSION,
    MAGIC,
    Container,
    Section,
    SectionType,
    codec_id,
    read_container,
    write_container,
)
from nlc_jax.bitstream.errors import BitstreamError

__all__ = [
    "CODEC_IDS", "FORMAT_VERSION", "MAGIC", "BitstreamError", "ByteReader", "ByteWriter",
    "Container", "Section", "SectionType", "codec_id", "read_container", "write_container",
]
