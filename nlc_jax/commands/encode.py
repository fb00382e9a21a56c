"""``nlc-encode`` (and ``encode.py`` in a checkout): encode images (or a whole dataset) to
``.nlc`` files.

    nlc-encode --config coolchic:fast --input ../shared/data/kodak \\
        --output out/ [--batch_size 8] [--lmbdas 0.0001,0.0004,0.001,0.004] [--config.lmbda=…]

``--config`` is a shipped config (``coolchic:fast``, ``configs/coolchic.py:fast``) or a path to
your own config file (``my_config.py:preset``).

``--input`` is a file, a directory, a glob, or ``tfds:<name>[:split]``. Overfitted codecs are fitted
many at once by ``nlc_jax.fit`` (shape buckets, λ sweep, checkpoints in ``<output>/.inflight``;
rerunning the same command resumes and skips finished images); learned codecs encode image by
image. Writes ``<output>/<stem>.nlc`` (``<stem>_lmbda<λ>.nlc`` in a sweep) and appends
``results.tsv`` (image, lmbda, bpp, psnr_db, encode_s, mac_per_pixel, batch_id, device).
Inputs whose file stems clash (``dup.png``, ``dup.jpg``) are named by their file names
(``dup.png.nlc``, ``dup.jpg.nlc``). Exit status: 0 when everything was encoded; 1 when some inputs
failed or were refused (each has one ``error:`` line: unreadable, too large, a duplicate name; the
others are encoded); 2 for bad flags/config/input specs (one ``<program>: error:`` line).
Multi-host: ``--distributed`` calls ``jax.distributed.initialize()``; each process encodes a
disjoint, deterministic share of the inputs.
"""

from __future__ import annotations

import math
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from nlc_jax import cli
from nlc_jax.bitstream.limits import max_pixels

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Codec config: <name>[:preset] or path[:preset].")
flags.DEFINE_string("input", None, "Image file, directory, glob, or tfds:<name>[:split].")
flags.DEFINE_string("output", None, "Output directory.")
flags.DEFINE_integer("batch_size", 8, "Fits (image × λ) per batch (overfitted codecs).")
flags.DEFINE_list("lmbdas", [], "Rate points to sweep; default: the config's lmbda.")
flags.DEFINE_integer("seed", 0, "Base seed of the fits.")
flags.DEFINE_integer("bucket_multiple", 64, "Pad target sides up to a multiple of this.")
flags.DEFINE_integer("chunk_steps", 50, "Optimisation steps per device call.")
flags.DEFINE_integer("patience", 0, "Early stopping: evaluations without improvement (0: off).")
flags.DEFINE_float("checkpoint_every", 60.0, "Seconds between checkpoints (<= 0: never).")
flags.DEFINE_string("tfds_data_dir", None, "TensorFlow Datasets data_dir (tfds inputs).")
flags.DEFINE_bool("progress", True, "Show progress bars.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host).")
flags.mark_flags_as_required(["config", "input", "output"])




def _fail(message: str) -> None:
    cli.fail(cli.current_program(), message)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.is_parsed() or FLAGS["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)  # keep orbax's INFO lines off the progress bars
    config = cli.config_flag(cli.current_program())
    try:
        lmbdas = tuple(float(x) for x in FLAGS.lmbdas) or (float(config.lmbda),)
    except (ValueError, TypeError, AttributeError):
        _fail(f"--lmbdas must be comma-separated numbers, got {','.join(FLAGS.lmbdas)!r}")
    if any(not (math.isfinite(lm) and lm > 0) for lm in lmbdas):
        _fail(f"every lambda must be a finite number > 0, got {','.join(map(str, lmbdas))}")
    for name, low in (("batch_size", 1), ("bucket_multiple", 1), ("chunk_steps", 1),
                      ("patience", 0)):
        if FLAGS[name].value < low:
            _fail(f"--{name} must be >= {low}, got {FLAGS[name].value}")
    try:
        max_pixels()
    except ValueError as e:
        _fail(str(e))
    cli.make_folder(cli.current_program(), "output", FLAGS.output)

    import jax

    from nlc_jax.codecs import registry
    from nlc_jax.data.datasets import open_inputs, shard
    from nlc_jax.fit.buckets import BucketPolicy
    from nlc_jax.fit.engine import FitOptions
    from nlc_jax.fit.pipeline import EncodeSettings, encode_images, encode_learned

    if FLAGS.distributed:
        jax.distributed.initialize()
    settings = EncodeSettings(
        lmbdas=lmbdas, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
        policy=BucketPolicy(multiple=FLAGS.bucket_multiple),
        options=FitOptions(chunk_steps=FLAGS.chunk_steps, patience=FLAGS.patience or None),
        checkpoint_every_s=FLAGS.checkpoint_every if FLAGS.checkpoint_every > 0 else None,
        progress=FLAGS.progress, process_index=jax.process_index(),
        process_count=jax.process_count())
    try:
        codec = registry.make(config)
        sources = shard(open_inputs(FLAGS.input, FLAGS.tfds_data_dir), settings.process_index,
                        settings.process_count)
        if hasattr(codec, "recipe"):
            outcome = encode_images(codec, sources, FLAGS.output, settings)
        else:
            if len(lmbdas) > 1:
                _fail("--lmbdas sweeps need an overfitted codec; a learned codec has one rate")
            outcome = encode_learned(codec, sources, FLAGS.output, lmbdas[0], settings)
    except ValueError as e:  # ImageReadError, UnknownCodecError, config errors, BitstreamError
        _fail(str(e))
    except OSError as e:  # the output cannot be written (disk full, quota, permissions)
        cli.fail(cli.current_program(), f"{e}; finished files are kept, rerun to resume the "
                 "others", status=1)
    program = cli.current_program()
    print(f"{program}: wrote {len(outcome.rows)} file(s) to {FLAGS.output}", file=sys.stderr)
    if outcome.errors:
        print(f"{program}: {len(outcome.errors)} input(s) failed (see the errors above)",
              file=sys.stderr)
        sys.exit(1)


def run(program: str | None = None) -> None:
    """The command (``program``: its name in error lines; default: the running script's)."""
    cli.run_command(main, __name__, __doc__, program)


if __name__ == "__main__":
    run()
