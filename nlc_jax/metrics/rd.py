"""Rate–distortion records: per-image rows, per-codec curves, TSV input/output.

A *record* is one decoded image of one codec at one operating point (``point``: a λ, a quality
setting, a folder name), with its rate and quality::

    {"codec": "jpeg", "point": "q50", "image": "kodim01", "bpp": 1.21, "psnr_db": 32.1,
     "ms_ssim": 0.981, "ms_ssim_db": 17.2, "lpips": 0.11}

A *curve* averages the records of one codec per point over a set of images, the way
compression papers report datasets: mean bpp and mean of per-image PSNR / MS-SSIM / LPIPS
(MS-SSIM dB is taken of the mean MS-SSIM).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from nlc_jax.metrics.bd import bd_psnr, bd_rate
from nlc_jax.metrics.ms_ssim import ms_ssim_db

METRICS = ("psnr_db", "ms_ssim", "ms_ssim_db", "lpips")
COLUMNS = ("codec", "point", "image", "bpp") + METRICS


class RDFileError(ValueError):
    """An RD results file that cannot be read."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """Dataset-mean RD curve of one codec, sorted by rate.

    Attributes:
      codec: display name.
      points: operating-point labels ``[P]``.
      bpp: ``[P]`` mean bits per pixel.
      values: metric name → ``[P]`` mean values (NaN where not measured).
      n_images: images averaged at each point.
    """

    codec: str
    points: tuple[str, ...]
    bpp: np.ndarray
    values: dict[str, np.ndarray]
    n_images: int

    def has(self, metric: str) -> bool:
        """True when every point of the curve has ``metric``."""
        v = self.values.get(metric)
        return v is not None and len(v) > 0 and bool(np.all(np.isfinite(v)))


def make_curve(records: Iterable[dict], codec: str, images: Sequence[str]) -> Curve:
    """Average the ``codec`` records per point over exactly ``images``.

    Points at which one of ``images`` is missing are dropped (a mean over a different image set
    would not be comparable).
    """
    wanted = set(images)
    by_point: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        if r["codec"] == codec and r["image"] in wanted:
            by_point[str(r["point"])][r["image"]] = r
    rows = []
    for point, per_image in by_point.items():
        if set(per_image) != wanted:
            continue
        rs = list(per_image.values())
        bpp = float(np.mean([r["bpp"] for r in rs]))
        vals = {m: float(np.mean([_num(r.get(m)) for r in rs])) for m in METRICS}
        vals["ms_ssim_db"] = float(ms_ssim_db(vals["ms_ssim"])) if math.isfinite(
            vals["ms_ssim"]) else math.nan
        rows.append((bpp, point, vals))
    rows.sort(key=lambda row: row[0])
    return Curve(codec=codec, points=tuple(p for _, p, _ in rows),
                 bpp=np.array([b for b, _, _ in rows]),
                 values={m: np.array([v[m] for _, _, v in rows]) for m in METRICS},
                 n_images=len(wanted))


def _num(value) -> float:
    if value is None or value == "":
        return math.nan
    return float(value)


def write_tsv(path: str | os.PathLike, records: Sequence[dict]) -> None:
    """Write per-image records as a TSV with :data:`COLUMNS` (floats with 6 decimals)."""
    from nlc_jax.data.files import atomic_write_bytes

    lines = ["\t".join(COLUMNS)]
    for r in records:
        cells = []
        for c in COLUMNS:
            v = r.get(c, "")
            cells.append(f"{v:.6f}" if isinstance(v, float) else str(v))
        lines.append("\t".join(cells))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def read_tsv(path: str | os.PathLike) -> list[dict]:
    """Read RD records from a TSV.

    Two layouts are accepted: ours (:data:`COLUMNS`, as written by :func:`write_tsv` and
    ``nlc_jax.eval``) and Cool-chic's published per-image results (``lmbda``, ``seq_name``,
    ``rate_bpp``, ``psnr_db``; the codec is named after the file, e.g.
    ``coolchic-5.0.1-kodak``).

    Raises:
      RDFileError: missing file, unknown layout, or a bad number (one-line message naming the row).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RDFileError(f"{path}: cannot read ({e.strerror or e})") from None
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    if not rows:
        raise RDFileError(f"{path}: no RD rows")
    header = set(rows[0])
    records = []
    for i, row in enumerate(rows, start=2):
        try:
            if {"codec", "point", "image", "bpp"} <= header:
                rec = {"codec": row["codec"], "point": row["point"], "image": row["image"],
                       "bpp": float(row["bpp"])}
                rec |= {m: _num(row.get(m)) for m in METRICS}
            elif {"lmbda", "seq_name", "rate_bpp", "psnr_db"} <= header:
                rec = {"codec": path.stem, "point": row["lmbda"], "image": row["seq_name"],
                       "bpp": float(row["rate_bpp"]), "psnr_db": float(row["psnr_db"])}
                rec |= {m: _num(row.get(m)) for m in METRICS if m != "psnr_db"}
            else:
                raise RDFileError(
                    f"{path}: unknown TSV layout (need columns {', '.join(COLUMNS[:4])} … or "
                    "Cool-chic's lmbda, seq_name, rate_bpp, psnr_db)")
        except (TypeError, ValueError) as e:
            if isinstance(e, RDFileError):
                raise
            raise RDFileError(f"{path}: line {i}: bad number ({e})") from None
        records.append(rec)
    return records


