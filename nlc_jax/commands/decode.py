"""``nlc-decode`` (and ``decode.py`` in a checkout): decode ``.nlc`` files to PNG:
``nlc-decode <file.nlc | directory> --output <png | dir>``.

The codec is the one named inside each file (``nlc_jax.codecs.registry``); learned codecs
(hyperprior) also need the trained model that wrote the file: ``--checkpoint <training workdir or
its export/ folder>`` (``--config.checkpoint=…``, as in ``nlc-encode``, works too; in Python:
``nlc_jax.decode(data, checkpoint=...)``). A corrupt,
truncated, unreadable or oversized file, or one whose model is missing, prints one line and the
batch goes on; the exit status is 1 if any failed, 2 for bad arguments (one line).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.bitstream.limits import max_pixels
from nlc_jax.cli import fail, make_folder, program_name
from nlc_jax.data.images import save_png

PROGRAM = "nlc-decode"  # the name in error lines (set by main)


def _jobs(source: Path, output: Path) -> list[tuple[Path, Path]]:
    """(input file, output PNG) pairs; creates the output folder."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix == ".nlc" and p.is_file())
        if not files:
            fail(PROGRAM, f"no .nlc files in {source}")
        if output.suffix.lower() == ".png":
            fail(PROGRAM, "--output must be a directory when decoding a directory")
        make_folder(PROGRAM, "output", str(output))
        return [(f, output / f"{f.stem}.png") for f in files]
    if output.suffix.lower() == ".png":
        make_folder(PROGRAM, "output", str(output.parent))
        return [(source, output)]
    make_folder(PROGRAM, "output", str(output))
    return [(source, output / f"{source.stem}.png")]


def main(argv: list[str] | None = None, program: str | None = None) -> int:
    """Run the command on ``argv`` (default ``sys.argv[1:]``); returns the exit status.
    ``program`` names the command in messages (default: the running script's name)."""
    global PROGRAM
    PROGRAM = program or program_name()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # decoders are deterministic numpy + CPU JAX
    from nlc_jax.api import decode

    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help=".nlc file or directory of .nlc files")
    parser.add_argument("--output", type=Path, required=True, help="PNG file or directory")
    parser.add_argument("--checkpoint", "--config.checkpoint", default=None,
                        help="trained model of learned-codec files (training workdir or export/)")
    args = parser.parse_args(argv)
    try:
        max_pixels()
    except ValueError as err:
        fail(PROGRAM, str(err))
    failed = 0
    for src, dst in _jobs(args.input, args.output):
        start = time.perf_counter()
        try:
            image = decode(src.read_bytes(), checkpoint=args.checkpoint)
            save_png(dst, image)
        except (BitstreamError, OSError, MemoryError) as err:
            reason = str(err) or "out of memory while decoding"
            print(f"{PROGRAM}: {src}: {reason}", file=sys.stderr)
            failed += 1
            continue
        h, w = image.shape[:2]
        print(f"{src} -> {dst} ({w}x{h}, {time.perf_counter() - start:.2f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
