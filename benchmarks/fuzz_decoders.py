"""Fuzz every codec's decoder with mutated real files (``nlc_jax.fuzz``).

    python benchmarks/fuzz_decoders.py [--codecs coolchic,clric,noise2latent,hyperprior,glc,rvdiff]
        [--count 100000] [--budget_s 900] [--sweep] [--seed 0] [--corpus DIR]
        [--time_limit_s 30] [--time_per_mpx_s 120] [--memory_limit_mib 1024]
        [--output fuzz_out]

Per codec: ``--count`` random mutations of its sample file (kinds and checksum modes in turn;
``--sweep`` adds truncation at every length in both modes), each decoded by a bounded worker
process, stopping after ``--budget_s`` seconds per codec. The corpus (tiny real files, see
``nlc_jax/fuzz/samples.py``) is ``--corpus`` or, by default, the test fixtures in
``tests/fixtures/fuzz``. Prints a table of outcomes per checksum mode, saves failing files under
``<output>/failures`` and writes ``<output>/fuzz_decoders.json``. Exit status 1 if any file
failed (a crash, hang, memory overrun, worker death, or a wrong image behind a valid checksum).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from nlc_jax.fuzz.campaign import CRC_MODES, OUTCOMES, Limits, run_campaign  # noqa: E402
from nlc_jax.fuzz.samples import CODECS  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fuzz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--budget_s", type=float, default=None)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=FIXTURES)
    parser.add_argument("--time_limit_s", type=float, default=30.0)
    parser.add_argument("--memory_limit_mib", type=float, default=1024.0)
    parser.add_argument("--time_per_mpx_s", type=float, default=120.0,
                        help="added to --time_limit_s per megapixel a file declares")
    parser.add_argument("--output", type=Path, default=Path("fuzz_out"))
    args = parser.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    unknown = sorted(set(codecs) - set(CODECS))
    if unknown or args.count < 0:
        parser.error(f"unknown codec(s) {', '.join(unknown)}" if unknown else "--count < 0")
    try:
        limits = Limits(args.time_limit_s, args.memory_limit_mib, args.time_per_mpx_s)
    except ValueError as err:
        parser.error(str(err))
    failures = args.output / "failures"
    failures.mkdir(parents=True, exist_ok=True)
    results = []
    print(f"{'codec':13} {'checksum':15} {'files':>7} " + " ".join(f"{o:>8}" for o in OUTCOMES)
          + f" {'max s':>6} {'max MiB':>7}")
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "count": args.count, "budget_s": args.budget_s, "sweep": args.sweep,
            "seed": args.seed, "limits": dataclasses.asdict(limits)}

    def report(tally) -> None:  # each codec as soon as it is done, so a long run keeps its counts
        results.append(tally.as_json())
        for mode in CRC_MODES.values():
            counts = tally.by(mode)
            print(f"{tally.codec:13} {mode:15} {sum(counts.values()):7d} "
                  + " ".join(f"{counts[o]:8d}" for o in OUTCOMES)
                  + f" {tally.max_decode_s:6.2f} {tally.max_memory_mib:7.1f}", flush=True)
        for failure in tally.failures:
            print(f"  FAILED {failure}", flush=True)
        (args.output / "fuzz_decoders.json").write_text(
            json.dumps({**meta, "codecs": results}, indent=1))

    run_campaign(args.corpus, codecs, args.count, seed=args.seed, sweep=args.sweep,
                 limits=limits, budget_s=args.budget_s, failures_dir=failures, report=report)
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
