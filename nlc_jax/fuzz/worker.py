"""The decoding side of the fuzzer: ``python -m nlc_jax.fuzz.worker <corpus>``, a subprocess that
decodes the files its supervisor (:mod:`nlc_jax.fuzz.campaign`) sends and says what happened, so
that a hang, a runaway allocation or a hard crash costs a restart, not the campaign.

Protocol on stdin/stdout (binary): the worker writes ``READY`` and a newline once its decoders
are built; then each request is a 4-byte little-endian length and the file's bytes, each answer
one JSON line ``{"outcome": "decoded" | "error" | "crash", "type", "message", "digest",
"shape", "seconds", "maxrss_kb"}``: ``error`` is a :class:`~nlc_jax.bitstream.BitstreamError`,
``crash`` any other exception, ``digest`` a SHA-256 of the decoded pixels. Length
``0xFFFFFFFF`` ends it. Anything the decoders print goes to stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time

READY = b"READY\n"
QUIT = 0xFFFFFFFF


def image_digest(image) -> str:
    """SHA-256 of a decoded image's shape, dtype and pixels."""
    import numpy as np

    a = np.ascontiguousarray(image)
    return hashlib.sha256(f"{a.shape}{a.dtype}".encode() + a.tobytes()).hexdigest()


def _answer(data: bytes, decoders) -> dict:
    from nlc_jax.bitstream.errors import BitstreamError
    from nlc_jax.codecs import registry

    start = time.perf_counter()
    answer: dict = {"outcome": "decoded", "type": "", "message": "", "digest": "", "shape": []}
    try:
        image = registry.decode_bytes(data, decoders=decoders)
        answer["digest"], answer["shape"] = image_digest(image), list(image.shape)
    except BitstreamError as err:
        answer.update(outcome="error", type=type(err).__name__, message=str(err))
    except Exception as err:  # noqa: BLE001 - what the fuzzer exists to find
        answer.update(outcome="crash", type=type(err).__name__, message=str(err)[:500])
    answer["seconds"] = time.perf_counter() - start
    answer["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return answer


def _read_exact(stream, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m nlc_jax.fuzz.worker <corpus folder>", file=sys.stderr)
        return 2
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # decoders' prints go to stderr
    from nlc_jax.fuzz.samples import corpus_decoders

    decoders = corpus_decoders(argv[0])
    protocol.write(READY)
    requests = sys.stdin.buffer
    while True:
        try:
            n = int.from_bytes(_read_exact(requests, 4), "little")
            if n == QUIT:
                return 0
            data = _read_exact(requests, n)
        except EOFError:
            return 0
        protocol.write(json.dumps(_answer(data, decoders)).encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
