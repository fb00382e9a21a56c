"""Rate-variable diffusion codec: rate curve, sampler, round trip, file checks, training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict
from rvdiff_helpers import image, tiny_config, toy_autoencoder

from nlc_jax.bitstream import BitstreamError
from nlc_jax.codecs import registry
from nlc_jax.codecs.clric import BoundAutoencoder
from nlc_jax.codecs.rvdiff import RvdiffCodec, file_weights_hash, make_codec
from nlc_jax.codecs.rvdiff.rate import RateError, StepCurve, initial_log_steps, rate_code
from nlc_jax.codecs.rvdiff.sampler import SamplerError, alpha_schedule, sample, time_grid
from nlc_jax.codecs.rvdiff.training import RvdiffConfigError, RvdiffTask
from nlc_jax.codecs.weights import CheckpointError, export_untrained, load_inference
from nlc_jax.configs.rvdiff import get_config


@pytest.fixture(scope="module")
def ae() -> BoundAutoencoder:
    return toy_autoencoder()


@pytest.fixture(scope="module")
def exported(ae, tmp_path_factory):
    """Export of a randomly initialised tiny model (untrained weights code just as exactly)."""
    return export_untrained(tmp_path_factory.mktemp("export"),
                            RvdiffTask(tiny_config(), autoencoder=ae))


def codec_of(directory, ae, **settings) -> RvdiffCodec:
    return make_codec(config_dict.ConfigDict({"checkpoint": str(directory), **settings}),
                      autoencoder=ae)


def test_step_curve_is_monotone_for_any_parameters():
    curve = StepCurve(3, tuple(initial_log_steps((400.0, 0.5), 0.5, 4)))
    t = jnp.linspace(0.0, 1.0, 101)
    params = curve.init(jax.random.key(0), t)
    params = jax.tree.map(lambda a: a + jax.random.normal(jax.random.key(1), a.shape), params)
    steps = np.asarray(curve.apply(params, t))
    assert steps.shape == (101, 3) and np.all(steps > 0)
    assert np.all(np.diff(steps, axis=0) > 0)
    # the initial curve is the high-rate optimum of λ(t): Δ² = 6 · 0.5 / (ln 2 · λ)
    start = np.exp(initial_log_steps((400.0, 0.5), 0.5, 4))
    np.testing.assert_allclose(start[[0, -1]] ** 2, 3.0 / np.log(2.0) / np.array([400, 0.5]))


def test_bits_fall_monotonically_with_the_rate(exported, ae):
    sizes = [len(codec_of(exported, ae, rate=t, steps=0).encode(image(64, 96)).data)
             for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(sizes, sizes[1:], strict=False)), sizes


@pytest.mark.parametrize("shape, steps", [((64, 64), 2), ((37, 70), 0), ((40, 48), 3)])
def test_round_trip_reproduces_the_encoder(exported, ae, shape, steps):
    codec = codec_of(exported, ae, rate=0.3, steps=steps, alpha_max=1.0, noise_seed=7)
    result = codec.encode(image(*shape))
    decoded = codec.decode(result.data)
    assert decoded.shape == (*shape, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, result.reconstruction)
    assert result.info["bpp"] == pytest.approx(8 * len(result.data) / (shape[0] * shape[1]))
    # a decoder built with other coding settings decodes the file's own settings
    other = codec_of(exported, ae, rate=0.9, steps=1, noise_seed=1)
    np.testing.assert_array_equal(other.decode(result.data), decoded)


def test_sampler_is_deterministic_given_the_file(exported, ae):
    codec = codec_of(exported, ae, rate=0.6)
    y_hat, t, _, _, _, _, _ = codec.decode_latent(codec.encode(image(64, 64)).data)
    alphas = alpha_schedule(t, 4, 1.0, 1.0)
    noisy = lambda y, ti: 0.9 * y  # noqa: E731 - a denoiser that keeps noise in the state
    runs = [sample(y_hat, t, 4, seed, alphas, noisy, codec.step_y) for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])  # the seed in the file drives the noise
    np.testing.assert_array_equal(sample(y_hat, t, 0, 3, (), noisy, codec.step_y), y_hat)
    assert time_grid(0.5, 2) == [0.5, 0.25]
    assert alpha_schedule(0.5, 3, 0.5, 1.0) == (np.float32(1 / 3) * 0.5, 0.5 * np.float32(1 / 6))


def test_corrupt_files_and_other_weights_are_refused(exported, ae):
    codec = codec_of(exported, ae, steps=2)
    data = codec.encode(image(64, 64)).data
    assert file_weights_hash(data) == codec.weights_hash
    for bad in (data[:-7], data[:20], b"not a file", data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(BitstreamError):
            codec.decode(bad)
    params, model_config, _ = load_inference(exported)
    params["model"]["params"]["unet"]["Conv_0"]["bias"] += 0.01
    from nlc_jax.codecs.weights import weights_hash

    other = RvdiffCodec(params, model_config, weights_hash(params), ae)
    with pytest.raises(BitstreamError, match="encoded with model weights"):
        other.decode(data)
    with pytest.raises(BitstreamError, match="decodes only with the trained model"):
        registry.decode_bytes(data)


def test_bad_settings_and_checkpoints_are_one_line_errors(exported, ae, tmp_path):
    with pytest.raises(RateError, match=r"rate must be in \[0, 1\]"):
        codec_of(exported, ae, rate=1.5)
    with pytest.raises(RateError):
        rate_code(float("nan"))
    with pytest.raises(SamplerError, match="steps"):
        codec_of(exported, ae, steps=99)
    with pytest.raises(SamplerError, match="alpha_max"):
        codec_of(exported, ae, alpha_max=2.0)
    with pytest.raises(CheckpointError, match="--config.checkpoint"):
        registry.make(config_dict.ConfigDict({"codec": "rvdiff"}))
    with pytest.raises(CheckpointError, match="not a model export"):
        codec_of(tmp_path, ae)
    with pytest.raises(CheckpointError, match="trained with autoencoder"):
        codec_of(exported, toy_autoencoder(seed=1))
    with pytest.raises(RvdiffConfigError, match="multiple of 32"):
        RvdiffTask(tiny_config(crop=40), autoencoder=ae)
    with pytest.raises(RvdiffConfigError, match="lmbda_range"):
        RvdiffTask(tiny_config(lmbda_range=(0.5, 400.0)), autoencoder=ae)
    with pytest.raises(RateError):
        RvdiffTask(tiny_config(eval_rates=(0.0, -0.1)), autoencoder=ae)
    assert "rvdiff" in registry.TRAINED


def test_registry_and_public_api_code_with_the_checkpoint(exported, ae, monkeypatch):
    """As nlc-encode / nlc-decode do: the codec and the decoder load the autoencoder the export
    names (here the toy one)."""
    import nlc_jax
    from nlc_jax.codecs.rvdiff import training

    monkeypatch.setattr(training, "load_autoencoder", lambda config: ae)
    codec = registry.make(config_dict.ConfigDict(
        {"codec": "rvdiff", "checkpoint": str(exported), "rate": 0.2, "steps": 2}))
    result = codec.encode(image(48, 64))
    np.testing.assert_array_equal(nlc_jax.decode(result.data, checkpoint=str(exported)),
                                  result.reconstruction)


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper"])
def test_every_preset_builds_its_task(preset):
    """Config values only (no compilation): sizes, crop multiple, step curves, coding settings."""
    task = RvdiffTask(get_config(preset), autoencoder=toy_autoencoder(channels=32))
    mc = task.model_config()
    assert mc["codec"] == "rvdiff" and mc["channels"] == 32
    assert len(mc["y_steps"]) == get_config(preset).model.knots + 1
    assert np.all(np.diff(mc["y_steps"]) > 0) and np.all(np.diff(mc["z_steps"]) > 0)
    assert int(get_config(preset).crop) % (8 * task.model.stride) == 0
