"""The .nlc container: round trips, compactness, every error case, and fuzzing of the reader."""

import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlc_jax.bitstream import (
    CODEC_IDS,
    BitstreamError,
    ByteReader,
    ByteWriter,
    Section,
    SectionType,
    read_container,
    write_container,
)


def _valid(sections=((SectionType.HEADER, b"\x01\x02"), (SectionType.LATENTS, b"z" * 200))):
    return write_container("coolchic", 512, 768, 3, 8, sections)


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_round_trip():
    data = _valid()
    c = read_container(data)
    assert (c.codec, c.version, c.height, c.width, c.channels, c.bit_depth) == (
        "coolchic", 1, 512, 768, 3, 8)
    assert c.sections == (Section(0, b"\x01\x02"), Section(1, b"z" * 200))
    assert c.section(SectionType.LATENTS) == b"z" * 200
    for codec in CODEC_IDS:
        assert read_container(write_container(codec, 1, 65536, 1, 16, [])).codec == codec


def test_overhead_is_small():
    # magic 3 + version 1 + codec 1 + 2x2 geometry + format 1 + count 1 + crc 4 = 15 bytes,
    # plus 2 bytes per section of < 128 bytes.
    assert len(write_container("coolchic", 256, 256, 3, 8, [(1, b"")])) == 17


def test_missing_or_repeated_section():
    c = read_container(_valid([(1, b"a"), (1, b"b")]))
    assert c.sections_of(1) == [b"a", b"b"]
    with pytest.raises(BitstreamError, match="exactly one section of type 1, found 2"):
        c.section(1)
    with pytest.raises(BitstreamError, match="found 0"):
        c.section(3)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"PNG" + d[3:], "wrong magic"),
    (lambda d: b"", "wrong magic"),
    (lambda d: d[:3] + b"\x07" + d[4:], "unsupported .nlc format version 7"),
    (lambda d: _recrc(d[:4] + b"\x63" + d[5:-4]), "unknown codec id 99"),
    (lambda d: d[:-1], "truncated .nlc file"),
    (lambda d: d[:-30], "truncated .nlc file: sections declare 202"),
    (lambda d: d[:6], "truncated container header"),
    (lambda d: d + b"\x00\x00", "2 bytes of trailing garbage"),
    (lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:], "checksum mismatch"),
    (lambda d: _recrc(d[:5] + b"\x00" + d[7:-4]), "implausible image size 0x768"),
    # 10^6 x 10^6 pixels: varints 0xc0843d
    (lambda d: _recrc(d[:5] + b"\xc0\x84\x3d\xc0\x84\x3d" + d[9:-4]), "implausible value 1000000"),
    (lambda d: _recrc(d[:5] + b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80" + d[9:-4]),
     "malformed varint"),
])
def test_malformed_files(mutate, message):
    with pytest.raises(BitstreamError, match=message):
        read_container(mutate(_valid()))


def test_implausible_pixel_count_and_writer_checks():
    body = write_container("coolchic", 1, 1, 3, 8, [])[:-4]
    big = body[:5] + b"\xff\xff\x03\xff\xff\x03" + body[7:]  # 65535 x 65535 > MAX_PIXELS
    with pytest.raises(BitstreamError, match="implausible image size 65535x65535"):
        read_container(_recrc(big))
    with pytest.raises(ValueError, match="no container id"):
        write_container("jpeg", 8, 8, 3, 8, [])
    with pytest.raises(ValueError, match="implausible"):
        write_container("coolchic", 0, 8, 3, 8, [])
    with pytest.raises(BitstreamError, match="expected bytes"):
        read_container("NLC")


def test_byte_writer_reader_round_trip():
    w = ByteWriter().uvarint(0).uvarint(300).svarint(-5).svarint(64).fixed("u16", 513)
    w.fixed("f32", 0.25).fixed("i8", -3).blob(b"abc").raw(b"\xff")
    r = ByteReader(w.getvalue(), "test header")
    assert [r.uvarint(), r.uvarint(), r.svarint(), r.svarint(), r.fixed("u16"), r.fixed("f32"),
            r.fixed("i8"), r.blob(), r.raw(1)] == [0, 300, -5, 64, 513, 0.25, -3, b"abc", b"\xff"]
    r.expect_end()
    with pytest.raises(BitstreamError, match="truncated test header"):
        r.fixed("u32")
    with pytest.raises(BitstreamError, match="implausible value 300"):
        ByteReader(ByteWriter().uvarint(300).getvalue()).uvarint(max_value=10)
    with pytest.raises(BitstreamError, match="1 unexpected trailing bytes"):
        ByteReader(b"\x01").expect_end()
    with pytest.raises(ValueError, match="non-negative"):
        ByteWriter().uvarint(-1)


def _read_only_bitstream_errors(data: bytes) -> None:
    start = time.perf_counter()
    try:
        read_container(data)
    except BitstreamError:
        pass
    assert time.perf_counter() - start < 1.0


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    _read_only_bitstream_errors(data)
    _read_only_bitstream_errors(b"NLC\x01" + data)


@_FUZZ
@given(st.data())
def test_fuzz_mutations_of_valid_files(data):
    valid = bytearray(_valid())
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "recrc"]))
    pos = data.draw(st.integers(0, len(valid) - 1))
    if kind == "flip":
        valid[pos] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        valid[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        del valid[pos:pos + data.draw(st.integers(1, 8))]
    elif kind == "truncate":
        del valid[pos:]
    else:  # mutate the header, then fix the checksum so the parser itself is exercised
        valid[min(pos, 15)] = data.draw(st.integers(0, 255))
        valid = bytearray(_recrc(bytes(valid[:-4])))
    _read_only_bitstream_errors(bytes(valid))
