"""One prepared accelerator check of the batched engine: one command, one JSON, one table.

    bash benchmarks/gpu_suite.sh prepare                      # here: wheels + data to carry
    bash benchmarks/gpu_suite.sh run                          # on the GPU machine (writes $OUT)
    python benchmarks/gpu_suite.py --verify DIR [--out DIR2]  # here: CPU-decode the returned files
    python benchmarks/gpu_suite.py --dry --out /tmp/suite     # CPU, tiny sizes (the test runs it)

Sections, in this order, each inside its share of ``--budget_s`` (items that would not finish
in time are listed under ``skipped`` instead of run; the JSON is rewritten after every item, so
a run killed by its time limit still leaves what it measured):

``throughput``
    COOL-CHIC ``fast`` and ``hop`` main-phase throughput (``nlc_jax.fit.throughput``) on a Kodak
    image at full size, at batch sizes 1, 16, 64, 256 (``--batch_sizes``) until memory runs
    out: image-steps/s, images/hour of the full recipe, MiB per fit, achieved TFLOP/s (6 ×
    MAC/pixel × pixels per image-step) against the device's FP32 peak, and the ratio to batch 1
    (one fit at a time).
``projection``
    Kodak-24 × 4 λ with the full ``hop`` recipe from those rates: per batch size, the fits of
    each Kodak shape bucket in batches (filler fits counted), plus the measured compile time and
    finalize (entropy coding) time per file.
``files``
    A real short encode (``fit_batch`` then ``finalize``, the documented Python API) of Kodak
    images × 2 λ with ``fast`` and ``hop`` decoders and a short recipe; each preset's ``.nlc``
    files, the encoder's reconstructions (PNG) and a manifest go into ``gpu_files_<preset>.tar``.
    ``--verify`` decodes them on another machine and checks bit-exactness.
``autoencoders``
    TAEF2 and SD-VAE encode/decode images/s at 768×512, float32 and bfloat16
    (``benchmarks/autoencoder_speed.py``'s cells).
``clric``
    CLRIC (``paper`` decoder, TAEF2 latent) main-phase throughput at batch 1 and 16 (``--dry``:
    the ``fast`` decoder at batch 1).
``kodak_full``
    The real Kodak-24 × 4 λ ``hop`` run through ``encode_images``, only when the projection
    says it fits in the time left.

Writes ``gpu_suite.json``, ``gpu_suite.md`` (the tables) and the tars into ``--out``.
A section that fails is recorded under ``skipped`` with its error and the others still run
(exit status 1). Without ``--dry`` it refuses to run on a CPU backend (one line, exit 2).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

if "--dry" in sys.argv or "--verify" in sys.argv:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "--dry" in sys.argv:  # XLA:CPU optimises less: --dry checks the suite, not the speed
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_"
                               "level=0 --xla_llvm_disable_expensive_passes=true").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

import autoencoder_speed  # noqa: E402  (this script's folder; gpu_suite.sh puts the repo on PYTHONPATH)

from nlc_jax.codecs import registry  # noqa: E402
from nlc_jax.codecs.coolchic.arch import mac_per_pixel  # noqa: E402
from nlc_jax.configs import clric as clric_configs  # noqa: E402
from nlc_jax.configs import coolchic as coolchic_configs  # noqa: E402
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.fit import Engine, FitOptions, fit_batch, make_mesh  # noqa: E402
from nlc_jax.fit.buckets import bucket_shape  # noqa: E402
from nlc_jax.fit.throughput import (  # noqa: E402
    device_peak,
    is_out_of_memory,
    recipe_image_steps,
    time_main_chunk,
)

KODAK_LMBDAS = (0.0001, 0.0004, 0.001, 0.004)
FILE_LMBDAS = (0.001, 0.004)


class Budget:
    """Wall-clock budget: sections end at a fraction of it, items start only if they fit."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, share: float = 1.0) -> float:
        """Seconds left until ``share`` of the budget is spent."""
        return self.start + share * self.seconds - time.monotonic()


