"""Fuzzing campaigns: mutated files of each codec decoded in a bounded worker, outcomes counted.

Per codec, a campaign decodes the truncations of its sample at every length (optional) and then
random mutations (:mod:`nlc_jax.bitstream.mutations`), alternating the kinds and the two checksum
modes, each decoded by a :class:`Worker` subprocess under a time limit and a memory limit. Each
file's outcome is one of :data:`OUTCOMES`:

* ``error``: one :class:`~nlc_jax.bitstream.BitstreamError` (the library's error type);
* ``same``: decoded to exactly the encoder's reconstruction of the original;
* ``other``: decoded to another image, the checksum having been recomputed (a valid file);
* failures (:data:`FAILURES`): ``wrong`` (another image although the original checksum guards
  the file: silent corruption), ``crash`` (any other exception), ``hang`` (over the time
  limit, which grows with the pixels the file declares: :class:`Limits`), ``memory`` (peak memory over the limit above the warm worker's), ``died`` (the worker
  process ended, e.g. a segfault).

A mutation that leaves the file unchanged is counted as ``identity`` and not decoded.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from nlc_jax.bitstream.container import read_container
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.bitstream.mutations import KINDS, mutate, truncated
from nlc_jax.fuzz.worker import QUIT, READY, image_digest

OUTCOMES = ("error", "same", "other", "wrong", "crash", "hang", "memory", "died", "identity")
FAILURES = frozenset({"wrong", "crash", "hang", "memory", "died"})
CRC_MODES = {False: "crc_kept", True: "crc_recomputed"}
SWEEP = "truncate_every_length"
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_STARTUP_S = 1200.0  # a loaded machine may take minutes to import jax and compile


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds on one decode: wall-clock seconds (``seconds`` plus ``seconds_per_mpx`` per
    megapixel the container declares: a forged header may legitimately ask for a large image,
    up to ``NLC_MAX_PIXELS``, and decoding time grows with it), and MiB of peak memory above the
    worker's peak after decoding the valid samples."""

    seconds: float = 30.0
    memory_mib: float = 1024.0
    seconds_per_mpx: float = 120.0

    def __post_init__(self):
        if not (self.seconds > 0 and self.memory_mib > 0 and self.seconds_per_mpx >= 0):
            raise ValueError(f"fuzz limits must be > 0, got {self}")

    def for_file(self, data: bytes) -> float:
        """The time limit of decoding ``data`` (seconds)."""
        try:
            c = read_container(data)
        except BitstreamError:
            return self.seconds
        return self.seconds + self.seconds_per_mpx * c.height * c.width / 1e6


