"""Decode the same files under other threading / BLAS / XLA settings of this CPU, against the
encoder's reconstruction.

    python benchmarks/cross_machine_decode.py [--size 96,96] [--corpus DIR] [--settings A,B]
        [--output xm_out]

Writes one file per codec (``nlc_jax.fuzz.samples``, ``--size`` pixels, or the existing corpus
``--corpus``), then decodes every file in a fresh process per setting of :data:`SETTINGS`
(thread counts of OpenMP / OpenBLAS / MKL, OpenBLAS kernels of other CPUs forced with
``OPENBLAS_CORETYPE``, XLA's thread pool and optimisation level) and compares each decoded image
with the encoder's reconstruction: identical, or how many pixels differ and by how much. Prints a
table and writes ``<output>/cross_machine_decode.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: name -> environment changes (values of None remove the variable)
SETTINGS: dict[str, dict[str, str | None]] = {
    "default": {},
    "1 thread": {**dict.fromkeys(_THREAD_VARS, "1"),
                 "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false "
                              "intra_op_parallelism_threads=1"},
    "8 threads": dict.fromkeys(_THREAD_VARS, "8"),
    "OpenBLAS Sandybridge (AVX)": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "OpenBLAS Nehalem (SSE4)": {"OPENBLAS_CORETYPE": "Nehalem"},
    "OpenBLAS Prescott (SSE3)": {"OPENBLAS_CORETYPE": "Prescott"},
    "XLA -O0 without expensive passes": {
        "XLA_FLAGS": "--xla_backend_optimization_level=0 "
                     "--xla_llvm_disable_expensive_passes=true"},
}


def settings_env(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment without any thread / BLAS / XLA setting, then ``changes``."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*_THREAD_VARS, "OPENBLAS_CORETYPE", "XLA_FLAGS")}
    env.update({k: v for k, v in changes.items() if v is not None})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    return env


def _child(corpus: Path, out: Path) -> None:
    """Decode every ``<codec>.nlc`` of ``corpus`` into ``<out>/<codec>.npy``."""
    from nlc_jax.codecs import registry
    from nlc_jax.fuzz.samples import corpus_decoders

    decoders = corpus_decoders(corpus)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(corpus.glob("*.nlc")):
        np.save(out / f"{path.stem}.npy", registry.decode_bytes(path.read_bytes(),
                                                                decoders=decoders))


def compare(corpus: Path, work: Path, settings: list[str]) -> list[dict]:
    """Per setting (names of :data:`SETTINGS`) and codec: values differing from the encoder's
    reconstruction, max |diff|."""
    rows = []
    for name in settings:
        changes = SETTINGS[name]
        out = work / name.replace(" ", "_").replace("(", "").replace(")", "")
        subprocess.run([sys.executable, __file__, "--child", str(corpus), str(out)],
                       env=settings_env(changes), check=True)
        for path in sorted(corpus.glob("*.nlc")):
            want = np.load(corpus / f"{path.stem}.npy").astype(np.int16)
            got = np.load(out / f"{path.stem}.npy").astype(np.int16)
            diff = np.abs(got - want)
            rows.append({"setting": name, "codec": path.stem, "pixels": int(want[..., 0].size),
                         "differing_values": int((diff > 0).sum()),
                         "max_abs_diff": int(diff.max())})
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="96,96", help="height,width of the written files")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="decode this corpus instead of writing one")
    parser.add_argument("--output", type=Path, default=Path("xm_out"))
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="comma-separated names of SETTINGS (default: all)")
    args = parser.parse_args(argv)
    settings = [s for s in args.settings.split(",") if s]
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    corpus = args.corpus
    if corpus is None:
        from nlc_jax.fuzz.samples import make_corpus

        try:
            size = tuple(int(v) for v in args.size.split(","))
        except ValueError:
            size = ()
        if len(size) != 2 or min(size) < 1:
            parser.error(f"--size must be height,width, got {args.size!r}")
        corpus = args.output / "corpus"
        make_corpus(corpus, size=size)
    rows = compare(corpus, args.output / "decoded", settings)
    print(f"{'setting':30} {'codec':13} {'pixels':>7} {'differing':>9} {'max |diff|':>10}")
    for r in rows:
        print(f"{r['setting']:30} {r['codec']:13} {r['pixels']:7d} {r['differing_values']:9d} "
              f"{r['max_abs_diff']:10d}")
    meta = {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "corpus": str(corpus)}
    (args.output / "cross_machine_decode.json").write_text(
        json.dumps({**meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