class Suite:
    """Run state: the budget, the output folder and the JSON written after every item."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.budget = Budget(args.budget_s)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        device = jax.local_devices()[0]
        peak = device_peak(device.device_kind)
        self.peak = peak
        self.results: dict = {
            "device": f"{device.device_kind} x{len(jax.local_devices())}",
            "platform": device.platform, "jax": jax.__version__, "host": platform.node(),
            "dry": args.dry, "budget_s": args.budget_s,
            "peak": None if peak is None else {
                "fp32_tflops": peak.fp32_tflops, "tf32_tflops": peak.tf32_tflops,
                "hbm_tb_s": peak.hbm_tb_s, "source": peak.source},
            "sections": {}, "skipped": []}

    def section(self, name: str) -> dict:
        return self.results["sections"].setdefault(name, {})

    def skip(self, what: str, why: str) -> None:
        self.results["skipped"].append(f"{what}: {why}")
        print(f"skipped {what}: {why}", flush=True)

    def fits(self, what: str, estimate_s: float, share: float) -> bool:
        """Whether an item estimated at ``estimate_s`` ends before ``share`` of the budget."""
        left = self.budget.left(share)
        if estimate_s > left:
            self.skip(what, f"budget (needs ~{estimate_s:.0f} s, {max(left, 0):.0f} s left)")
            return False
        return True

    def save(self) -> None:
        self.results["elapsed_s"] = self.budget.elapsed()
        (self.out / "gpu_suite.json").write_text(json.dumps(self.results, indent=1) + "\n")
        (self.out / "gpu_suite.md").write_text(tables(self.results))


# ---- inputs ----------------------------------------------------------------------------------
def kodak_images(args: argparse.Namespace) -> tuple[list[tuple[str, np.ndarray]], str]:
    """``[(stem, image)]`` of the inputs and where they came from (``--dry``: 64×64 crops of
    ``samples/``; else Kodak from ``--kodak``, falling back to ``samples/``)."""
    folder = Path(args.kodak)
    paths = sorted(folder.glob("kodim*.png")) if folder.is_dir() else []
    source = str(folder)
    if args.dry or not paths:
        paths, source = sorted((ROOT / "samples").glob("*.png")), "samples"
    images = [(p.stem, load_image(p)) for p in paths]
    if args.dry:
        images = [(s, im[:64, :64]) for s, im in images]
    return images, source


# --dry: a small COOL-CHIC (4 latent grids, no hyper-latents, IFCE or stabilisers; Adam, no
# weight RDOQ) so that the suite's code runs in minutes on a CPU; the codec has its own tests.
DRY_MODEL = {"n_levels": 4, "n_hyper": 0, "ifce_levels": 0, "arm_stabiliser": False,
             "synthesis_stabiliser": False}
DRY_RECIPE = {"optimizer": "adam", "rdoq_passes": 0, "n_candidates": 2}


def coolchic_codec(preset: str, n_itr: int | None = None, dry: bool = False):
    """The preset's codec; with ``n_itr`` a short recipe (warm-ups and final phase shrunk);
    ``dry``: :data:`DRY_MODEL` and :data:`DRY_RECIPE` applied."""
    config = coolchic_configs.get_config(preset)
    if n_itr is not None:
        config.recipe.n_itr = n_itr
        config.recipe.warmup_steps = max(n_itr // 12, 1)
        config.recipe.final_steps = max(n_itr // 6, 1)
    if dry:
        config.model.update(DRY_MODEL)
        config.recipe.update(DRY_RECIPE)
    return registry.make(config)


# ---- sections --------------------------------------------------------------------------------
def run_throughput(suite: Suite, image: np.ndarray, name: str, preset: str, codec,
                   batches: list[int], share: float, label: str = "throughput") -> list[dict]:
    """Main-phase throughput of ``codec`` at growing batch sizes until memory or budget."""
    args, mesh = suite.args, make_mesh()
    sec = suite.section(label)
    sec.update(image=name, size=list(image.shape[:2]), steps=args.steps)
    runs = sec.setdefault("runs", [])
    macs = mac_per_pixel(codec.arch)
    target_shape = np.shape(codec.prepare_target(image))
    pixels = target_shape[0] * target_shape[1]
    mine, last = [], None
    for batch in batches:
        if batch % mesh.size:
            continue
        what = f"{label} {preset} B={batch}"
        estimate = suite.args.first_compile_s if last is None else (
            1.3 * last["compile_s"] + 2.5 * last["seconds"] * batch / last["batch"] + 2.0)
        if not suite.fits(what, estimate, share):
            break
        try:
            run = time_main_chunk(codec, image, batch, args.steps, mesh)
        except Exception as e:  # noqa: BLE001 - XLA raises its own runtime error type
            if not is_out_of_memory(e):
                raise
            suite.skip(what, "out of memory")
            break
        flops = 6.0 * macs * pixels * run["image_steps_per_s"]
        run.update(preset=preset, mac_per_pixel=macs, positions=pixels,
                   vs_batch1=run["image_steps_per_s"] / (mine[0]["image_steps_per_s"]
                                                         if mine else run["image_steps_per_s"]),
                   achieved_tflops=flops / 1e12,
                   fp32_peak_fraction=None if suite.peak is None else
                   flops / (suite.peak.fp32_tflops * 1e12))
        runs.append(run)
        mine.append(run)
        last = run
        print(f"{what}: {run['image_steps_per_s']:.1f} image-steps/s, "
              f"{run['images_per_hour']:.1f} images/h, x{run['vs_batch1']:.2f} vs B=1, "
              f"compile {run['compile_s']:.1f} s", flush=True)
        suite.save()
    return mine


def kodak_buckets(images: list[tuple[str, np.ndarray]], multiple: int = 64) -> dict:
    """Kodak-24's bucket shapes → fit counts for 4 λ (16 landscape + 8 portrait images on the
    real set; the inputs' own shapes otherwise)."""
    counts: dict[tuple[int, int], int] = {}
    for _, im in images:
        key = bucket_shape(im.shape[0], im.shape[1], multiple)
        counts[key] = counts.get(key, 0) + len(KODAK_LMBDAS)
    return counts


