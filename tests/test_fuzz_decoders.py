"""Fuzzed decoders of every codec (issue 22): the mutations, a short campaign per codec through
the bounded worker, the worker's time limit, and mutated files through ``decode.py``. The long
campaign is ``benchmarks/fuzz_decoders.py`` (figures in docs/reliability.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nlc_jax.bitstream import BitstreamError
from nlc_jax.bitstream.container import read_container
from nlc_jax.bitstream.mutations import KINDS, mutate, truncated
from nlc_jax.codecs import registry
from nlc_jax.fuzz.campaign import CRC_MODES, SWEEP, Limits, Worker, classify, run_campaign
from nlc_jax.fuzz.samples import CODECS, corpus_decoders

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "fuzz"


def _sample(codec: str) -> bytes:
    return (CORPUS / f"{codec}.nlc").read_bytes()


def _crc_ok(data: bytes) -> bool:
    return len(data) >= 4 and zlib.crc32(data[:-4]) == int.from_bytes(data[-4:], "little")


def test_corpus_decodes_to_the_encoders_reconstruction():
    """If this fails, a codec's format changed: rerun tools/make_fuzz_corpus.py."""
    decoders = corpus_decoders(CORPUS)
    for codec in CODECS:
        assert read_container(_sample(codec)).codec == codec
        np.testing.assert_array_equal(registry.decode_bytes(_sample(codec), decoders=decoders),
                                      np.load(CORPUS / f"{codec}.npy"), err_msg=codec)


@pytest.mark.parametrize("codec", CODECS)
def test_mutations_damage_files_as_their_kind_says(codec):
    data = _sample(codec)
    for kind in KINDS:
        kept = [mutate(data, kind, np.random.default_rng([1, i]), False) for i in range(20)]
        recomputed = [mutate(data, kind, np.random.default_rng([1, i]), True) for i in range(20)]
        assert kept == [mutate(data, kind, np.random.default_rng([1, i]), False)
                        for i in range(20)]  # deterministic
        assert sum(m != data for m in kept) >= 15, kind
        assert all(_crc_ok(m) for m in recomputed), kind  # a hostile file's checksum is valid
        if kind not in ("bitflip", "truncate", "append"):
            assert all(m[-4:] == data[-4:] for m in kept), kind  # the old checksum is kept
    assert truncated(data, 7, False) == data[:7]
    assert _crc_ok(truncated(data, 7, True)) and truncated(data, 7, True)[:7] == data[:7]
    with pytest.raises(ValueError, match="unknown mutation kind"):
        mutate(data, "nope", np.random.default_rng(0), False)
    with pytest.raises(BitstreamError):
        mutate(data[:-1], "bitflip", np.random.default_rng(0), False)


def test_time_limit_grows_with_the_declared_size():
    limits = Limits(seconds=10.0, seconds_per_mpx=100.0)
    assert limits.for_file(_sample("coolchic")) == pytest.approx(10.0 + 100.0 * 99 / 1e6)
    assert limits.for_file(b"garbage") == 10.0
    with pytest.raises(ValueError, match="> 0"):
        Limits(seconds=0.0)


def test_classify():
    decoded = {"outcome": "decoded", "digest": "a"}
    assert classify(decoded, "a", False) == "same" == classify(decoded, "a", True)
    assert classify(decoded, "b", False) == "wrong"  # the checksum should have caught it
    assert classify(decoded, "b", True) == "other"
    assert classify({"outcome": "crash"}, "a", True) == "crash"


def test_short_campaign_every_codec_every_kind(tmp_path):
    """Each sample truncated at every length, and 7 mutations per kind and checksum mode: only
    BitstreamError, the original image or (recomputed checksum) another valid image; no crash,
    hang, memory overrun or silent corruption."""
    count = 7 * 2 * len(KINDS)
    tallies = run_campaign(CORPUS, CODECS, count, seed=22, sweep=True,
                           limits=Limits(seconds=60.0), failures_dir=tmp_path)
    for tally in tallies:
        assert tally.failed == 0, tally.failures
        assert tally.files == count + 2 * len(_sample(tally.codec))
        assert {kind for (_, kind, _) in tally.counts} == {*KINDS, SWEEP}, tally.codec
        kept, recomputed = tally.by(CRC_MODES[False]), tally.by(CRC_MODES[True])
        assert set(kept) <= {"error", "identity", "same"}, kept
        assert kept["error"] > 0 and recomputed["error"] > 0
        assert recomputed["other"] > 0, (tally.codec, recomputed)  # the decoders were reached
        assert tally.max_memory_mib < Limits().memory_mib


def test_worker_over_the_time_limit_is_a_hang_and_restarts(tmp_path):
    data = _sample("coolchic")
    limits = Limits(seconds=1e-4, seconds_per_mpx=0.0)
    worker = Worker(CORPUS, limits, tmp_path / "worker.log", warmup=[data])
    try:
        answer = worker.decode(mutate(data, "payload_bytes", np.random.default_rng(0), True))
        assert answer["outcome"] == "hang" and worker.restarts == 1 and worker.proc is None
    finally:
        worker.close()


def test_decode_cli_mutated_files_one_line_each(tmp_path):
    """Mutated files of every codec through decode.py: each bad one is one line on stderr, the
    others decode, the exit status is 1 and no traceback is printed."""
    src = tmp_path / "in"
    src.mkdir()
    names = []
    for codec in CODECS:
        data = _sample(codec)
        for i, kind in enumerate(KINDS):
            for recompute in (False, True):
                name = f"{codec}-{kind}-{int(recompute)}.nlc"
                (src / name).write_bytes(mutate(data, kind, np.random.default_rng([3, i]),
                                                recompute))
                names.append(name)
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "decode.py"), str(src), "--output",
                           str(tmp_path / "out"), "--checkpoint",
                           str(CORPUS / "hyperprior_model")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert all(e.startswith(f"decode.py: {src}/") and e.count(": ") >= 2 for e in errors), errors
    failed = {Path(e.split(": ")[1]).name for e in errors}
    decoded = {p.stem + ".nlc" for p in (tmp_path / "out").glob("*.png")}
    assert len(errors) == len(failed) and failed | decoded == set(names)
    assert not failed & decoded and "clric-bitflip-1.nlc" in failed  # no taesd weights here
    for name in decoded:  # a file behind its original checksum decodes to the original or fails
        png = np.asarray(Image.open(tmp_path / "out" / f"{name[:-4]}.png"))
        assert name.endswith("-1.nlc") or np.array_equal(
            png, np.load(CORPUS / f"{name.split('-')[0]}.npy")), name


def test_files_the_fuzzer_found_raise_bitstream_error():
    """Each file in fixtures/fuzz/found crashed a decoder once (see docs/reliability.md)."""
    found = sorted((CORPUS / "found").glob("*.nlc"))
    assert found
    decoders = corpus_decoders(CORPUS)
    for path in found:
        with pytest.raises(BitstreamError):
            registry.decode_bytes(path.read_bytes(), decoders=decoders)
