"""SD-VAE port: parity with diffusers fixtures in both checkpoint layouts, the load() API,
weight verification errors, the restricted unpickler, tiling and bfloat16."""

from __future__ import annotations

import functools
import os
import pickle
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from nlc_jax.autoencoders import AutoencoderError, VAEConfig, WeightsError, load
from nlc_jax.autoencoders.loaders import read_state_dict
from nlc_jax.autoencoders.sd_vae import AutoencoderKL
from nlc_jax.autoencoders.sd_vae_keys import infer_ldm_config, ldm_state
from nlc_jax.autoencoders.tiling import tile_starts, tiled_apply

FIX = Path(__file__).parent / "fixtures" / "vae"
TOL = 1e-4
SOURCES = [  # (fixture, how it is loaded)
    ("vae_c4", "vae_c4"),
    ("vae_c4", "vae_c4_ldm.safetensors"),
    ("vae_c4", "vae_c4_ldm.ckpt"),
    ("vae_c16", "vae_c16"),
    ("vae_c16", "vae_c16_ldm.safetensors"),
]


def _config(name: str) -> VAEConfig:
    return VAEConfig.from_json(FIX / name / "config.json")


@functools.cache
def _load(name: str, source: str, dtype=jnp.float32):
    """Loaded once per test module, so jit-compiled functions are reused between tests."""
    # LDM files carry no config: GroupNorm groups and latent scale/shift come from config=.
    config = None if source == name else _config(name)
    return load(FIX / source, config=config, dtype=dtype)


@pytest.mark.parametrize("name,source", SOURCES)
def test_parity_with_diffusers(name, source):
    fns, params = _load(name, source)
    ref = np.load(FIX / f"{name}_io.npz")
    model = AutoencoderKL(fns.config)
    mean, logvar = model.apply({"params": params}, jnp.asarray(ref["x"]),
                               method=AutoencoderKL.moments)
    decoded = model.apply({"params": params}, jnp.asarray(ref["z"]), method=AutoencoderKL.decode)
    assert mean.shape == ref["mean"].shape
    assert np.abs(np.asarray(mean) - ref["mean"]).max() <= TOL
    assert np.abs(np.asarray(logvar) - ref["logvar"]).max() <= TOL
    assert np.abs(np.asarray(decoded) - ref["decoded"]).max() <= TOL


@pytest.mark.parametrize("name", ["vae_c4", "vae_c16"])
def test_api_conventions(name):
    """encode takes [0, 1] and returns the normalised mean; decode inverts the normalisation."""
    fns, params = _load(name, name)
    cfg, ref = fns.config, np.load(FIX / f"{name}_io.npz")
    z = np.asarray(fns.encode(params, (ref["x"] + 1) / 2))
    np.testing.assert_allclose(z, (ref["mean"] - cfg.shift_factor) * cfg.scaling_factor,
                               atol=TOL)
    y = np.asarray(fns.decode(params, (ref["z"] - cfg.shift_factor) * cfg.scaling_factor))
    np.testing.assert_allclose(y, (ref["decoded"] + 1) / 2, atol=TOL)
    assert fns.latent_channels == cfg.latent_channels == z.shape[-1]


@pytest.mark.parametrize("name,ldm", [("vae_c4", "vae_c4_ldm.ckpt"),
                                      ("vae_c16", "vae_c16_ldm.safetensors")])
def test_ldm_architecture_is_inferred(name, ldm):
    want = _config(name)
    got = infer_ldm_config(ldm_state(read_state_dict(FIX / ldm)), VAEConfig(norm_num_groups=4))
    for field in ("block_out_channels", "layers_per_block", "latent_channels", "use_quant_conv",
                  "use_post_quant_conv"):
        assert getattr(got, field) == getattr(want, field), field


def test_ldm_without_config_needs_one():
    with pytest.raises(AutoencoderError, match="norm_num_groups=32 must divide"):
        load(FIX / "vae_c4_ldm.ckpt")