def run_projection(suite: Suite, preset: str, hop_runs: list[dict], images: list,
                   finalize_s: float | None) -> dict:
    """Projected Kodak × 4 λ time of ``preset``'s full recipe from its measured rates (the
    inputs' shape buckets, filler fits of partial batches counted)."""
    engine = Engine(coolchic_codec(preset))
    steps = recipe_image_steps(engine)
    buckets = kodak_buckets(images)
    kodak_px = sum(h * w * n for (h, w), n in buckets.items()) / sum(buckets.values())
    measured_px = hop_runs[0]["positions"]
    rows = []
    for run in hop_runs:
        b = run["batch"]
        rate = run["image_steps_per_s"] * measured_px / kodak_px  # same work per pixel
        computed = sum(math.ceil(n / b) * b for n in buckets.values())
        rows.append({"batch": b, "fits_computed": computed,
                     "fit_s": computed * steps / rate})
    best = min(rows, key=lambda r: r["fit_s"])
    n_fits = sum(buckets.values())
    compile_s = 3 * len(buckets) * hop_runs[-1]["compile_s"]  # warm-up, main, final chunks
    final_s = None if finalize_s is None else finalize_s * n_fits
    total = best["fit_s"] + compile_s + (final_s or 0.0)
    proj = {"preset": preset, "fits": n_fits, "buckets": {f"{h}x{w}": n for (h, w), n in buckets.items()},
            "recipe_image_steps": steps, "per_batch": rows, "best_batch": best["batch"],
            "fit_s": best["fit_s"], "compile_s": compile_s, "finalize_s_per_fit": finalize_s,
            "finalize_s": final_s, "total_s": total,
            "speedup_vs_one_at_a_time": max(r["image_steps_per_s"] for r in hop_runs)
            / hop_runs[0]["image_steps_per_s"] if hop_runs[0]["batch"] == 1 else None,
            "goal_30x": None, "goal_10_min": total <= 600.0}
    if proj["speedup_vs_one_at_a_time"] is not None:
        proj["goal_30x"] = proj["speedup_vs_one_at_a_time"] >= 30.0
    suite.results["sections"]["projection"] = proj
    print(f"projection: Kodak x4 lambda, {preset} full recipe: {total:.0f} s "
          f"(fits {best['fit_s']:.0f} s at B={best['batch']}, compile {compile_s:.0f} s, "
          f"finalize {final_s or 0:.0f} s)", flush=True)
    suite.save()
    return proj