class Worker:
    """A :mod:`nlc_jax.fuzz.worker` subprocess, restarted after each hang, memory overrun or
    death; ``env`` replaces its environment (default: this process's)."""

    def __init__(self, corpus: Path, limits: Limits, log: Path, warmup: list[bytes],
                 env: dict[str, str] | None = None):
        self.corpus, self.limits, self.log, self.warmup = Path(corpus), limits, Path(log), warmup
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.baseline_kb = 0
        self.restarts = 0

    def _start(self) -> None:
        env = dict(self.env if self.env is not None else os.environ)
        env.setdefault("JAX_PLATFORMS", "cpu")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nlc_jax.fuzz.worker", str(self.corpus)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        self._buffer = b""
        line = self._line(_STARTUP_S)
        if line != READY.strip():
            self.close()
            raise RuntimeError(f"fuzz worker did not start (see {self.log})")
        self.baseline_kb = 0
        for data in self.warmup:  # compile and allocate what valid files need
            answer = self._request(data, _STARTUP_S)
            if answer.get("outcome") != "decoded":
                self.close()
                raise RuntimeError(f"fuzz worker cannot decode a valid sample: {answer}")
            self.baseline_kb = answer["maxrss_kb"]

    def _rss_kb(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * _PAGE_KB
        except OSError:
            return 0

    def _line(self, timeout: float) -> bytes | None:
        """The next answer line; ``None`` on timeout, b"" if the worker ended, b"memory" if it
        went over twice the memory limit while working (it is killed)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        hard_kb = self.baseline_kb + 2 * self.limits.memory_mib * 1024
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 0.05))
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b""
                self._buffer += chunk
            elif self.baseline_kb and self._rss_kb() > hard_kb:
                return b"memory"
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _request(self, data: bytes, timeout: float) -> dict:
        try:
            self.proc.stdin.write(len(data).to_bytes(4, "little") + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"outcome": "died", "message": "worker gone"}
        line = self._line(timeout)
        if line is None:
            return {"outcome": "hang", "message": f"no answer in {timeout:g} s"}
        if line == b"memory":
            return {"outcome": "memory", "message": "over twice the memory limit (killed)"}
        if not line:
            return {"outcome": "died", "message": f"worker exit status {self.proc.wait()}"}
        return json.loads(line)

    def decode(self, data: bytes) -> dict:
        """The worker's answer for ``data`` (see :mod:`nlc_jax.fuzz.worker`), or ``hang``,
        ``memory`` or ``died``; the worker is restarted after those."""
        if self.proc is None:
            self._start()
        answer = self._request(data, self.limits.for_file(data))
        over_kb = answer.get("maxrss_kb", 0) - self.baseline_kb
        if answer["outcome"] in ("decoded", "error", "crash") and \
                over_kb > self.limits.memory_mib * 1024:
            answer = {**answer, "outcome": "memory",
                      "message": f"peak memory {over_kb / 1024:.0f} MiB over the warm worker's"}
        if answer["outcome"] in ("hang", "memory", "died"):
            self.close()
            self.restarts += 1
        return answer

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(QUIT.to_bytes(4, "little"))
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def classify(answer: dict, reference: str, recompute_crc: bool) -> str:
    """The outcome (:data:`OUTCOMES`) of a worker's answer for a mutated file whose original
    decodes to digest ``reference``."""
    if answer["outcome"] != "decoded":
        return answer["outcome"]
    if answer["digest"] == reference:
        return "same"
    return "other" if recompute_crc else "wrong"


def mutations(data: bytes, count: int, seed: int, sweep: bool) -> Iterator[tuple[str, bool,
                                                                                  bytes]]:
    """``(kind, recompute_crc, mutated bytes)``: with ``sweep`` the truncations of ``data`` at
    every length in both checksum modes first (``2 * len(data)`` files), then ``count`` random
    mutations, kinds and checksum modes in turn, file ``i`` from seed ``(seed, i)``."""
    if sweep:
        for length in range(len(data)):
            for recompute in (False, True):
                yield SWEEP, recompute, truncated(data, length, recompute)
    for i in range(count):
        kind, recompute = KINDS[i % len(KINDS)], bool((i // len(KINDS)) % 2)
        yield kind, recompute, mutate(data, kind, np.random.default_rng([seed, i]), recompute)


@dataclasses.dataclass
class Tally:
    """What a campaign found for one codec."""

    codec: str
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    failures: list[dict] = dataclasses.field(default_factory=list)
    max_decode_s: float = 0.0
    max_memory_mib: float = 0.0
    restarts: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(n for (_, _, outcome), n in self.counts.items() if outcome in FAILURES)

    def by(self, crc_mode: str) -> collections.Counter:
        """Outcome counts of one checksum mode (:data:`CRC_MODES` values)."""
        out: collections.Counter = collections.Counter()
        for (mode, _, outcome), n in self.counts.items():
            if mode == crc_mode:
                out[outcome] += n
        return out

    def as_json(self) -> dict:
        return {"codec": self.codec, "files": self.files, "failed": self.failed,
                "counts": {f"{m}/{k}/{o}": n for (m, k, o), n in sorted(self.counts.items())},
                "failures": self.failures, "max_decode_s": self.max_decode_s,
                "max_memory_mib": self.max_memory_mib, "restarts": self.restarts,
                "seconds": self.seconds}


def _fuzz_codec(worker: Worker, corpus: Path, codec: str, count: int, seed: int, sweep: bool,
                budget_s: float | None, failures_dir: Path | None, max_failures: int) -> Tally:
    data = (corpus / f"{codec}.nlc").read_bytes()
    reference = image_digest(np.load(corpus / f"{codec}.npy"))
    tally = Tally(codec)
    start, restarts = time.monotonic(), worker.restarts
    for i, (kind, recompute, mutated) in enumerate(mutations(data, count, seed, sweep)):
        if budget_s is not None and time.monotonic() - start > budget_s:
            break
        mode = CRC_MODES[recompute]
        if mutated == data:
            tally.counts[mode, kind, "identity"] += 1
            continue
        answer = worker.decode(mutated)
        outcome = classify(answer, reference, recompute)
        tally.counts[mode, kind, outcome] += 1
        tally.max_decode_s = max(tally.max_decode_s, answer.get("seconds", 0.0))
        if worker.baseline_kb and "maxrss_kb" in answer:
            tally.max_memory_mib = max(tally.max_memory_mib,
                                       (answer["maxrss_kb"] - worker.baseline_kb) / 1024)
        if outcome in FAILURES and len(tally.failures) < max_failures:
            record = {"index": i, "kind": kind, "crc": mode, "outcome": outcome,
                      "type": answer.get("type", ""), "message": answer.get("message", "")}
            if failures_dir is not None:
                path = failures_dir / f"{codec}-{i}-{kind}-{mode}.nlc"
                path.write_bytes(mutated)
                record["file"] = str(path)
            tally.failures.append(record)
    tally.restarts = worker.restarts - restarts
    tally.seconds = time.monotonic() - start
    return tally


def run_campaign(corpus: str | Path, codecs: Sequence[str], count: int, *, seed: int = 0,
                 sweep: bool = False, limits: Limits = Limits(), budget_s: float | None = None,
                 failures_dir: str | Path | None = None, max_failures: int = 20,
                 report: Callable[[Tally], None] | None = None) -> list[Tally]:
    """Fuzz each codec's sample ``<corpus>/<codec>.nlc`` (``nlc_jax.fuzz.samples``) through one
    worker: ``count`` random mutations (and with ``sweep`` its truncations at every length) per
    codec, a codec stopping early after ``budget_s`` seconds.

    Failing files are saved to ``failures_dir`` (when given; also the worker's log) and listed,
    up to ``max_failures`` per codec; ``report`` is called with each codec's tally as soon as it
    is done.
    """
    corpus = Path(corpus)
    failures = Path(failures_dir) if failures_dir is not None else None
    log = (failures or corpus) / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker = Worker(corpus, limits, log, [(corpus / f"{c}.nlc").read_bytes() for c in codecs])
    tallies = []
    try:
        for codec in codecs:
            tallies.append(_fuzz_codec(worker, corpus, codec, count, seed, sweep, budget_s,
                                       failures, max_failures))
            if report is not None:
                report(tallies[-1])
        return tallies
    finally:
        worker.close()
