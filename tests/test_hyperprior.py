"""Mean-scale hyperprior codec: bit-exact round trip, file checks, variable-rate gains."""

import numpy as np
import pytest
from ml_collections import config_dict

from nlc_jax.bitstream import BitstreamError
from nlc_jax.codecs import registry
from nlc_jax.codecs.hyperprior import HyperpriorCodec
from nlc_jax.codecs.hyperprior.codec import pad_to_stride
from nlc_jax.codecs.hyperprior.training import (
    HyperpriorConfigError,
    HyperpriorTask,
    initial_gains,
)
from nlc_jax.codecs.weights import CheckpointError, export_untrained, load_inference


def tiny_config(**overrides):
    from nlc_jax.configs.hyperprior import get_config

    c = get_config("tiny")
    c.model.n, c.model.m = 8, 12
    c.update(overrides)
    return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Export of a randomly initialised tiny model (untrained weights code just as exactly)."""
    return export_untrained(tmp_path_factory.mktemp("export"),
                            HyperpriorTask(tiny_config(lmbdas=(0.01, 0.05))))


def image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)
    return np.clip(smooth[:h, :w] + rng.integers(-10, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(64, 64), (37, 70)])
def test_round_trip_is_bit_exact(trained, shape):
    codec = registry.make(config_dict.ConfigDict(
        {"codec": "hyperprior", "checkpoint": str(trained), "rate_index": 1}))
    result = codec.encode(image(*shape))
    decoded = codec.decode(result.data)
    assert decoded.shape == (*shape, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, result.reconstruction)
    assert result.info["bpp"] == pytest.approx(8 * len(result.data) / (shape[0] * shape[1]))
    # A fresh codec (as decode.py builds it) decodes the same pixels.
    fresh = registry.make(config_dict.ConfigDict({"codec": "hyperprior",
                                                  "checkpoint": str(trained)}))
    np.testing.assert_array_equal(fresh.decode(result.data), decoded)


def test_file_made_with_other_weights_is_refused(trained, tmp_path):
    data = registry.make(config_dict.ConfigDict({"codec": "hyperprior", "checkpoint": str(trained)})).encode(
        image(64, 64)).data
    params, model_config, _ = load_inference(trained)
    params["model"]["params"]["g_s"]["SubpixelConvTranspose_3"]["bias"] += 0.01
    other = HyperpriorCodec.from_params(params, model_config)
    with pytest.raises(BitstreamError, match="encoded with model weights"):
        other.decode(data)
    with pytest.raises(BitstreamError):
        other.decode(data[:-7])


def test_variable_rate_gains_change_the_rate(trained):
    params, model_config, _ = load_inference(trained)
    params["model"]["params"]["gain"][1] *= 4.0
    low = HyperpriorCodec.from_params(params, model_config, rate_index=0).encode(image(64, 64))
    high = HyperpriorCodec.from_params(params, model_config, rate_index=1).encode(image(64, 64))
    assert len(high.data) > len(low.data)
    with pytest.raises(ValueError, match="rate_index"):
        HyperpriorCodec.from_params(params, model_config, rate_index=2)


def test_variable_rate_model_starts_with_distinct_steps(trained):
    """Gains start at sqrt(λ_i / geomean λ): an untrained model already codes the higher λ with
    more bits, and the inverse gains undo the gains."""
    params, model_config, _ = load_inference(trained)
    gain = params["model"]["params"]["gain"]
    expected = np.sqrt(np.array([0.01, 0.05]) / np.sqrt(0.01 * 0.05))
    np.testing.assert_allclose(gain, np.repeat(expected[:, None], gain.shape[1], 1), rtol=1e-6)
    np.testing.assert_allclose(gain * params["model"]["params"]["inverse_gain"], 1.0, rtol=1e-6)
    sizes = [len(HyperpriorCodec.from_params(params, model_config, rate_index=r).encode(
        image(64, 64)).data) for r in (0, 1)]
    assert sizes[1] > sizes[0]
    assert initial_gains([0.013]) == (1.0,)


def test_bad_checkpoint_and_config_errors(trained, tmp_path):
    with pytest.raises(CheckpointError, match="--config.checkpoint"):
        registry.make(config_dict.ConfigDict({"codec": "hyperprior"}))
    with pytest.raises(CheckpointError, match="not a model export"):
        registry.make(config_dict.ConfigDict({"codec": "hyperprior", "checkpoint": str(tmp_path)}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((trained / "model.json").read_text())
    data = bytearray((trained / "params.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (broken / "params.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the hash|cannot read weights"):
        load_inference(broken)
    (broken / "params.safetensors").write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_inference(broken)
    with pytest.raises(HyperpriorConfigError, match="multiple of 64"):
        HyperpriorTask(tiny_config(crop=40))
    with pytest.raises(HyperpriorConfigError, match="> 0"):
        HyperpriorTask(tiny_config(lmbdas=(0.01, -1.0)))


def test_padding():
    padded = pad_to_stride(np.arange(37 * 70 * 3, dtype=np.uint8).reshape(37, 70, 3))
    assert padded.shape == (64, 128, 3)
    np.testing.assert_array_equal(padded[40, 75], padded[36, 69])


def test_file_without_its_model_names_the_weights_it_needs(trained):
    import json

    import nlc_jax

    result = registry.make(config_dict.ConfigDict(
        {"codec": "hyperprior", "checkpoint": str(trained)})).encode(image(32, 40))
    needed = json.loads((trained / "model.json").read_text())["weights_hash"]
    with pytest.raises(BitstreamError, match=f"weights {needed}.*--checkpoint"):
        nlc_jax.decode(result.data)
    np.testing.assert_array_equal(nlc_jax.decode(result.data, checkpoint=str(trained)),
                                  result.reconstruction)


def test_trainable_codecs_come_from_the_registry():
    assert registry.task_factory("hyperprior")(tiny_config()).model_config()["codec"] == "hyperprior"
    with pytest.raises(ValueError, match="codec 'coolchic' cannot be trained; trainable codecs: "
                                         "glc, hyperprior, rvdiff"):
        registry.task_factory("coolchic")