def run_files(suite: Suite, images: list, preset: str, share: float) -> float | None:
    """Short real encodes; returns the steady finalize (entropy coding) seconds per file."""
    args = suite.args
    n_itr = 16 if args.dry else args.file_itr
    codec = coolchic_codec(preset, n_itr, args.dry)
    shape = images[0][1].shape
    chosen = [(s, im) for s, im in images if im.shape == shape][:args.file_images]
    fits = [(s, im, lm) for s, im in chosen for lm in FILE_LMBDAS]
    what = f"files {preset} ({len(fits)} fits, {n_itr} steps)"
    if not suite.fits(what, 60.0 if args.dry else 90.0, share):
        return None
    targets = np.stack([np.asarray(codec.prepare_target(im), np.float32) for _, im, _ in fits])
    masks = np.ones(targets.shape[:3], np.float32)
    lmbdas = np.array([lm for *_, lm in fits], np.float32)
    seeds = np.arange(len(fits))
    t0 = time.perf_counter()
    fit = fit_batch(codec, targets, masks, lmbdas, seeds, mesh=make_mesh(),
                    options=FitOptions(chunk_steps=4 if args.dry else 50))
    fit_s = time.perf_counter() - t0
    manifest, finalize_s = [], []
    tar_path = suite.out / f"gpu_files_{preset}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for i, (stem, im, lm) in enumerate(fits):
            if fit.failed[i]:
                suite.skip(f"{what} {stem} lmbda {lm:g}", "fit diverged")
                continue
            t0 = time.perf_counter()
            result = codec.finalize(jax.tree.map(lambda x, i=i: x[i], fit.params), targets[i],
                                    im, float(lm))
            finalize_s.append(time.perf_counter() - t0)
            name = f"{stem}_lmbda{lm:g}"
            png = io.BytesIO()
            Image.fromarray(result.reconstruction).save(png, format="PNG")
            _add(tar, f"{name}.nlc", result.data)
            _add(tar, f"{name}.png", png.getvalue())
            manifest.append({"name": name, "lmbda": float(lm), "bpp": result.info["bpp"],
                             "psnr_db": result.info["psnr_db"],
                             "nlc_sha256": hashlib.sha256(result.data).hexdigest(),
                             "recon_sha256": _array_hash(result.reconstruction)})
        _add(tar, "manifest.json", json.dumps({"preset": preset, "device": suite.results[
            "device"], "files": manifest}, indent=1).encode())
    # the first file compiles the coding helpers; the median of the others is the steady cost
    steady = float(np.median(finalize_s[1:] or finalize_s)) if finalize_s else None
    suite.section("files")[preset] = {
        "fits": len(fits), "recipe_steps": sum(p.steps for p in codec.recipe()),
        "fit_s": fit_s, "finalize_first_s": finalize_s[0] if finalize_s else None,
        "finalize_s_per_file": steady, "archive": tar_path.name,
        "bpp": [m["bpp"] for m in manifest], "psnr_db": [m["psnr_db"] for m in manifest]}
    print(f"{what}: fit {fit_s:.1f} s, finalize {steady or 0:.2f} s/file (first "
          f"{finalize_s[0] if finalize_s else 0:.1f} s), wrote {tar_path.name}", flush=True)
    suite.save()
    return steady


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _array_hash(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a, np.uint8)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


def run_autoencoders(suite: Suite, share: float) -> None:
    args = suite.args
    models = ("taef2",) if args.dry else ("taef2", "sd")
    dtypes = ("float32",) if args.dry else ("float32", "bfloat16")
    w, h = (64, 64) if args.dry else (768, 512)
    rows = suite.section("autoencoders").setdefault("rows", [])
    for model in models:
        for dt in dtypes:
            what = f"autoencoders {model} {dt} {w}x{h}"
            if not suite.fits(what, 20.0 if model == "taef2" else 60.0, share):
                return
            fns, params, source = autoencoder_speed.build(model, autoencoder_speed.DTYPES[dt],
                                                          Path(args.weights))
            cell = autoencoder_speed.bench_cell(fns, params, w, h, 1 if args.dry else 5)
            rows.append({"model": model, "weights": source, "dtype": dt, "size": f"{w}x{h}",
                         **cell})
            print(f"{what}: encode {cell['encode_img_s']:.1f} img/s, decode "
                  f"{cell['decode_img_s']:.1f} img/s", flush=True)
            suite.save()


