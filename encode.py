"""Encode images (or a whole dataset) to ``.nlc`` files.

    python encode.py --config configs/coolchic.py:fast --input ../shared/data/kodak \\
        --output out/ [--batch_size 8] [--lmbdas 0.0001,0.0004,0.001,0.004] [--config.lmbda=…]

``--input`` is a file, a directory, a glob, or ``tfds:<name>[:split]``. Overfitted codecs are fitted
many at once by ``nlc_jax.fit`` (shape buckets, λ sweep, checkpoints in ``<output>/.inflight``;
rerunning the same command resumes and skips finished images); learned codecs encode image by
image. Writes ``<output>/<stem>.nlc`` (``<stem>_lmbda<λ>.nlc`` in a sweep) and appends
``results.tsv`` (image, lmbda, bpp, psnr_db, encode_s, mac_per_pixel, batch_id, device).
Exit status: 0 when everything was encoded; 1 when some inputs failed (each has one ``error:``
line; the others are encoded); 2 for bad flags/config/input specs. Multi-host: ``--distributed`` calls ``jax.distributed.initialize()``; each process encodes a
disjoint, deterministic share of the inputs.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Codec config file (path[:preset]).")
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
    print(f"encode.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.is_parsed() or FLAGS["verbosity"].present == 0:
        logging.set_verbosity(logging.WARNING)  # keep orbax's INFO lines off the progress bars
    import jax

    from nlc_jax.codecs import registry
    from nlc_jax.data.datasets import open_inputs, shard
    from nlc_jax.fit.buckets import BucketPolicy
    from nlc_jax.fit.engine import FitOptions
    from nlc_jax.fit.pipeline import EncodeSettings, encode_images, encode_learned

    if FLAGS.distributed:
        jax.distributed.initialize()
    config = FLAGS.config
    try:
        lmbdas = tuple(float(x) for x in FLAGS.lmbdas) or (float(config.lmbda),)
    except (ValueError, AttributeError):
        _fail(f"--lmbdas must be comma-separated numbers, got {','.join(FLAGS.lmbdas)!r}")
    if any(not lm > 0 for lm in lmbdas):
        _fail(f"every lambda must be > 0, got {','.join(map(str, lmbdas))}")
    if FLAGS.batch_size < 1:
        _fail(f"--batch_size must be >= 1, got {FLAGS.batch_size}")
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
    print(f"encode.py: wrote {len(outcome.rows)} file(s) to {FLAGS.output}", file=sys.stderr)
    if outcome.errors:
        print(f"encode.py: {len(outcome.errors)} input(s) failed (see the errors above)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