def test_weight_mismatch_lists_everything(tmp_path):
    state = read_state_dict(FIX / "vae_c4" / "diffusion_pytorch_model.safetensors")
    del state["decoder.conv_in.bias"]
    state["encoder.extra.weight"] = np.zeros(3, np.float32)
    state["quant_conv.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError) as err:
        load(tmp_path / "bad.safetensors", config=_config("vae_c4"))
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing 1: decoder/conv_in/bias" in msg
    assert "unexpected 1: encoder.extra.weight" in msg
    assert "wrong shape 1: quant_conv.weight (8, 8, 3, 3), expected (8, 8, 1, 1)" in msg


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _torch_like_zip(path: Path, obj) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/byteorder", "little")


def test_restricted_unpickler_refuses_globals(tmp_path):
    _torch_like_zip(tmp_path / "evil.ckpt", {"state_dict": _Evil()})
    with pytest.raises(WeightsError, match="refusing to load global 'posix.system'"):
        read_state_dict(tmp_path / "evil.ckpt")


def test_corrupt_checkpoints(tmp_path):
    data = (FIX / "vae_c4_ldm.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps({"a": 1}))
    for name in ("cut.ckpt", "junk.safetensors", "legacy.pth", "absent.ckpt"):
        with pytest.raises(WeightsError):
            read_state_dict(tmp_path / name)
    with pytest.raises(AutoencoderError, match="neither a known autoencoder"):
        load(tmp_path / "nothing_here")


def test_bad_input_shape():
    fns, params = _load("vae_c4", "vae_c4")
    with pytest.raises(AutoencoderError, match="multiples of 4"):
        fns.encode(params, np.zeros((1, 10, 8, 3), np.float32))
    with pytest.raises(AutoencoderError, match=r"\[B, H, W, 4\]"):
        fns.decode(params, np.zeros((1, 2, 2, 3), np.float32))


def test_tile_starts_cover_with_overlap():
    for size, tile, overlap, align in [(1368, 512, 64, 8), (1365, 64, 8, 1), (100, 32, 8, 4), (30, 64, 8, 1)]:
        starts = tile_starts(size, tile, overlap, align)
        t = min(tile, size)
        assert starts[0] == 0 and starts[-1] + t == size
        assert all(s % align == 0 for s in starts)
        assert all(b - a <= t - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_tiled_apply_is_exact_for_pointwise_maps():
    """Blending weights sum to one everywhere, and tiles land at the right output positions."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 40, 56, 3)).astype(np.float32)
    w = rng.normal(size=(3, 5)).astype(np.float32)

    def down(t):  # 4×4 average pool then a channel mix: output = input size / 4
        b, h, ww, c = t.shape
        return t.reshape(b, h // 4, 4, ww // 4, 4, c).mean((2, 4)) @ w

    def up(t):
        return np.repeat(np.repeat(t @ w, 4, 1), 4, 2)

    np.testing.assert_allclose(tiled_apply(down, x, tile=16, overlap=8, up=1, down=4, align=4),
                               down(x), atol=1e-5)
    np.testing.assert_allclose(tiled_apply(up, x, tile=12, overlap=5, up=4, down=1, align=1),
                               up(x), atol=1e-5)


def test_tiled_equals_untiled_when_one_tile():
    fns, params = _load("vae_c4", "vae_c4")
    x = (np.load(FIX / "vae_c4_io.npz")["x"] + 1) / 2
    z = np.asarray(fns.encode(params, x))
    np.testing.assert_allclose(fns.encode_tiled(params, x, tile=64), z, atol=1e-5)
    np.testing.assert_allclose(fns.decode_tiled(params, z, tile=16),
                               np.asarray(fns.decode(params, z)), atol=1e-5)


def test_bfloat16_close_to_float32():
    ref = np.load(FIX / "vae_c4_io.npz")
    x = (ref["x"] + 1) / 2
    out = {}
    for dt in (jnp.float32, jnp.bfloat16):
        fns, params = _load("vae_c4", "vae_c4", dt)
        z = fns.encode(params, x)
        out[dt] = (np.asarray(z), np.asarray(fns.decode(params, z)))
        assert out[dt][0].dtype == np.float32
    for a, b in zip(out[jnp.float32], out[jnp.bfloat16], strict=True):
        rel = np.abs(a - b).max() / np.abs(a).max()
        assert 0 < rel < 0.05


def test_ckpt_and_safetensors_hold_the_same_tensors():
    """The torch-free .ckpt reader returns the .safetensors copy bit for bit."""
    a = read_state_dict(FIX / "vae_c4_ldm.ckpt")
    b = read_state_dict(FIX / "vae_c4_ldm.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