def run_clric(suite: Suite, image: np.ndarray, name: str, share: float) -> None:
    args = suite.args
    if not suite.fits("clric", 40.0, share):
        return
    config = clric_configs.get_config("fast" if args.dry else "paper")
    weights = Path(args.weights)
    if (weights / "taef2_encoder.pth").is_file():
        config.weights_dir = str(weights)
        codec = registry.make(config)
    else:  # speed does not depend on the weights' values
        from nlc_jax.codecs.clric.autoencoder import BoundAutoencoder
        from nlc_jax.codecs.clric.codec import Clric
        fns, params, _ = autoencoder_speed.build("taef2", autoencoder_speed.DTYPES["float32"],
                                                 weights)
        codec = Clric(config, BoundAutoencoder.of("taef2", fns, params))
    suite.section("clric").update(preset=str(config.preset),
                                  weights="shared" if config.weights_dir else "random")
    run_throughput(suite, image, name, f"clric-{config.preset}", codec,
                   [1] if args.dry else [1, 16], share, label="clric")


def run_kodak_full(suite: Suite, proj: dict | None, share: float) -> None:
    """The full ``hop`` recipe on the inputs × 4 λ through ``encode_images``, if it fits."""
    if suite.args.dry:
        suite.skip("kodak_full", "--dry")
        return
    if proj is None or not suite.fits("kodak_full", 1.2 * proj["total_s"], share):
        return
    from nlc_jax.data.datasets import open_inputs
    from nlc_jax.fit import EncodeSettings, encode_images

    codec = coolchic_codec("hop")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = encode_images(codec, open_inputs(suite.args.kodak), tmp, EncodeSettings(
            lmbdas=KODAK_LMBDAS, batch_size=proj["best_batch"], checkpoint_every_s=None,
            progress=False))
        seconds = time.perf_counter() - t0
        table = (Path(tmp) / "results.tsv").read_bytes()
    (suite.out / "kodak_full_results.tsv").write_bytes(table)
    suite.results["sections"]["kodak_full"] = {
        "seconds": seconds, "files": len(outcome.rows), "errors": outcome.errors,
        "mean_bpp": float(np.mean([r["bpp"] for r in outcome.rows])),
        "mean_psnr_db": float(np.mean([r["psnr_db"] for r in outcome.rows]))}
    print(f"kodak_full: {len(outcome.rows)} files in {seconds:.0f} s", flush=True)
    suite.save()


# ---- report ----------------------------------------------------------------------------------
def _f(x, fmt: str = ".1f") -> str:
    return "n/a" if x is None else format(x, fmt)


