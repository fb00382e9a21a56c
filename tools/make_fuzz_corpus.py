"""Write the fuzzing corpus (``nlc_jax.fuzz.samples``): one tiny real file of every codec, its
encoder's reconstruction and the trained codecs' models, into ``tests/fixtures/fuzz`` (or a
folder).

    python tools/make_fuzz_corpus.py [folder] [--codecs glc,rvdiff]

Rerun it when a codec's file format changes (``tests/test_fuzz_decoders.py`` then says so),
for that codec only (``--codecs``): the other files keep their bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from nlc_jax.fuzz.samples import CODECS, MODELS, make_corpus  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fuzz"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=FIXTURES)
    parser.add_argument("--codecs", default=",".join(CODECS),
                        help=f"comma-separated, of {','.join(CODECS)} (default: all)")
    args = parser.parse_args(argv)
    codecs = tuple(c for c in args.codecs.split(",") if c)
    unknown = sorted(set(codecs) - set(CODECS))
    if unknown:
        parser.error(f"unknown codec(s) {', '.join(unknown)}")
    for codec in codecs:
        if codec in MODELS:
            shutil.rmtree(args.folder / MODELS[codec], ignore_errors=True)
    for name, path in make_corpus(args.folder, codecs).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
