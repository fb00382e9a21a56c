"""``nlc-train`` (and ``train.py`` in a checkout): train a learned codec.

    nlc-train --config hyperprior:tiny --workdir runs/tiny [--config.<key>=<value>]

Resumes from the latest checkpoint in ``--workdir``. Multi-host: pass ``--distributed`` to call
``jax.distributed.initialize()`` (cluster settings from the environment). Bad flags, config
files, config keys or values and a workdir that cannot be created print one
``<program>: error:`` line (exit status 2).
"""

from __future__ import annotations

import logging as std_logging

from absl import app, flags, logging
from ml_collections import config_flags

from nlc_jax import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config: <name>[:preset] or path[:preset].",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the export.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host).")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(std_logging.Filter):
    """Drops orbax's per-save INFO chatter from the log (warnings and errors still pass)."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.get_absl_handler().addFilter(_QuietLibraries())
    config = cli.config_flag(cli.current_program())
    cli.make_folder(cli.current_program(), "workdir", FLAGS.workdir)
    import jax

    from nlc_jax.train import train_and_evaluate

    if FLAGS.distributed:
        jax.distributed.initialize()
    logging.info("devices: %s", jax.devices())
    try:
        result = train_and_evaluate(config, FLAGS.workdir)
    except ValueError as e:  # ConfigError, DataSpecError, CheckpointError, ImageReadError…
        cli.fail(cli.current_program(), str(e))
    logging.info("finished at step %d: %s", result["step"], result["eval"] or result["train"])


def run(program: str | None = None) -> None:
    """The command (``program``: its name in error lines; default: the running script's)."""
    cli.run_command(main, __name__, __doc__, program)


if __name__ == "__main__":
    run()
