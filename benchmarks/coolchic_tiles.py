"""COOL-CHIC latent layouts on a real fit: rate of each tile layout and decode time of the file.

    python benchmarks/coolchic_tiles.py --image ../shared/data/kodak/kodim01.png --preset fast \\
        [--lmbda 0.001] [--n_itr 300] [--train_tile stripes] \\
        [--eval_tiles stripes,64x64,32x64,32x32,16x16] [--output bench_out/tiles_fast]

Fits and codes one image (``nlc_jax.fit.coding.code_batch``, the preset's recipe with
``--n_itr`` and the other recipe overrides) with the ARM trained under the context mask of
``--train_tile`` (``RxC`` tiles, or ``stripes``: the first header version's 64-row stripes), writes the
``.nlc`` file (latents in ``latent_coding.TILE`` tiles, the format's layout) and

* re-codes the same integer latents and ARM with each layout of ``--eval_tiles`` (real range
  coding): the bpp each layout would give for this fit — for layouts other than the training
  one the ARM was not trained with their mask, so that column is an upper bound of their cost;
* decodes the file ``--decodes`` times (``CoolChic().decode``, entropy decoding included) and
  reports the best time, checking it equals the encoder's reconstruction.

Writes ``<output>/tiles.json``, the ``.nlc`` file and the fitted parameters (``params.npz``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from nlc_jax.bitstream.container import SectionType, read_container  # noqa: E402
from nlc_jax.codecs.coolchic import (  # noqa: E402
    CoolChic,
    context_model,  # noqa: E402
    latent_coding,
)
from nlc_jax.codecs.coolchic import codec as coolchic_codec  # noqa: E402
from nlc_jax.codecs.coolchic.arch import init_networks  # noqa: E402
from nlc_jax.codecs.coolchic.codec import decode_fit  # noqa: E402
from nlc_jax.codecs.coolchic.latent_coding import parse_tile, tile_name  # noqa: E402
from nlc_jax.codecs.overfitted.layers import zeros_template  # noqa: E402
from nlc_jax.config_files import load_config  # noqa: E402
from nlc_jax.data.images import load_image  # noqa: E402
from nlc_jax.entropy import param_coding  # noqa: E402
from nlc_jax.fit.coding import code_batch  # noqa: E402
from nlc_jax.fit.engine import Engine, make_mesh  # noqa: E402
from nlc_jax.machine import machine_facts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    p.add_argument("--preset", default="fast")
    p.add_argument("--lmbda", type=float, default=1e-3)
    p.add_argument("--n_itr", type=int, default=0, help="0: the preset's")
    p.add_argument("--warmup_steps", type=int, default=-1, help="-1: the preset's")
    p.add_argument("--final_steps", type=int, default=-1, help="-1: the preset's")
    p.add_argument("--n_candidates", type=int, default=0, help="0: the preset's")
    p.add_argument("--train_tile", default=tile_name(latent_coding.TILE))
    p.add_argument("--eval_tiles", default="stripes,64x64,32x64,32x32,16x16")
    p.add_argument("--decodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=Path("bench_out/tiles"))
    args = p.parse_args(argv)

    config = load_config("coolchic", args.preset)
    for key, value in (("n_itr", args.n_itr), ("n_candidates", args.n_candidates)):
        if value > 0:
            config.recipe[key] = value
    for key, value in (("warmup_steps", args.warmup_steps), ("final_steps", args.final_steps)):
        if value >= 0:
            config.recipe[key] = value
    train_tile = parse_tile(args.train_tile)
    # The codec's training mask (codec._forward) with the requested layout.
    context_model.tile_context_mask = functools.partial(latent_coding.tile_context_mask,
                                                         tile=train_tile)
    codec = CoolChic(config)
    image = load_image(args.image)
    h, w = image.shape[:2]
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    (coded,) = code_batch([codec], [Engine(codec, make_mesh())], [image], [args.lmbda],
                          [args.seed], multiple=64)
    fit_and_code_s = time.perf_counter() - t0
    if coded.result is None:
        sys.exit(f"error: {args.image}: {coded.error}")
    result, params = coded.result, coded.params
    args.output.mkdir(parents=True, exist_ok=True)
    stem = Path(args.image).stem
    (args.output / f"{stem}.nlc").write_bytes(result.data)
    flat = {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    np.savez(args.output / "params.npz", **flat)

    # Same integer latents and ARM, re-coded with each layout.
    container = read_container(result.data)
    grids, _, arch = decode_fit(container, h, w)
    qnets, exps = param_coding.decode_params(container.section(SectionType.NETWORKS),
                                             zeros_template(init_networks, arch))
    shapes = [g.shape for g in grids]
    arm, features = coolchic_codec._int_model(qnets, exps, arch, shapes)
    latent_bytes = len(container.section(SectionType.LATENTS))
    other_bytes = len(result.data) - latent_bytes
    layouts = []
    for text in args.eval_tiles.split(","):
        tile = parse_tile(text)
        coded = latent_coding.encode_latents(grids, codec.offsets, arm, arch.passes(), features,
                                             tile)
        n_waves = sum(latent_coding._Layout([shapes[i] for i in members], codec.offsets,
                                            tile).n_waves for members in arch.passes())
        layouts.append({"tile": tile_name(tile), "latent_bytes": len(coded),
                        "bpp": 8.0 * (other_bytes + len(coded)) / (h * w),
                        "wavefronts": n_waves, "trained_with_this_mask": tile == train_tile})

    times, load_decode = [], os.getloadavg()
    for _ in range(args.decodes):
        t0 = time.perf_counter()
        decoded = CoolChic().decode(result.data)
        times.append(time.perf_counter() - t0)
    out = {"image": args.image, "size": [h, w], "preset": args.preset, "lmbda": args.lmbda,
           "recipe": config.recipe.to_dict(), "train_tile": tile_name(train_tile),
           "file_tile": tile_name(latent_coding.TILE), "bpp": result.info["bpp"],
           "psnr_db": result.info["psnr_db"], "latent_bpp": result.info["latent_bpp"],
           "network_bpp": result.info["network_bpp"], "fit_and_code_s": fit_and_code_s,
           "decode_s_best": min(times), "decode_s_all": times,
           "decode_bit_exact": bool(np.array_equal(decoded, result.reconstruction)),
           "layouts": layouts, "load_avg_at_fit_start": load_start,
           "load_avg_before_decode": load_decode, "machine": machine_facts()}
    (args.output / "tiles.json").write_text(json.dumps(out, indent=2))
    print(f"{args.preset} {w}x{h} λ={args.lmbda:g} trained with {tile_name(train_tile)}: "
          f"{out['bpp']:.4f} bpp {out['psnr_db']:.2f} dB | fit and code {fit_and_code_s:.0f} s | decode best {min(times):.3f} s (load {load_decode[0]:.1f}) | "
          f"bit-exact {out['decode_bit_exact']}")
    for r in layouts:
        mark = " (trained)" if r["trained_with_this_mask"] else ""
        print(f"  {r['tile']:>8}: {r['bpp']:.4f} bpp, {r['latent_bytes']} latent bytes, "
              f"{r['wavefronts']} wavefronts{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
