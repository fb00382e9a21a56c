"""Dev-only: build the autoencoder parity fixtures in tests/fixtures/vae/.

Run it once with a separate, torch-equipped Python (the project venv stays torch-free)::

    python3 -m venv /tmp/refenv_ae
    /tmp/refenv_ae/bin/pip install torch==2.13.0 diffusers safetensors
    git clone https://github.com/madebyollin/taesd /tmp/taesd_ref   # only taesd.py is used
    /tmp/refenv_ae/bin/python tools/make_vae_fixtures.py --taesd-dir /tmp/taesd_ref

SD-VAE: for each of two small random-weight ``diffusers.AutoencoderKL`` models (a 4-channel one
with quant convs, and a 16-channel one with a shift factor and no quant convs) it writes

* ``<name>/config.json`` + ``<name>/diffusion_pytorch_model.safetensors`` (diffusers layout),
* ``<name>_ldm.safetensors`` and (4-channel model only) ``<name>_ldm.ckpt``: the same weights in
  the original LDM/CompVis layout under ``first_stage_model.`` (the ``.ckpt`` is a
  ``torch.save``'d Lightning-style ``{"state_dict": ...}``). The LDM names are checked by loading
  them back with diffusers' own ``convert_ldm_vae_checkpoint``;
* ``<name>_io.npz``: input ``x`` ``[B, H, W, 3]`` in [-1, 1], ``mean`` / ``logvar`` (after
  ``quant_conv``), a latent ``z`` and ``decoded = decoder(post_quant_conv(z))``, NHWC, float32.

TAE: ``taef2_io.npz`` with a 32×32 crop of kodim23 in [0, 1] and the reference taesd outputs
``z`` (encoder) and ``y`` (decoder of ``z``), when ``--taesd-dir`` and the shared weights exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "vae"
SHARED = ROOT.parent / "shared"

MODELS = {
    "vae_c4": dict(block_out_channels=(8, 12, 16), layers_per_block=1, latent_channels=4,
                   norm_num_groups=4, scaling_factor=0.18215, shape=(2, 32, 24, 3)),
    "vae_c16": dict(block_out_channels=(8, 12), layers_per_block=2, latent_channels=16,
                    norm_num_groups=4, scaling_factor=0.3611, shift_factor=0.1159,
                    use_quant_conv=False, use_post_quant_conv=False, shape=(1, 16, 24, 3)),
}


def diffusers_to_ldm(sd: dict[str, torch.Tensor], n_blocks: int) -> dict[str, torch.Tensor]:
    """Rename a diffusers AutoencoderKL state dict to the CompVis LDM scheme."""
    out = {}
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for key, value in sd.items():
        parts = key.split(".")
        side = parts[0]
        new = key
        if parts[1] == "conv_norm_out":
            new = f"{side}.norm_out.{parts[2]}"
        elif parts[1] in ("down_blocks", "up_blocks"):
            i = int(parts[2]) if side == "encoder" else n_blocks - 1 - int(parts[2])
            stage = "down" if side == "encoder" else "up"
            if parts[3] == "resnets":
                layer = "nin_shortcut" if parts[5] == "conv_shortcut" else parts[5]
                new = f"{side}.{stage}.{i}.block.{parts[4]}.{layer}.{parts[6]}"
            else:
                sampler = "downsample" if side == "encoder" else "upsample"
                new = f"{side}.{stage}.{i}.{sampler}.conv.{parts[-1]}"
        elif parts[1] == "mid_block":
            if parts[2] == "resnets":
                layer = "nin_shortcut" if parts[4] == "conv_shortcut" else parts[4]
                new = f"{side}.mid.block_{int(parts[3]) + 1}.{layer}.{parts[5]}"
            else:
                name = ".".join(parts[4:-1])
                new = f"{side}.mid.attn_1.{attn[name]}.{parts[-1]}"
                if name != "group_norm" and value.ndim == 2:
                    value = value[:, :, None, None]
        out[new] = value.contiguous()
    return out


def make_vae(name: str, spec: dict) -> None:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import save_file

    spec = dict(spec)
    shape = spec.pop("shape")
    n = len(spec["block_out_channels"])
    torch.manual_seed(len(name) + n)
    model = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        sample_size=shape[1], **spec).eval()
    # Random weights with a healthy scale (default init would make GroupNorm affine trivial).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(OUT / name, safe_serialization=True)
    sd = model.state_dict()
    ldm = {f"first_stage_model.{k}": v for k, v in diffusers_to_ldm(sd, n).items()}
    back = convert_ldm_vae_checkpoint(ldm, dict(model.config))
    assert set(back) == set(sd), sorted(set(back) ^ set(sd))
    for k in sd:
        assert torch.equal(back[k].reshape(sd[k].shape), sd[k]), k
    save_file(ldm, str(OUT / f"{name}_ldm.safetensors"))
    if name == "vae_c4":
        torch.save({"state_dict": ldm, "global_step": 0}, OUT / f"{name}_ldm.ckpt")

    g = torch.Generator().manual_seed(7)
    x = torch.rand(shape, generator=g) * 2 - 1
    with torch.no_grad():
        post = model.encode(x.permute(0, 3, 1, 2)).latent_dist
        z = post.mean + 0.5 * torch.randn(post.mean.shape, generator=g)
        dec = model.decode(z).sample
    nhwc = lambda t: t.permute(0, 2, 3, 1).numpy().astype(np.float32)  # noqa: E731
    np.savez_compressed(OUT / f"{name}_io.npz", x=x.numpy(), mean=nhwc(post.mean),
                        logvar=nhwc(post.logvar), z=nhwc(z), decoded=nhwc(dec))
    print(name, "params", sum(p.numel() for p in model.parameters()))


def make_tae(taesd_dir: Path) -> None:
    from PIL import Image

    sys.path.insert(0, str(taesd_dir))
    from taesd import TAESD

    w = SHARED / "weights"
    model = TAESD(str(w / "taef2_encoder.pth"), str(w / "taef2_decoder.pth")).float().eval()
    img = np.asarray(Image.open(SHARED / "data" / "kodak" / "kodim23.png").convert("RGB"))
    crop = (img[120:152, 240:272].astype(np.float32) / 255.0)
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(crop).permute(2, 0, 1)[None])
        y = model.decoder(z)
    np.savez_compressed(OUT / "taef2_io.npz", x=crop[None],
                        z=z.permute(0, 2, 3, 1).numpy(), y=y.permute(0, 2, 3, 1).numpy(),
                        crop=np.array([120, 240, 32, 32]))
    print("taef2 reference written")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--taesd-dir", type=Path, help="checkout of madebyollin/taesd (for taesd.py)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in MODELS.items():
        make_vae(name, spec)
    if args.taesd_dir and (SHARED / "weights" / "taef2_encoder.pth").is_file():
        make_tae(args.taesd_dir)
    (OUT / "README.json").write_text(json.dumps(
        {"made_by": "tools/make_vae_fixtures.py", "torch": torch.__version__,
         "diffusers": __import__("diffusers").__version__}, indent=1) + "\n")


if __name__ == "__main__":
    main()
