"""TAEF2 (tiny FLUX.2 autoencoder) loaded torch-free from ../shared/weights: parity with the
reference PyTorch taesd outputs stored in tests/fixtures/vae/taef2_io.npz, round-trip quality,
tiling, and weight verification."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from nlc_jax.autoencoders import WeightsError, load
from nlc_jax.autoencoders.loaders import read_state_dict, to_flax
from nlc_jax.autoencoders.tae import TAE_VARIANTS, param_shapes
from nlc_jax.metrics.psnr import psnr

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEIGHTS = SHARED / "weights"
FIX = Path(__file__).parent / "fixtures" / "vae" / "taef2_io.npz"

pytestmark = pytest.mark.skipif(not (WEIGHTS / "taef2_encoder.pth").is_file(),
                                reason="../shared/weights/taef2_*.pth not present")


@functools.cache
def _taef2():
    return load("taef2", weights_dir=WEIGHTS)


def _kodak_crop(top: int, left: int, h: int, w: int) -> np.ndarray:
    from nlc_jax.data.images import load_image

    img = load_image(SHARED / "data" / "kodak" / "kodim23.png")
    return img[None, top:top + h, left:left + w].astype(np.float32) / 255.0


def test_shipped_weights_are_fp16_state_dicts():
    state = read_state_dict(WEIGHTS / "taef2_decoder.pth")
    assert state["3.pool.1.weight"].dtype == np.float16
    assert state["1.weight"].shape == (64, 32, 3, 3)  # conv from the 32-channel latent


def test_parity_with_reference_taesd():
    fns, params = _taef2()
    ref = np.load(FIX)
    z = np.asarray(fns.encode(params, ref["x"]))
    y = np.asarray(fns.decode(params, ref["z"]))
    assert z.shape == (1, 4, 4, 32) and fns.latent_channels == 32
    assert np.abs(z - ref["z"]).max() <= 1e-4
    assert np.abs(y - ref["y"]).max() <= 1e-4


def test_round_trip_quality_and_tiling():
    """Tiled ≈ untiled: 96-px tiles with 48 px overlap on a 128×192 crop."""
    fns, params = _taef2()
    x = _kodak_crop(96, 160, 128, 192)
    z = np.asarray(fns.encode(params, x))
    y = np.asarray(fns.decode(params, z))
    assert float(psnr(np.clip(y, 0, 1), x, 1.0)[0]) > 28.0
    zt = fns.encode_tiled(params, x, tile=96, overlap=48)
    yt = fns.decode_tiled(params, z, tile=12, overlap=6)
    assert np.abs(zt - z).mean() < 0.03 * np.abs(z).mean()
    assert float(psnr(np.clip(yt, 0, 1), np.clip(y, 0, 1), 1.0)[0]) > 45.0


def test_mismatched_tae_weights_are_all_listed():
    state = read_state_dict(WEIGHTS / "taef2_encoder.pth")
    del state["11.pool.1.bias"]
    state["14.weight"] = state["14.weight"][:16]  # a 16-channel latent head
    with pytest.raises(WeightsError, match=r"missing 1: layers_11/pool_1/bias; wrong shape 1: "
                                           r"14\.weight \(16, 64, 3, 3\), expected \(32, 64, 3, 3\)"):
        to_flax(state, param_shapes(TAE_VARIANTS["taef2"])["encoder"], "taef2_encoder.pth")
