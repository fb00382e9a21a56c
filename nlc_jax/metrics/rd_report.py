"""The parts every "one model against the anchors" RD(P) benchmark shares (``benchmarks/
rvdiff_rd.py``, ``benchmarks/glc_rd.py``): quality of a decoded image, JPEG / WebP ladders coded
on the spot, other benchmarks' per-image records, published mean curves, BD-rate on PSNR and
LPIPS of the main curve against every other one, patch FID of every decoded set, plots and the
JSON form of a curve.

A benchmark collects per-image *records* (``{"codec", "point", "image", "bpp", metric: value}``,
the :mod:`nlc_jax.metrics.rd` layout) and, for FID, the decoded images of each
``(codec, point)`` *set*; this module turns them into curves and numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlc_jax.metrics.classic_codecs import DISPLAY_NAMES, ladder
from nlc_jax.metrics.ms_ssim import MIN_SIDE, ms_ssim, ms_ssim_db
from nlc_jax.metrics.plots import plot_rd
from nlc_jax.metrics.psnr import psnr_exact
from nlc_jax.metrics.rd import (
    METRICS,
    Curve,
    bd_pair,
    make_curve,
    published_curves,
    reference_records,
)

DecodedSets = dict[tuple[str, str], list[np.ndarray]]  # (codec, point) → decoded images


class ReportArgumentError(ValueError):
    """A malformed benchmark argument (one-line message)."""


def parse_classic(text: str) -> dict[str, list[int]]:
    """``"jpeg:1,5;webp:0,5"`` → ``{"jpeg": [1, 5], "webp": [0, 5]}`` (``""`` → ``{}``).

    Raises:
      ReportArgumentError: an unknown codec or an item without qualities.
    """
    out = {}
    for item in filter(None, text.split(";")):
        codec, _, qualities = item.partition(":")
        if codec not in DISPLAY_NAMES or not qualities:
            raise ReportArgumentError(
                f"--classic wants codec:q,q,...;… with codec in {', '.join(DISPLAY_NAMES)}, "
                f"got {item!r}")
        out[codec] = [int(q) for q in qualities.split(",")]
    return out


def select_sources(sources: Sequence[Any], names: str = "", max_images: int = 0) -> list[Any]:
    """The benchmark's images: those named in ``names`` (comma-separated stems; all when
    empty), then the first ``max_images`` (0: all).

    Raises:
      ReportArgumentError: a name that is not among ``sources``.
    """
    sources = list(sources)
    if names:
        wanted = names.split(",")
        sources = [s for s in sources if s.name in wanted]
        missing = sorted(set(wanted) - {s.name for s in sources})
        if missing:
            raise ReportArgumentError(f"--names: {', '.join(missing)} not among the images")
    return sources[:max_images or None]


def image_quality(image: np.ndarray, decoded: np.ndarray, lpips_params: Any) -> dict[str, float]:
    """PSNR (float64, host), MS-SSIM (images of at least 161 px a side) and LPIPS (when
    ``lpips_params`` is given) of ``decoded [H, W, 3]`` uint8 against ``image [H, W, 3]``."""
    out = {"psnr_db": float(psnr_exact(image, decoded))}
    if min(image.shape[:2]) >= MIN_SIDE:
        value = float(ms_ssim(image, decoded))
        out.update(ms_ssim=value, ms_ssim_db=float(ms_ssim_db(value)))
    if lpips_params is not None:
        from nlc_jax.metrics.lpips import lpips

        out["lpips"] = float(lpips(image, decoded, lpips_params))
    return out


def classic_records(images: Mapping[str, np.ndarray], classic: Mapping[str, Sequence[int]],
                    lpips_params: Any, decoded_sets: DecodedSets | None = None) -> list[dict]:
    """JPEG / WebP (Pillow) at every quality of ``classic`` (codec → qualities) on ``images``
    (name → ``[H, W, 3]`` uint8): per-image records; the decoded images go into
    ``decoded_sets`` when given (patch FID)."""
    records = []
    for codec, qualities in classic.items():
        display = DISPLAY_NAMES[codec]
        for name, q, decoded, bpp in ladder(images, codec, qualities):
            records.append({"codec": display, "point": f"q{q}", "image": name, "bpp": bpp,
                            **image_quality(images[name], decoded, lpips_params)})
            if decoded_sets is not None:
                decoded_sets.setdefault((display, f"q{q}"), []).append(decoded)
    return records


def records_of(path: str, names: Sequence[str]) -> list[dict]:
    """Per-image RD records of another benchmark for ``names``: a TSV (``nlc_jax.metrics.rd``
    layout), or a JSON with a ``records`` list (e.g. ``clric_rd.json``)."""
    if path.endswith(".json"):
        wanted = set(names)
        return [r for r in json.loads(Path(path).read_text())["records"] if r["image"] in wanted]
    return reference_records(path, names)


def compared_records(paths: str, names: Sequence[str], coded: set[str]) -> list[dict]:
    """The records of the comma-separated ``paths`` for ``names``, except those of the codecs
    in ``coded`` (coded by the benchmark itself)."""
    out = []
    for path in filter(None, paths.split(",")):
        out += [r for r in records_of(path, names) if r["codec"] not in coded]
    return out


def curves_of(records: Sequence[dict], names: Sequence[str], published: str = "") -> dict[str,
                                                                                            Curve]:
    """Mean curve of every codec of ``records`` over exactly ``names`` (a codec missing one of
    them has no curve), plus the curves of ``published`` (``CSV:dataset``, MS-ILLM's layout),
    named ``"<codec> (published, <dataset>)"``."""
    curves = {label: make_curve(records, label, names)
              for label in dict.fromkeys(r["codec"] for r in records)}
    curves = {k: c for k, c in curves.items() if c.bpp.size}
    if published:
        path, _, dataset = published.rpartition(":")
        for c in published_curves(path, dataset):
            name = f"{c.codec} (published, {dataset})"
            curves[name] = dataclasses.replace(c, codec=name)
    return curves


def bd_psnr_lpips(anchor: Curve, test: Curve) -> dict[str, dict]:
    """BD of ``test`` against ``anchor`` on PSNR and on LPIPS (where both curves have it).

    LPIPS falls as quality rises: BD runs on −LPIPS to keep "higher is better", so a negative
    BD-rate is a saving for ``test`` in either metric (``bd_psnr_db`` is then −ΔLPIPS).
    """
    out = {}
    for metric in ("psnr_db", "lpips"):
        if anchor.has(metric) and test.has(metric) and len(anchor.bpp) > 1 and len(test.bpp) > 1:
            flip = -1.0 if metric == "lpips" else 1.0
            a, t = (dataclasses.replace(c, values={metric: flip * c.values[metric]})
                    for c in (anchor, test))
            out[metric] = bd_pair(a, t, metric)
    return out


def bd_against_all(curves: Mapping[str, Curve], main: str) -> dict[str, dict]:
    """``{"<main> vs <other>": bd_psnr_lpips(other, main)}`` for every other curve, printed;
    empty when ``main`` has no curve."""
    if main not in curves:
        return {}
    bd = {f"{main} vs {name}": bd_psnr_lpips(curve, curves[main])
          for name, curve in curves.items() if name != main}
    for key, value in bd.items():
        for metric, v in value.items():
            print(f"BD {key} ({metric}): rate {v['bd_rate_pct']:+.1f} %, "
                  f"quality {v['bd_psnr_db']:+.4f}")
    return bd


def patch_fids(references: Sequence[np.ndarray], decoded_sets: DecodedSets) -> dict[str, float]:
    """Patch FID (Inception features of 256² patches) of every decoded set against
    ``references`` (each ``[H, W, 3]`` uint8), keyed ``"<codec> <point>"``; sets with the same
    images (e.g. two codings of one reconstruction) are measured once. Empty, with a message on
    stderr, when the Inception weights (an optional install) are missing."""
    try:
        from nlc_jax.metrics.fid import extract_patches, fid
        from nlc_jax.metrics.inception import inception_features, load_inception_params
        params = load_inception_params()
    except Exception as err:  # the Inception weights are an optional install
        print(f"patch FID skipped: {err}", file=sys.stderr)
        return {}

    def features(images: Sequence[np.ndarray]) -> np.ndarray:
        return inception_features(params, np.concatenate([extract_patches(im) for im in images]))

    reference = features(references)
    by_content: dict[str, float] = {}
    out = {}
    for (label, point), decoded in decoded_sets.items():
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(d).tobytes()
                                         for d in decoded)).hexdigest()
        if digest not in by_content:
            by_content[digest] = fid(reference, features(decoded))
        out[f"{label} {point}"] = by_content[digest]
        print(f"patch FID {label} {point}: {out[f'{label} {point}']:.2f}", flush=True)
    return out


def curve_json(curve: Curve) -> dict[str, Any]:
    """A curve as JSON: points, bpp, image count and every metric it has."""
    return {"points": list(curve.points), "bpp": curve.bpp.tolist(), "n_images": curve.n_images,
            **{m: curve.values[m].tolist() for m in METRICS if m in curve.values}}


def plot_curves(curves: Mapping[str, Curve], output: Path, dataset: str) -> None:
    """``<output>_psnr_db.png`` and ``<output>_lpips.png`` (AlexNet LPIPS) of ``curves``."""
    for metric in ("psnr_db", "lpips"):
        plot_rd(list(curves.values()), metric, f"{output}_{metric}.png", dataset=dataset,
                metric_note="(AlexNet)" if metric == "lpips" else "")