def tables(results: dict) -> str:
    """The Markdown tables of a ``gpu_suite.json``."""
    s = results["sections"]
    lines = [f"# gpu_suite: {results['device']} (jax {results['jax']}, dry={results['dry']}, "
             f"{results.get('elapsed_s', 0):.0f} s)", ""]
    for label in ("throughput", "clric"):
        if s.get(label, {}).get("runs"):
            sec = s[label]
            lines += [f"## {label}: {sec['image']} {sec['size'][0]}x{sec['size'][1]}, "
                      f"{sec['steps']} timed steps", "",
                      "| preset | B | image-steps/s | images/h | vs B=1 | MiB/fit | TFLOP/s | "
                      "FP32 peak | compile s |", "|---|---|---|---|---|---|---|---|---|"]
            for r in sec["runs"]:
                peak = r["fp32_peak_fraction"]
                lines.append(
                    f"| {r['preset']} | {r['batch']} | {r['image_steps_per_s']:.1f} | "
                    f"{r['images_per_hour']:.1f} | {r['vs_batch1']:.2f} | "
                    f"{_f(r['memory_per_fit_mib'])} | {r['achieved_tflops']:.3f} | "
                    f"{'n/a' if peak is None else f'{peak:.1%}'} | {r['compile_s']:.1f} |")
            lines.append("")
    if "projection" in s:
        p = s["projection"]
        lines += [f"## projection: Kodak-24 x 4 lambda, full {p['preset']} recipe", "",
                  f"{p['fits']} fits ({p['buckets']}), {p['recipe_image_steps']} "
                  f"candidate-weighted steps per fit; best batch {p['best_batch']}: fits "
                  f"{p['fit_s']:.0f} s + compile {p['compile_s']:.0f} s + finalize "
                  f"{_f(p['finalize_s'], '.0f')} s = **{p['total_s']:.0f} s** "
                  f"(goal <= 600 s: {p['goal_10_min']}); batched vs one at a time "
                  f"x{_f(p['speedup_vs_one_at_a_time'])} (goal >= 30: {p['goal_30x']})", ""]
    if s.get("files"):
        lines += ["## files (GPU encode; `--verify` decodes them)", "",
                  "| preset | fits | steps | fit s | finalize s/file | mean bpp | mean PSNR |",
                  "|---|---|---|---|---|---|---|"]
        for preset, f in s["files"].items():
            lines.append(f"| {preset} | {f['fits']} | {f['recipe_steps']} | {f['fit_s']:.1f} | "
                         f"{_f(f['finalize_s_per_file'], '.2f')} | "
                         f"{_f(np.mean(f['bpp']) if f['bpp'] else None, '.3f')} | "
                         f"{_f(np.mean(f['psnr_db']) if f['psnr_db'] else None, '.2f')} |")
        lines.append("")
    if s.get("autoencoders", {}).get("rows"):
        lines += ["## autoencoders (batch 1)", "", "| model | dtype | size | weights | "
                  "encode img/s | decode img/s |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['dtype']} | {r['size']} | {r['weights']} | "
                  f"{r['encode_img_s']:.2f} | {r['decode_img_s']:.2f} |"
                  for r in s["autoencoders"]["rows"]]
        lines.append("")
    if "kodak_full" in s:
        k = s["kodak_full"]
        lines += [f"## kodak_full: {k['files']} files in {k['seconds']:.0f} s, mean "
                  f"{k['mean_bpp']:.3f} bpp, {k['mean_psnr_db']:.2f} dB", ""]
    if results["skipped"]:
        lines += ["## skipped", ""] + [f"* {x}" for x in results["skipped"]] + [""]
    return "\n".join(lines)


# ---- verification (CPU side) -----------------------------------------------------------------
def verify(folder: Path) -> list[dict]:
    """Decode every ``.nlc`` of the ``gpu_files_*.tar`` in ``folder`` on this machine and
    compare with the encoder's reconstruction: one row per file (``exact``, ``max_abs_diff``,
    ``differing_pixels``, ``hash_match``)."""
    rows = []
    for tar_path in sorted(folder.glob("gpu_files_*.tar")):
        with tarfile.open(tar_path) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
            for entry in manifest["files"]:
                data = tar.extractfile(f"{entry['name']}.nlc").read()
                recon = np.asarray(Image.open(io.BytesIO(
                    tar.extractfile(f"{entry['name']}.png").read())).convert("RGB"))
                decoded = registry.decode_bytes(data)
                same_shape = decoded.shape == recon.shape
                diff = (np.abs(decoded.astype(np.int16) - recon.astype(np.int16))
                        if same_shape else None)
                rows.append({
                    "archive": tar_path.name, "name": entry["name"],
                    "encoded_on": manifest["device"],
                    "nlc_sha256_match": hashlib.sha256(data).hexdigest() == entry["nlc_sha256"],
                    "recon_sha256_match": _array_hash(recon) == entry["recon_sha256"],
                    "exact": bool(same_shape and not diff.any()),
                    "max_abs_diff": None if diff is None else int(diff.max()),
                    "differing_pixels": None if diff is None else int(diff.any(-1).sum())})
    return rows


def main_verify(args: argparse.Namespace) -> int:
    folder = Path(args.verify)
    rows = verify(folder)
    if not rows:
        print(f"gpu_suite.py: error: no gpu_files_*.tar in {folder}", file=sys.stderr)
        return 2
    ok = all(r["exact"] and r["nlc_sha256_match"] and r["recon_sha256_match"] for r in rows)
    for r in rows:
        print(f"{r['archive']} {r['name']}: {'bit-exact' if r['exact'] else 'MISMATCH'} "
              f"(max |diff| {r['max_abs_diff']}, {r['differing_pixels']} pixels)")
    report = {"decoded_on": f"{jax.local_devices()[0].device_kind} ({platform.node()})",
              "files": len(rows), "all_exact": ok, "rows": rows}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "verify.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{sum(r['exact'] for r in rows)}/{len(rows)} files bit-exact")
    return 0 if ok else 1