def reference_records(path: str | os.PathLike, images: Sequence[str],
                      codec: str | None = None) -> list[dict]:
    """The rows of an RD TSV (:func:`read_tsv`) for ``images`` only, renamed to ``codec``
    when given: how every benchmark reads an anchor such as Cool-chic 5.0.1's published
    per-image Kodak results."""
    wanted = set(images)
    return [dict(r, codec=codec or r["codec"]) for r in read_tsv(path) if r["image"] in wanted]


def published_curves(path: str | os.PathLike, dataset: str) -> list[Curve]:
    """Dataset-mean curves published as a CSV of one row per operating point.

    The layout is that of MS-ILLM's results (``../shared/reference/msillm-results.csv``):
    columns ``model``, ``dataset``, ``bpp`` and any of ``psnr``, ``ms_ssim``, ``lpips``
    (empty cells: not measured). Only the rows of ``dataset`` (e.g. ``"kodak"``) are kept; one
    curve per model, sorted by rate, with ``n_images`` 0 (the images are the dataset's).

    Raises:
      RDFileError: missing file, columns missing, or a bad number.
    """
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.read_text().splitlines()))
    except OSError as e:
        raise RDFileError(f"{path}: cannot read ({e.strerror or e})") from None
    if not rows or not {"model", "dataset", "bpp"} <= set(rows[0]):
        raise RDFileError(f"{path}: need the columns model, dataset, bpp")
    names = {"psnr_db": "psnr", "ms_ssim": "ms_ssim", "lpips": "lpips"}
    by_model: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
    for i, row in enumerate(rows, start=2):
        if row["dataset"] != dataset:
            continue
        try:
            vals = {m: _num(row.get(names.get(m, m))) for m in METRICS}
            by_model[row["model"]].append((float(row["bpp"]), vals))
        except ValueError as e:
            raise RDFileError(f"{path}: line {i}: bad number ({e})") from None
    curves = []
    for model, points in by_model.items():
        points.sort(key=lambda p: p[0])
        values = {m: np.array([v[m] for _, v in points]) for m in METRICS}
        values["ms_ssim_db"] = np.array([float(ms_ssim_db(v)) if math.isfinite(v) else math.nan
                                         for v in values["ms_ssim"]])
        curves.append(Curve(codec=model, points=tuple(f"{b:.4f}" for b, _ in points),
                            bpp=np.array([b for b, _ in points]), values=values, n_images=0))
    return curves


def bd_pair(anchor: Curve, test: Curve, metric: str = "psnr_db") -> dict:
    """BD-rate (%) and BD-quality (dB for PSNR) of ``test`` against ``anchor`` on ``metric``.

    Returns:
      ``{"bd_rate_pct", "bd_psnr_db"}``; each is NaN, with its reason under
      ``"<key>_undefined"``, when undefined: BD-rate needs the curves to overlap in quality,
      BD-PSNR in rate (two points at least each).
    """
    out: dict = {}
    for key, fn in (("bd_rate_pct", bd_rate), ("bd_psnr_db", bd_psnr)):
        try:
            out[key] = fn(anchor.bpp, anchor.values[metric], test.bpp, test.values[metric])
        except ValueError as e:  # BDError: no overlap, too few points
            out[key] = float("nan")
            out[f"{key}_undefined"] = str(e)
    return out
