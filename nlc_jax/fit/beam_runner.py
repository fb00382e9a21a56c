"""Encode a dataset with Apache Beam: many machines, retries when a worker dies.

    python -m nlc_jax.fit.beam_runner --config coolchic:fast --input 'data/*.png' \\
        --output out/ [--lmbdas 0.001,0.004] [--batch_size 8] [--config.recipe.n_itr=2000] \\
        [Beam pipeline options: --runner=DirectRunner --direct_running_mode=multi_processing \\
         --direct_num_workers=4 | --runner=DataflowRunner --project … | --runner=FlinkRunner …]

The pipeline (optional extra ``pip install 'nlc_jax[beam]'``):

1. ``Create`` the fits (image source × λ, seeds as in ``encode.py``) on the driver; a fit whose
   ``.nlc`` already exists in ``--output`` is dropped (a rerun finishes only what is missing);
2. key every fit by its shape bucket (``nlc_jax.fit.buckets``; the image header is read on a
   worker), group per bucket, cut each group into batches of ``--batch_size`` (in name order:
   a retry gets the same batches) and spread the batches over the workers (``Reshuffle``);
3. fit each batch with the batched engine on the worker's local devices
   (``nlc_jax.fit.pipeline``'s batch step: decoder candidates, finalize, gray files) and write
   every file atomically (temporary file in the output folder, then a rename);
4. merge the rows with the ``results.tsv`` already there and replace it atomically (one
   writer).

Exactly once: a file's name is a function of its fit alone and only ever appears by a rename of
a complete file, so a bundle that is retried after its worker died rewrites the same names with
complete files (the fit is seeded, so with the same bytes) and never leaves a partial one; the
table holds the rows of committed bundles only, one per fit. The output folder must be a file
system every worker sees with an atomic rename (local disk for the DirectRunner, NFS/Filestore
for a fleet); see ``docs/fit.md`` for Dataflow, Flink and Spark.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError:
    if __name__ == "__main__":
        print("beam_runner: error: apache-beam is not installed (pip install 'nlc_jax[beam]')",
              file=sys.stderr)
        sys.exit(2)
    raise

from nlc_jax.data.datasets import ImageSource, open_inputs
from nlc_jax.data.files import atomic_write_bytes
from nlc_jax.data.images import ImageReadError
from nlc_jax.fit.buckets import BucketPolicy, bucket_shape
from nlc_jax.fit.coding import TargetShapes, decoder_candidates
from nlc_jax.fit.engine import FitOptions
from nlc_jax.fit.pipeline import (
    COLUMNS,
    EncodeOutcome,
    EncodeSettings,
    ResultsTable,
    _cell,
    _Fit,
    _lmbda_key,
    _run_batch,
    device_description,
    output_name,
)

TABLE = "results.tsv"
ROWS = ".rows"  # one row file per written .nlc: <output>/.rows/<file name>.tsv
ERRORS = "errors.txt"


def _row_path(output_dir: Path, file_name: str) -> Path:
    return output_dir / ROWS / f"{file_name}.tsv"


def plan_fits(sources: Sequence[ImageSource], lmbdas: Sequence[float], seed: int,
              output_dir: Path) -> list[_Fit]:
    """Every (source, λ) not finished in ``output_dir`` (finished: its ``.nlc`` and its row
    file exist), seeded as ``encode.py`` seeds it (``seed + crc32(name)``)."""
    sweep = len(lmbdas) > 1
    out = []
    for s in sources:
        for lm in lmbdas:
            name = output_name(s.name, float(lm), sweep)
            if not ((output_dir / name).exists() and _row_path(output_dir, name).exists()):
                out.append(_Fit(s, float(lm), (seed + zlib.crc32(s.name.encode())) % (2 ** 31)))
    return out


class RowFiles:
    """The results rows of one batch: each is also written, atomically, to its file's row
    file (after the file itself), so rows of a run that was killed are not lost."""

    def __init__(self, output_dir: Path, sweep: bool):
        self.output_dir, self.sweep, self.rows = output_dir, sweep, []

    def append(self, row: dict[str, Any]) -> None:
        name = output_name(row["image"], float(row["lmbda"]), self.sweep)
        line = "\t".join(_cell(row[c]) for c in COLUMNS)
        atomic_write_bytes(_row_path(self.output_dir, name), f"{line}\n".encode())
        self.rows.append(row)


class _Codec:
    """The codec of ``config`` and its decoder candidates, made once per worker."""

    def __init__(self, config: Any):
        self.config = config
        self.codec = None

    def get(self):
        if self.codec is None:
            from nlc_jax.codecs import registry
            self.codec = registry.make(self.config)
        return self.codec


class BucketFits(beam.DoFn):
    """fit → ``("HxW", fit)``: its shape bucket (from the image header); unreadable inputs go
    to the ``errors`` output as one line each."""

    def __init__(self, config: Any, policy: BucketPolicy):
        self._codec = _Codec(config)
        self.policy = policy

    def setup(self) -> None:
        self.shapes = TargetShapes(self._codec.get())

    def process(self, fit: _Fit) -> Iterator[Any]:
        try:
            h, w = self.shapes(fit.source.size())[:2]
        except ImageReadError as e:
            yield beam.pvalue.TaggedOutput("errors", str(e))
            return
        bh, bw = bucket_shape(h, w, self.policy.multiple)
        yield f"{bh}x{bw}", fit


class EncodeBatch(beam.DoFn):
    """``(bucket, fits)`` → one results row per written file; each file is written atomically.
    Failed fits (diverged, unreadable) go to the ``errors`` output."""

    def __init__(self, config: Any, output_dir: str, settings: EncodeSettings):
        self._codec = _Codec(config)
        self.output_dir = output_dir
        self.settings = settings

    def setup(self) -> None:
        from nlc_jax.fit.engine import Engine, make_mesh
        self.candidates = decoder_candidates(self._codec.get())
        mesh = make_mesh()
        self.engines = [Engine(c, mesh, self.settings.options) for c in self.candidates]
        self.device = device_description()

    def process(self, element: tuple[str, Iterable[_Fit]]) -> Iterator[Any]:
        bucket, fits = element
        fits = list(fits)
        outcome = EncodeOutcome()
        sweep = len(self.settings.lmbdas) > 1
        rows = RowFiles(Path(self.output_dir), sweep)
        names = repr([(f.source.name, f.lmbda) for f in fits]).encode()
        batch_id = f"beam-{bucket}-{zlib.crc32(names):08x}"
        _run_batch(self.candidates, self.engines, fits, Path(self.output_dir), sweep,
                   self.settings, Path(self.output_dir), batch_id, self.device, rows, set(),
                   outcome, None)
        for error in outcome.errors:
            yield beam.pvalue.TaggedOutput("errors", error)
        yield from rows.rows


def write_table(rows: list[dict], output_dir: str) -> int:
    """Replace ``output_dir/results.tsv`` (atomically) by the rows already in it merged with
    every row file (``.rows/``; a row file replaces a table row of the same image and λ).
    ``rows`` (this run's) only orders this step after the encodes. Returns the row count."""
    del rows
    out = Path(output_dir)
    merged = {(r["image"], _lmbda_key(r["lmbda"])): r for r in ResultsTable(out / TABLE).rows()}
    for path in sorted((out / ROWS).glob("*.tsv")):
        cells = path.read_text().rstrip("\n").split("\t")
        if len(cells) == len(COLUMNS):
            row = dict(zip(COLUMNS, cells, strict=True))
            merged[(row["image"], _lmbda_key(row["lmbda"]))] = row
    lines = ["\t".join(COLUMNS)] + ["\t".join(str(r[c]) for c in COLUMNS)
                                    for _, r in sorted(merged.items())]
    atomic_write_bytes(out / TABLE, ("\n".join(lines) + "\n").encode())
    return len(merged)


def batches_of(element: tuple[str, Iterable[_Fit]],
               batch_size: int) -> Iterator[tuple[str, list[_Fit]]]:
    """``(bucket, fits)`` → ``(bucket, batch)`` of at most ``batch_size`` fits, in (name, λ)
    order, so a retried bundle gets the same batches (and the same files)."""
    bucket, fits = element
    fits = sorted(fits, key=lambda f: (f.source.name, f.lmbda))
    for start in range(0, len(fits), batch_size):
        yield bucket, fits[start:start + batch_size]


def build(pipeline: beam.Pipeline, fits: list[_Fit], config: Any, output_dir: str,
          settings: EncodeSettings) -> tuple[beam.PCollection, beam.PCollection]:
    """Add the encode steps to ``pipeline``; returns (row count of the table, error lines)."""
    keyed = (pipeline | "Fits" >> beam.Create(fits)
             | "Bucket" >> beam.ParDo(BucketFits(config, settings.policy)).with_outputs(
                 "errors", main="fits"))
    encoded = (keyed.fits | "Group" >> beam.GroupByKey()
               | "Batch" >> beam.FlatMap(batches_of, settings.batch_size)
               | "Spread" >> beam.Reshuffle()
               | "Encode" >> beam.ParDo(EncodeBatch(config, output_dir, settings)).with_outputs(
                   "errors", main="rows"))
    count = (encoded.rows | "Rows" >> beam.combiners.ToList()
             | "Table" >> beam.Map(write_table, output_dir))
    errors = (keyed.errors, encoded.errors) | "Errors" >> beam.Flatten()
    return count, errors


def write_errors(lines: list[str], output_dir: str) -> int:
    """Replace ``output_dir/errors.txt`` with this run's one-line errors (sorted, each once);
    returns how many there are."""
    lines = sorted(set(lines))
    atomic_write_bytes(Path(output_dir) / ERRORS, "".join(f"{x}\n" for x in lines).encode())
    return len(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too)
        from nlc_jax import cli
        cli.fail(self.prog, message)


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our flags, ``--config.<key>=<value>`` overrides and the rest (Beam pipeline options)."""
    ap = _Parser(prog="beam_runner", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True,
                    help="<name>[:preset] (e.g. coolchic:fast) or a config file path[:preset]")
    ap.add_argument("--input", required=True, help="image file, folder, glob or tfds:<name>")
    ap.add_argument("--output", required=True)
    ap.add_argument("--lmbdas", default="", help="comma-separated; default: the config's")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--bucket_multiple", type=int, default=64)
    ap.add_argument("--chunk_steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tfds_data_dir", default=None)
    args, rest = ap.parse_known_args(argv)
    args.overrides = [a[len("--config."):] for a in rest if a.startswith("--config.")]
    return args, [a for a in rest if not a.startswith("--config.")]


def _config(spec: str, overrides: list[str]) -> Any:
    from nlc_jax.config_files import apply_overrides, config_module
    path, _, preset = spec.partition(":")
    module = config_module(Path(path).stem)
    return apply_overrides(module.get_config(preset) if preset else module.get_config(),
                           overrides)


def main(argv: list[str] | None = None) -> int:
    """CLI. Exit status 0; 1 when some inputs failed (their lines are in ``errors.txt`` and on
    stderr); 2 for bad flags, configs or input specs (one ``beam_runner: error:`` line)."""
    from nlc_jax import cli

    args, beam_args = _parse(sys.argv[1:] if argv is None else argv)
    prog = "beam_runner"
    try:
        config = _config(args.config, args.overrides)
        lmbdas = tuple(float(x) for x in args.lmbdas.split(",") if x) or (float(config.lmbda),)
        for flag, low in (("batch_size", 1), ("bucket_multiple", 1), ("chunk_steps", 1)):
            if getattr(args, flag) < low:
                raise ValueError(f"--{flag} must be >= {low}, got {getattr(args, flag)}")
        if any(not lm > 0 for lm in lmbdas):
            raise ValueError(f"every lambda must be > 0, got {args.lmbdas}")
        settings = EncodeSettings(lmbdas=lmbdas, batch_size=args.batch_size, seed=args.seed,
                                  policy=BucketPolicy(multiple=args.bucket_multiple),
                                  options=FitOptions(chunk_steps=args.chunk_steps),
                                  checkpoint_every_s=None, progress=False)
        output = cli.make_folder(prog, "output", args.output)
        fits = plan_fits(open_inputs(args.input, args.tfds_data_dir), lmbdas, args.seed, output)
    except (ValueError, TypeError) as e:  # ImageReadError, UnknownCodecError, config errors
        cli.fail(prog, str(e))
    t0 = time.monotonic()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        _, errors = build(p, fits, config, str(output), settings)
        errors | "Errors list" >> beam.combiners.ToList() | "Errors file" >> beam.Map(
            write_errors, str(output))
    failed = (output / ERRORS).read_text().splitlines()
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"{prog}: {len(fits)} fit(s) planned, {len(failed)} error(s), "
          f"{time.monotonic() - t0:.0f} s; table {output / TABLE}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