# ---- main ------------------------------------------------------------------------------------
SECTIONS = ("throughput", "files", "autoencoders", "clric", "kodak_full")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry", action="store_true", help="CPU, tiny sizes (a few minutes)")
    ap.add_argument("--verify", default=None, metavar="DIR",
                    help="decode the gpu_files_*.tar in DIR and check bit-exactness")
    ap.add_argument("--out", default=None, help="output folder (default: $OUT or bench_out)")
    ap.add_argument("--budget_s", type=float, default=None,
                    help="wall-clock budget (default 450 s; --dry 600 s)")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--batch_sizes", default="1,16,64,256",
                    help="in order; growing stops at the first out-of-memory")
    ap.add_argument("--first_compile_s", type=float, default=60.0,
                    help="time assumed for a preset's first point before one was measured")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per point (20; dry 2)")
    ap.add_argument("--file_images", type=int, default=4, help="images per files preset")
    ap.add_argument("--file_itr", type=int, default=240, help="recipe steps of the files run")
    default_data = ROOT / ".gpu_suite"
    ap.add_argument("--kodak", default=str(default_data / "kodak" if default_data.is_dir()
                                           else ROOT.parent / "shared/data/kodak"))
    ap.add_argument("--weights", default=str(default_data / "weights" if default_data.is_dir()
                                             else ROOT.parent / "shared/weights"))
    args = ap.parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 600.0 if args.dry else 450.0
    if args.steps is None:
        args.steps = 2 if args.dry else 20
    if args.out is None and args.verify is None:
        args.out = os.environ.get("OUT") or str(ROOT / "bench_out")
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {', '.join(sorted(unknown))}; choose from "
                 f"{', '.join(SECTIONS)}")
    try:
        args.batches = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        ap.error(f"--batch_sizes must be comma-separated integers, got {args.batch_sizes!r}")
    if args.steps < 1 or any(b < 1 for b in args.batches):
        ap.error("--steps and every batch size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verify is not None:
        return main_verify(args)
    if not args.dry and jax.default_backend() == "cpu":
        print("gpu_suite.py: error: no accelerator (jax backend is cpu); use --dry on a CPU",
              file=sys.stderr)
        return 2
    suite = Suite(args)
    wanted = set(args.sections.split(","))
    images, source = kodak_images(args)
    name, image = images[0]
    suite.results["inputs"] = {"source": source, "images": len(images)}
    print(f"gpu_suite: {suite.results['device']}, inputs {source} ({len(images)}), budget "
          f"{args.budget_s:.0f} s", flush=True)
    presets = ("fast",) if args.dry else ("fast", "hop")
    batches = [1, 2] if args.dry else args.batches
    # (section, preset, end of its share of the budget); files hop last: its compiles are big
    plan = [("throughput", "fast", 0.2), ("throughput", "hop", 0.5), ("files", "fast", 0.6),
            ("autoencoders", None, 0.7), ("clric", None, 0.8), ("files", "hop", 0.9)]
    runs: dict[str, list[dict]] = {}
    finalize: dict[str, float | None] = {}
    failed = []

    def guarded(what: str, fn, *fn_args):
        """Run one section; an error is recorded (and its traceback printed) and the suite
        goes on: a device lease is too short to lose the other sections to one failure."""
        try:
            return fn(*fn_args)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            failed.append(what)
            suite.skip(what, f"error: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            return None

    for section, preset, share in plan:
        if section not in wanted or (preset is not None and preset not in presets):
            continue
        what = f"{section} {preset or ''}".strip()
        if section == "throughput":
            runs[preset] = guarded(what, lambda p=preset, s=share: run_throughput(
                suite, image, name, p, coolchic_codec(p, dry=args.dry), batches, s)) or []
        elif section == "files":
            finalize[preset] = guarded(what, run_files, suite, images, preset, share)
        elif section == "autoencoders":
            guarded(what, run_autoencoders, suite, share)
        else:
            guarded(what, run_clric, suite, image, name, share)
    target = presets[-1]  # hop; fast in --dry
    proj = None
    if runs.get(target):
        proj = guarded("projection", run_projection, suite, target, runs[target], images,
                       finalize.get(target))
    if "kodak_full" in wanted:
        guarded("kodak_full", run_kodak_full, suite, proj, 1.0)
    suite.save()
    print(tables(suite.results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
