"""GLC rate–distortion–perception of one trained model against its ablations and the anchors:
bpp, PSNR, MS-SSIM, LPIPS (and patch FID) per image, rate index and hyper-index coding
(fixed-length ``log2 Kz`` bits, or the learned categorical prior), with the autoencoder's own
round trips (the quality ceiling) and BD-rate of the main curve against every other one.

    python benchmarks/glc_rd.py --checkpoint runs/glc_tc [--images ../shared/data/kodak] \\
        [--max_images 0 | --names kodim01,…] [--rate_indices 0,1,2,3] \\
        [--hyper_coding entropy,fixed] [--ablations runs/glc_nocp:no code prediction,…] \\
        [--classic 'jpeg:1,3,5;webp:0,2,5'] [--compare benchmarks/results/rvdiff_rd_kodak.tsv,…] \\
        [--published ../shared/reference/msillm-results.csv:kodak] [--fid] \\
        [--lpips_net alex] [--files /tmp/glc_files] [--output benchmarks/results/glc_rd]

Every image is coded for real (``.nlc`` bytes of :class:`nlc_jax.codecs.glc.GLCCodec`), decoded
again from the bytes and checked bit-exact against the encoder's reconstruction; the rate is the
file size (container, header, hyper and latent streams). Encode and decode are timed per image
after one warm-up image per codec (compilation excluded, reported separately). The first
``--hyper_coding`` of the main model is the *main* curve; with ``--hyper_coding ''`` nothing is
coded and the main curve (``ours: glc (entropy hyper indices)``) comes from ``--compare``, a TSV
this script wrote (e.g. its Kodak-24 run, compared on a subset with ``--names``).

* ``--ablations`` adds other stage-II models (``DIR:label``), each coded at every rate index with
  its own hyper coding (e.g. a model trained without code prediction, or with the factorized
  hyperprior).
* The stage-I autoencoder's round trips, both from the model's own weights: the continuous latent
  decoded as is (GLC's ceiling: what a lossless latent codec would give), and the VQ round trip
  (the codebook indices, at their ``log2 K`` bits per latent position).
* ``--classic``, ``--compare`` and ``--published``: JPEG / WebP coded here, other benchmarks'
  per-image records (TSV / JSON; only the images coded here), published dataset-mean curves
  (use only when the images are that whole dataset); see :mod:`nlc_jax.metrics.rd_report`.

Writes ``<output>.tsv`` (per-image records), ``<output>.json`` (mean curves with the hyper
bits, BD numbers, ceilings, patch FID, per-setting timings, the model's config and training
budget, machine facts), ``<output>_{psnr_db,lpips}.png`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = Path(__file__).resolve().parents[1]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from nlc_jax.autoencoders.vqgan import VQAutoencoder, VQConfig  # noqa: E402
from nlc_jax.bitstream import SectionType  # noqa: E402
from nlc_jax.bitstream.container import read_image_container  # noqa: E402
from nlc_jax.codecs.glc import make_codec  # noqa: E402
from nlc_jax.codecs.weights import load_inference  # noqa: E402
from nlc_jax.data.datasets import open_inputs  # noqa: E402
from nlc_jax.data.files import atomic_write_bytes  # noqa: E402
from nlc_jax.data.images import to_uint8  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402
from nlc_jax.metrics.lpips import load_lpips_params  # noqa: E402
from nlc_jax.metrics.rd import METRICS, write_tsv  # noqa: E402
from nlc_jax.metrics.rd_report import (  # noqa: E402
    DecodedSets,
    ReportArgumentError,
    bd_against_all,
    classic_records,
    compared_records,
    curve_json,
    curves_of,
    image_quality,
    parse_classic,
    patch_fids,
    plot_curves,
    select_sources,
)
from nlc_jax.metrics.round_trip import timed_round_trips  # noqa: E402


def codec_name(mode: str) -> str:
    """Display name of the model with one hyper coding."""
    return f"ours: glc ({mode} hyper indices)"


def training_budget(checkpoint: Path) -> dict:
    """Steps, batch, crop and last logged metrics of the run that made ``checkpoint`` (empty
    when ``checkpoint`` is an export folder without its run)."""
    workdir = checkpoint.parent if checkpoint.name == "export" else checkpoint
    if not (workdir / "metrics.jsonl").exists():
        return {}
    config = json.loads((workdir / "config.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    train = [r for r in rows if r["split"] == "train"]
    steps = int(train[-1]["step"]) if train else 0
    return {"workdir": str(workdir), "stage": config.get("stage"), "steps": steps,
            "batch_size": config["batch_size"], "crop": config["crop"],
            "preset": config.get("preset"), "data": config["data"],
            "last_train_metrics": {k: v for k, v in train[-1].items()
                                   if k not in ("step", "split", "time")} if train else {}}


def code_images(checkpoint: Path, label: str, rate_index: int, mode: str | None, sources,
                lpips_params, files: Path | None, decoded_sets: DecodedSets
                ) -> tuple[list[dict], dict]:
    """Encode + decode + measure every image at one rate index and hyper coding (None: the
    model's own)."""
    codec = make_codec({"checkpoint": str(checkpoint), "rate_index": rate_index,
                        "hyper_coding": mode or ""})
    point = f"r{rate_index}"
    trips, timing = timed_round_trips(codec, sources, None if files is None
                                      else files / f"{label}_{point}", f"{label}, rate {point}")
    records = []
    for name, image, data, decoded in trips:
        h, w = image.shape[:2]
        container = read_image_container(data, "glc")
        records.append({"codec": label, "point": point, "image": name,
                        "bpp": 8.0 * len(data) / (h * w),
                        "bpp_z": 8.0 * len(container.section(SectionType.HYPER)) / (h * w),
                        "bpp_y": 8.0 * len(container.section(SectionType.LATENTS)) / (h * w),
                        **image_quality(image, decoded, lpips_params)})
        decoded_sets.setdefault((label, point), []).append(decoded)
    print(f"{label:48s} {point}  bpp {np.mean([r['bpp'] for r in records]):.4f} "
          f"(z {np.mean([r['bpp_z'] for r in records]):.4f})  "
          f"PSNR {np.mean([r['psnr_db'] for r in records]):6.2f}  "
          f"LPIPS {np.mean([r.get('lpips', np.nan) for r in records]):.4f}  "
          f"decode {timing['decode_s_mean']:.2f} s", flush=True)
    return records, timing


def autoencoder_round_trips(params: dict, model_config: dict, images: dict[str, np.ndarray],
                            lpips_params, decoded_sets: DecodedSets) -> list[dict]:
    """The VQ autoencoder of a loaded model (``params``, ``model_config`` of
    :func:`~nlc_jax.codecs.weights.load_inference`) on every image (edge-padded to its factor,
    cropped back): the continuous latent decoded as is (``"<ae> continuous"``, bpp 0: no rate
    is counted) and its VQ round trip (``"<ae> VQ indices"`` at ``log2 K`` bits per latent
    position)."""
    config = VQConfig.from_dict(model_config["vq"])
    model = VQAutoencoder(config)
    vq = jax.tree.map(jnp.asarray, params["autoencoder"])

    @jax.jit
    def both(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        y = model.apply(vq, x, method="latent")
        q = model.apply(vq, model.apply(vq, y, method="indices"), method="embed")
        return model.apply(vq, y, method="decode"), model.apply(vq, q, method="decode")

    index_bits = math.log2(config.quantizer.codebook_size)
    records = []
    for name, image in images.items():
        h, w = image.shape[:2]
        f = config.factor
        padded = np.pad(image, ((0, -h % f), (0, -w % f), (0, 0)), "edge")
        continuous, quantized = both(jnp.asarray(padded[None], jnp.float32) / 255.0)
        positions = padded.shape[0] * padded.shape[1] // f ** 2
        for label, out, bpp in (("VQ autoencoder: continuous latent", continuous, 0.0),
                                ("VQ autoencoder: VQ indices", quantized,
                                 index_bits * positions / (h * w))):
            decoded = to_uint8(np.asarray(out[0, :h, :w]))
            records.append({"codec": label, "point": "ae", "image": name, "bpp": bpp,
                            **image_quality(image, decoded, lpips_params)})
            decoded_sets.setdefault((label, "ae"), []).append(decoded)
    return records


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="stage-II/III workdir or its export/")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--max_images", type=int, default=0, help="first N images (0: all)")
    p.add_argument("--names", default="", help="only these images (comma-separated stems)")
    p.add_argument("--rate_indices", default="", help="comma-separated; default: all")
    p.add_argument("--hyper_coding", default="entropy,fixed",
                   help="codings of the main model's hyper indices; the first is the main curve")
    p.add_argument("--ablations", default="", help="DIR:label,… other stage-II models")
    p.add_argument("--classic", default="", help="JPEG/WebP ladders, e.g. 'jpeg:1,3;webp:0,2'")
    p.add_argument("--compare", default="", help="TSV/JSON records of other benchmarks")
    p.add_argument("--published", default="", help="CSV:dataset of published mean curves")
    p.add_argument("--fid", action="store_true", help="patch FID of every decoded set")
    p.add_argument("--lpips_net", default="alex", help="alex, vgg, or none")
    p.add_argument("--files", default="", help="also keep the .nlc files here")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "glc_rd"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    checkpoint = Path(args.checkpoint)
    try:
        classic = parse_classic(args.classic)
        sources = select_sources(open_inputs(args.images), args.names, args.max_images)
    except ReportArgumentError as err:
        raise SystemExit(f"error: {err}") from None
    params, model_config, digest = load_inference(checkpoint)
    images = {s.name: s.load() for s in sources}
    names = list(images)
    rates = ([int(r) for r in args.rate_indices.split(",")] if args.rate_indices
             else list(range(len(model_config["lmbdas"]))))
    models = [(checkpoint, codec_name(m), m) for m in args.hyper_coding.split(",") if m]
    for item in filter(None, args.ablations.split(",")):
        directory, _, label = item.partition(":")
        models.append((Path(directory), f"ours: glc, {label or directory}", None))
    lpips_params = None if args.lpips_net == "none" else load_lpips_params(args.lpips_net)
    files = Path(args.files) if args.files else None
    records, timings, decoded_sets = [], {}, {}
    for path, label, mode in models:
        for r in rates:
            recs, timing = code_images(path, label, r, mode, sources, lpips_params, files,
                                       decoded_sets)
            records += recs
            timings[f"{label} r{r}"] = timing
    records += autoencoder_round_trips(params, model_config, images, lpips_params, decoded_sets)
    records += classic_records(images, classic, lpips_params, decoded_sets)
    records += compared_records(args.compare, names, {r["codec"] for r in records})

    curves = curves_of(records, names, args.published)
    main_label = models[0][1] if models else codec_name("entropy")
    bd = bd_against_all(curves, main_label)
    fids = patch_fids(list(images.values()), decoded_sets) if args.fid else {}

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(output.with_suffix(".tsv"), records)
    plot_curves(curves, output, f"{Path(args.images).name} ({len(names)} images)")
    print(f"{'codec':48s} {'point':6s} {'bpp':>8s} {'bpp_z':>8s} " +
          " ".join(f"{m:>10s}" for m in METRICS))
    curve_data = {}
    for label, curve in curves.items():
        bpp_z = [float(np.mean([r["bpp_z"] for r in records if r["codec"] == label
                                and r["point"] == p and "bpp_z" in r] or [np.nan]))
                 for p in curve.points]
        curve_data[label] = {**curve_json(curve), "bpp_z": bpp_z}
        for i, p in enumerate(curve.points):
            print(f"{label[:48]:48s} {p:6s} {curve.bpp[i]:8.4f} {bpp_z[i]:8.4f} " +
                  " ".join(f"{curve.values[m][i]:10.4f}" for m in METRICS))
    summary = {"command": " ".join(sys.argv), "checkpoint": str(checkpoint),
               "weights_hash": digest.hex(), "model": model_config,
               "training": training_budget(checkpoint),
               "ablations": {label: {"checkpoint": str(path),
                                     "training": training_budget(path)}
                             for path, label, mode in models[1:] if mode is None},
               "images": args.images, "names": names, "lpips_net": args.lpips_net,
               "main": main_label, "curves": curve_data, "bd": bd, "patch_fid": fids,
               "timings": timings, "load_average": os.getloadavg(), "machine": machine_facts()}
    atomic_write_bytes(output.with_suffix(".json"),
                       json.dumps(summary, indent=1, default=float).encode())
    print(f"wrote {output.with_suffix('.tsv')} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
