"""Range-coding throughput and efficiency: 1M-symbol Laplace, Gaussian and categorical streams.

    python benchmarks/entropy_coding.py [--symbols 1000000] [--repeats 3] [--output bench_out]

For each stream: encode and decode throughput (M symbols/s, best of ``--repeats``, end to end
through ``nlc_jax.entropy.coding`` including parameter snapping, and for the bare constriction
per-symbol call on the same snapped parameters); the Laplace/Gaussian streams are timed on both
the per-symbol path (``encode``, for autoregressive streams) and the table path
(``encode_tabled``, parameters known before decoding), the ideal size ``-sum(log2 p)`` under the *unsnapped*
float64 model, the size predicted by ``exact_bits`` and the real coded size. Prints a table and
writes ``<output>/entropy_coding.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import constriction
import numpy as np

from nlc_jax.entropy import coding
from nlc_jax.entropy.distributions import numpy_bin_mass
from nlc_jax.machine import machine_facts


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def conditional_stream(family: str, n: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    loc = rng.uniform(-10, 10, n)
    scale = np.exp(rng.uniform(np.log(0.1), np.log(30.0), n))
    noise = rng.laplace(0, 1, n) if family == "laplace" else rng.normal(0, 1, n)
    symbols = np.rint(loc + noise * scale).astype(np.int32)

    def encode():
        enc = coding.ConditionalEncoder(family)
        enc.encode(symbols, loc, scale)
        return enc.finish()

    t_enc, data = _best(encode, repeats)
    t_dec, decoded = _best(lambda: coding.ConditionalDecoder(data, family).decode(loc, scale),
                           repeats)
    assert np.array_equal(decoded, symbols), "round trip failed"
    ideal = -np.log2(numpy_bin_mass(family, symbols - 0.5, symbols + 0.5, loc, scale)).sum()
    # Bare constriction on the same snapped parameters (one support group for the timing).
    s_loc, s_scale = coding.snap_params(family, loc, scale)
    shift = np.floor(s_loc + 0.5)
    model = (constriction.stream.model.QuantizedLaplace if family == "laplace"
             else constriction.stream.model.QuantizedGaussian)(-1023, 1023)
    resid = np.clip(symbols - shift, -1023, 1023).astype(np.int32)
    mean = s_loc - shift

    def bare_encode():
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(resid, model, mean, s_scale)
        return enc.get_compressed()

    t_bare_enc, words = _best(bare_encode, repeats)
    t_bare_dec, _ = _best(
        lambda: constriction.stream.queue.RangeDecoder(words).decode(model, mean, s_scale), repeats)
    per_symbol = _row(f"{family} (per-symbol loc/scale)", n, t_enc, t_dec, t_bare_enc,
                      t_bare_dec, ideal, coding.exact_bits(symbols, loc, scale, family),
                      8 * len(data))

    def encode_tabled():
        enc = coding.ConditionalEncoder(family)
        enc.encode_tabled(symbols, loc, scale)
        return enc.finish()

    t_cold = time.perf_counter()
    encode_tabled()  # first call builds the integer tables (cached afterwards)
    t_cold = time.perf_counter() - t_cold
    t_enc, data = _best(encode_tabled, repeats)
    t_dec, decoded = _best(
        lambda: coding.ConditionalDecoder(data, family).decode_tabled(loc, scale), repeats)
    assert np.array_equal(decoded, symbols), "table-path round trip failed"
    tabled = _row(f"{family} (table path)", n, t_enc, t_dec, t_bare_enc, t_bare_dec, ideal,
                  coding.table_exact_bits(symbols, loc, scale, family), 8 * len(data))
    tabled["first_encode_seconds_with_table_build"] = t_cold
    return [per_symbol, tabled]


def categorical_stream(n: int, k: int, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(k, 0.5), size=n).astype(np.float32)
    symbols = (probs.cumsum(1) < rng.uniform(size=(n, 1))).sum(1).clip(0, k - 1).astype(np.int32)
    t_enc, data = _best(lambda: coding.encode_categorical(symbols, probs), repeats)
    t_dec, decoded = _best(lambda: coding.decode_categorical(data, probs), repeats)
    assert np.array_equal(decoded, symbols), "round trip failed"
    ideal = -np.log2(probs[np.arange(n), symbols].astype(np.float64)).sum()
    counts = coding.snap_probabilities(probs)
    family = constriction.stream.model.Categorical(perfect=False)

    def bare_encode():
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(symbols, family, counts)
        return enc.get_compressed()

    t_bare_enc, words = _best(bare_encode, repeats)
    t_bare_dec, _ = _best(
        lambda: constriction.stream.queue.RangeDecoder(words).decode(family, counts), repeats)
    return _row(f"categorical K={k} (per-symbol probs)", n, t_enc, t_dec, t_bare_enc, t_bare_dec,
                ideal, coding.categorical_exact_bits(symbols, probs), 8 * len(data))


def _row(name, n, t_enc, t_dec, t_bare_enc, t_bare_dec, ideal, exact, coded) -> dict:
    return {"stream": name, "symbols": n,
            "encode_msym_s": n / t_enc / 1e6, "decode_msym_s": n / t_dec / 1e6,
            "bare_encode_msym_s": n / t_bare_enc / 1e6, "bare_decode_msym_s": n / t_bare_dec / 1e6,
            "ideal_bits": float(ideal), "exact_bits": float(exact), "coded_bits": int(coded),
            "overhead_vs_ideal_pct": 100.0 * (coded - ideal) / ideal,
            "coded_minus_exact_bits": float(coded - exact)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="bench_out")
    args = parser.parse_args()
    rows = [*conditional_stream("laplace", args.symbols, args.repeats),
            *conditional_stream("gaussian", args.symbols, args.repeats),
            categorical_stream(args.symbols, 16, args.repeats)]
    print(f"{'stream':<36} {'enc M/s':>8} {'dec M/s':>8} {'bare enc':>9} {'bare dec':>9} "
          f"{'ideal B':>10} {'coded B':>10} {'vs ideal':>9} {'coded-exact b':>14}")
    for r in rows:
        print(f"{r['stream']:<36} {r['encode_msym_s']:>8.2f} {r['decode_msym_s']:>8.2f} "
              f"{r['bare_encode_msym_s']:>9.2f} {r['bare_decode_msym_s']:>9.2f} "
              f"{r['ideal_bits'] / 8:>10.0f} {r['coded_bits'] / 8:>10.0f} "
              f"{r['overhead_vs_ideal_pct']:>8.3f}% {r['coded_minus_exact_bits']:>14.1f}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    meta = machine_facts()
    (out / "entropy_coding.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"load average {meta['load_average'][0]:.1f} on {meta['cores']} CPUs; "
          f"wrote {out / 'entropy_coding.json'}")


if __name__ == "__main__":
    main()
