"""Write the fuzzing corpus (``nlc_jax.fuzz.samples``): one tiny real file of every codec, its
encoder's reconstruction and the hyperprior model, into ``tests/fixtures/fuzz`` (or a folder).

    python tools/make_fuzz_corpus.py [folder]

Rerun it when a codec's file format changes (``tests/test_fuzz_decoders.py`` then says so).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from nlc_jax.fuzz.samples import HYPERPRIOR_MODEL, make_corpus  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fuzz"

if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES
    shutil.rmtree(folder / HYPERPRIOR_MODEL, ignore_errors=True)
    for name, path in make_corpus(folder).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
