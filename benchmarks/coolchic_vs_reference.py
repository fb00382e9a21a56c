"""Our COOL-CHIC against Cool-chic 5.0.1 run on the same crops, λ's and iterations, same CPU.

    python benchmarks/coolchic_vs_reference.py \\
        [--reference benchmarks/results/coolchic_5.0.1_crops_hop_2000.tsv] \\
        [--images kodim01,kodim04] [--lmbdas 1e-4,1e-3,4e-3,2e-2] [--preset hop] [--n_itr 2000] \\
        [--label ours] [--set recipe.optimizer=adam ...] [--recode_from LABEL] \\
        [--output benchmarks/results/coolchic_vs_reference] [--merge OTHER_OUTPUT ...]

The reference rows come from ``coolchic_reference_run.py`` (Cool-chic itself, pinned to one
core); run this one pinned to the other core while it runs (``taskset -c 1``), so both time
their training step on the same machine at the same time. For every image of the reference
TSV (or ``--images``) this script crops the same box, fits all λ's at once with the batched
engine (``nlc_jax.fit.fit_batch``), writes and decodes every file, checks that the decoded
pixels equal the encoder's reconstruction (array comparison; a mismatch or a failed fit stops
the run with one line), and appends one row per (label, image, λ) to ``<output>.tsv``
(resumable: finished rows are kept and skipped). ``--label`` names a variant, with ``--set``
config overrides, so ablations share one table. ``--recode_from LABEL`` fits nothing: it codes
the parameters that label's fits saved (``<files>/<LABEL>/*.params.npz``) with this label's
config, for variants that change only the coding (e.g. ``--set recipe.rdoq_passes=0``).
Labels run in parallel (one per core) each write their own ``--output``; ``--merge`` those
outputs (with ``--summary_only``) adds their rows and step times to this table.

It then writes ``<output>.json`` and prints, per label: per-image BD-rate against the
reference (the RD curve of its λ's), their mean, the mean bpp/PSNR per λ, and the time of one
training step of one fit on the first crop (jitted, measured here after compilation) next to
Cool-chic's (its training time / iterations, from the reference TSV).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from nlc_jax.codecs.coolchic import CoolChic, mac_per_pixel  # noqa: E402
from nlc_jax.config_files import apply_overrides, load_config  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.fit.engine import Engine, FitOptions, fit_batch  # noqa: E402
from nlc_jax.fit.step_time import time_train_step  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.bd import BDError, bd_rate  # noqa: E402
from nlc_jax.metrics.psnr import psnr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT / "../shared/data/kodak"
COLUMNS = ("label", "image", "box", "lmbda", "n_itr", "preset", "overrides", "bytes", "bpp",
           "psnr_db", "latent_bpp", "network_bpp", "fit_s", "mac_per_pixel")


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a TSV file with a header line (``[]`` if it does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_tsv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """Rewrite ``path`` atomically with ``rows``."""
    lines = ["\t".join(columns)] + ["\t".join(str(r[c]) for c in columns) for r in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def crop(image: str, box: str) -> np.ndarray:
    """``[h, w, 3]`` uint8 crop ``box`` = "left,top,right,bottom" of Kodak image ``image``."""
    left, top, right, bottom = (int(v) for v in box.split(","))
    with Image.open(KODAK / f"{image}.png") as im:
        return np.asarray(im.convert("RGB").crop((left, top, right, bottom)))


def fitted_params(engine: Engine, target: np.ndarray, lmbdas: list[float], out_dir: Path,
                  stem: str) -> tuple[list[dict], float]:
    """Fit ``target`` ``[h, w, C]`` at every λ in one batch (``engine``: reused across images,
    so each phase compiles once); each fit's parameters are saved to
    ``<out_dir>/<stem>_l<λ>.params.npz``. Returns the parameters and the fit time per fit."""
    codec = engine.codec
    b = len(lmbdas)
    t0 = time.perf_counter()
    fit = fit_batch(codec, np.repeat(target[None], b, 0),
                    np.ones((b,) + target.shape[:2], np.float32), np.asarray(lmbdas, np.float32),
                    np.arange(b), engine=engine, options=engine.options)
    fit_s = (time.perf_counter() - t0) / b
    out = []
    for i, lmbda in enumerate(lmbdas):
        if fit.failed[i]:
            raise SystemExit(f"coolchic_vs_reference: the fit of {stem} at λ={lmbda:g} diverged")
        params = jax.tree.map(lambda x, i=i: np.asarray(x[i]), fit.params)
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        np.savez(out_dir / f"{stem}_l{lmbda:g}.params.npz",
                 **{jax.tree_util.keystr(p): v for p, v in leaves})
        out.append(params)
    return out, fit_s


def saved_params(codec: CoolChic, target: np.ndarray, lmbdas: list[float], src_dir: Path,
                 stem: str) -> list[dict]:
    """The parameters that :func:`fitted_params` saved for ``stem`` at each λ, in ``codec``'s
    pytree structure (raises ``SystemExit`` naming a missing or mismatched file)."""
    template = jax.eval_shape(lambda key: codec.init(key, target.shape), jax.random.key(0))
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for lmbda in lmbdas:
        path = src_dir / f"{stem}_l{lmbda:g}.params.npz"
        if not path.is_file():
            raise SystemExit(f"coolchic_vs_reference: {path} not found (fit that label first)")
        with np.load(path) as saved:
            try:
                leaves = [saved[jax.tree_util.keystr(p)] for p, _ in paths]
            except KeyError as err:
                raise SystemExit(f"coolchic_vs_reference: {path} lacks {err} (another "
                                 "model)") from None
        out.append(jax.tree_util.tree_unflatten(treedef, leaves))
    return out


def fit_image(engine: Engine, image: np.ndarray, lmbdas: list[float],
              out_dir: Path, stem: str, recode_from: Path | None = None) -> list[dict]:
    """Fit ``image`` at every λ (or, with ``recode_from``, load the fits saved there), write,
    decode and check the files; one record each."""
    codec = engine.codec
    target = codec.prepare_target(image)
    if recode_from is None:
        fits, fit_s = fitted_params(engine, target, lmbdas, out_dir, stem)
    else:
        fits, fit_s = saved_params(codec, target, lmbdas, recode_from, stem), 0.0
    records = []
    for params, lmbda in zip(fits, lmbdas, strict=True):
        result = codec.finalize(params, target, image, lmbda)
        path = out_dir / f"{stem}_l{lmbda:g}.nlc"
        atomic_write_bytes(path, result.data)
        decoded = codec.decode(path.read_bytes())
        if not np.array_equal(decoded, result.reconstruction):
            raise SystemExit(f"coolchic_vs_reference: {path} does not decode to the encoder's "
                             "reconstruction")
        records.append({"lmbda": f"{lmbda:g}", "bytes": len(result.data),
                        "bpp": f"{result.info['bpp']:.5f}",
                        "psnr_db": f"{float(psnr(image, decoded)):.4f}",
                        "latent_bpp": f"{result.info['latent_bpp']:.5f}",
                        "network_bpp": f"{result.info['network_bpp']:.5f}",
                        "fit_s": f"{fit_s:.1f}",
                        "mac_per_pixel": f"{result.info['mac_per_pixel']:.0f}"})
    return records


def merge_rows(rows: list[dict], extra: list[dict]) -> list[dict]:
    """``rows`` plus the rows of ``extra`` whose (label, image, box, λ, iterations) it lacks."""
    def key(r):
        return r["label"], r["image"], r["box"], r["lmbda"], r["n_itr"]
    have = {key(r) for r in rows}
    return rows + [r for r in extra if key(r) not in have]


def summarize(rows: list[dict], reference: list[dict]) -> dict:
    """Per label: per-image BD-rate vs the reference, mean BD-rate, mean bpp/PSNR per λ."""
    ref = {}
    for r in reference:
        ref.setdefault(r["image"], []).append((float(r["bpp"]), float(r["psnr_db"])))
    out = {}
    for label in sorted({r["label"] for r in rows}):
        mine = [r for r in rows if r["label"] == label]
        per_image = {}
        for image in sorted({r["image"] for r in mine}):
            pts = sorted((float(r["bpp"]), float(r["psnr_db"])) for r in mine if r["image"] == image)
            anchor = sorted(ref.get(image, []))
            entry = {"points": pts, "reference": anchor}
            if len(pts) >= 2 and len(anchor) >= 2:
                try:
                    entry["bd_rate_pct"] = bd_rate(*zip(*anchor, strict=True),
                                                   *zip(*pts, strict=True))
                except BDError as err:
                    entry["bd_error"] = str(err)
            per_image[image] = entry
        bds = [e["bd_rate_pct"] for e in per_image.values() if "bd_rate_pct" in e]
        by_lmbda = {}
        for lm in sorted({r["lmbda"] for r in mine}, key=float):
            sel = [r for r in mine if r["lmbda"] == lm]
            by_lmbda[lm] = {"n": len(sel), "bpp": float(np.mean([float(r["bpp"]) for r in sel])),
                            "psnr_db": float(np.mean([float(r["psnr_db"]) for r in sel])),
                            "network_bpp": float(np.mean([float(r["network_bpp"]) for r in sel]))}
        out[label] = {"per_image": per_image, "mean_bd_rate_pct": float(np.mean(bds)) if bds
                      else None, "images_with_bd": len(bds), "by_lmbda": by_lmbda,
                      "overrides": mine[0]["overrides"]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_5.0.1_crops_hop_2000.tsv")
    p.add_argument("--images", default="", help="comma-separated (default: the reference's)")
    p.add_argument("--box", default="256,128,512,384")
    p.add_argument("--lmbdas", default="1e-4,1e-3,4e-3,2e-2")
    p.add_argument("--preset", default="hop")
    p.add_argument("--n_itr", type=int, default=2000)
    p.add_argument("--label", default="ours")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override (repeatable), e.g. recipe.optimizer=adam")
    p.add_argument("--output", type=Path,
                   default=ROOT / "benchmarks/results/coolchic_vs_reference")
    p.add_argument("--files", type=Path, default=ROOT / "bench_out/coolchic_vs_reference")
    p.add_argument("--summary_only", action="store_true", help="refit nothing")
    p.add_argument("--recode_from", default="",
                   help="code the fits saved by this label instead of fitting")
    p.add_argument("--merge", type=Path, nargs="+", default=[], metavar="OUTPUT",
                   help="first add the rows (and step times) of other runs' outputs, e.g. "
                        "labels run in parallel with their own --output")
    args = p.parse_args(argv)

    try:
        config = apply_overrides(load_config("coolchic", args.preset),
                                 [f"recipe.n_itr={args.n_itr}", *args.set])
    except ValueError as err:
        raise SystemExit(f"coolchic_vs_reference: {err}") from None
    codec = CoolChic(config)
    reference = [r for r in read_tsv(args.reference)
                 if int(r["n_itr"]) == args.n_itr and r["box"] == args.box]
    images = (args.images.split(",") if args.images
              else list(dict.fromkeys(r["image"] for r in reference)))
    lmbdas = [float(v) for v in args.lmbdas.split(",")]
    tsv = args.output.with_suffix(".tsv")
    rows = read_tsv(tsv)
    merged_steps = {}
    for other in args.merge:
        rows = merge_rows(rows, read_tsv(other.with_suffix(".tsv")))
        if other.with_suffix(".json").is_file():
            merged_steps.update(json.loads(other.with_suffix(".json").read_text())
                                .get("step_times", {}))
    if args.merge:
        write_tsv(tsv, rows, COLUMNS)
    overrides = " ".join(args.set) or "-"
    files = args.files / args.label
    files.mkdir(parents=True, exist_ok=True)
    engine = Engine(codec, options=FitOptions(chunk_steps=100))
    recode = args.files / args.recode_from if args.recode_from else None
    for image in [] if args.summary_only else images:
        done = {r["lmbda"] for r in rows if r["label"] == args.label and r["image"] == image
                and r["box"] == args.box and int(r["n_itr"]) == args.n_itr}
        todo = [lm for lm in lmbdas if f"{lm:g}" not in done]
        if not todo:
            continue
        print(f"{args.label}: {image} λ={','.join(f'{lm:g}' for lm in todo)}", flush=True)
        for rec in fit_image(engine, crop(image, args.box), todo, files, image, recode):
            rows.append({"label": args.label, "image": image, "box": args.box,
                         "n_itr": args.n_itr, "preset": args.preset, "overrides": overrides,
                         **rec})
            print(f"  λ={rec['lmbda']}: {rec['bpp']} bpp {rec['psnr_db']} dB "
                  f"(network {rec['network_bpp']})", flush=True)
        write_tsv(tsv, rows, COLUMNS)

    summary = summarize(rows, reference)
    timing = {}
    if images and not args.summary_only and not args.recode_from:
        timing = {"ours_step_s": time_train_step(codec, crop(images[0], args.box)).step_s,
                  "image": images[0], "label": args.label,
                  "mac_per_pixel": mac_per_pixel(codec.arch)}
    ref_steps = [float(r["s_per_step"]) for r in reference if r.get("s_per_step")]
    result = {"reference": str(args.reference), "box": args.box, "n_itr": args.n_itr,
              "labels": summary, "coolchic_step_s_median": float(np.median(ref_steps))
              if ref_steps else None, "machine": machine_facts()}
    json_path = args.output.with_suffix(".json")
    if json_path.is_file():  # keep the step times measured by earlier runs of other labels
        result["step_times"] = json.loads(json_path.read_text()).get("step_times", {})
    else:
        result["step_times"] = {}
    result["step_times"].update(merged_steps)
    if timing:
        result["step_times"][args.label] = timing
    json_path.write_text(json.dumps(result, indent=2))

    print(f"\n{'label':<24} {'images':>6} {'BD-rate vs Cool-chic 5.0.1':>28} {'step s':>8}")
    for label, s in summary.items():
        bd = "n/a" if s["mean_bd_rate_pct"] is None else f"{s['mean_bd_rate_pct']:+.1f} %"
        st = result["step_times"].get(label, {}).get("ours_step_s")
        print(f"{label:<24} {s['images_with_bd']:>6} {bd:>28} "
              f"{'' if st is None else f'{st:.3f}':>8}")
    if result["coolchic_step_s_median"]:
        print(f"{'Cool-chic 5.0.1':<24} {'':>6} {'anchor':>28} "
              f"{result['coolchic_step_s_median']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
