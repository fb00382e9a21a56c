"""GLC training: the three stages through ``train_and_evaluate``, the ``paper`` preset's shapes,
one step and checkpoint round trip, and a killed stage-I run resumed to the same parameters."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict
from PIL import Image
from train_helpers import run_train

from nlc_jax.codecs import registry
from nlc_jax.codecs.glc.training import build_latent_codec, latent_settings, make_task
from nlc_jax.train import train_and_evaluate
from nlc_jax.train.checkpoint import TrainCheckpoints
from nlc_jax.train.writer import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, count: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, (9, 9, 3)).repeat(8, 0).repeat(8, 1)[:70, :70]
        Image.fromarray(base.astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"))


def config(folder, **overrides):
    from nlc_jax.configs.glc import get_config

    c = get_config("tiny")
    c.update(data=str(folder), crop=64, batch_size=2, num_steps=6, warmup_steps=0, log_every=1,
              checkpoint_every=3, eval_images=0, progress=False, data_threads=1)
    c.loss.lpips_weight = 0.0
    c.update(overrides)
    return c


def test_state_stats_key_matches_the_loop():
    from nlc_jax.codecs.glc import training
    from nlc_jax.train import task

    assert training.STATE_STATS == task.STATE_STATS


def test_paper_preset_shapes():
    from nlc_jax.configs.glc import get_config

    c = get_config("paper")
    c.loss.lpips_weight = 0.0
    ae = make_task(c)
    params = jax.eval_shape(lambda k: ae.init(k, 256), jax.random.key(0))
    quantizer = params["vq"]["params"]["quantizer"]
    assert quantizer["codebook"].shape == (16384, 256)
    y = jax.eval_shape(lambda p, x: ae.model.apply(p, x, method="latent"), params["vq"],
                       jnp.zeros((1, 256, 256, 3)))
    assert y.shape == (1, 16, 16, 256)
    conv_in = params["vq"]["params"]["encoder"]["conv_in"]["kernel"]
    assert conv_in.shape == (3, 3, 3, 128)
    n_params = sum(np.prod(a.shape) for a in jax.tree.leaves(params["vq"]))
    assert 50e6 < n_params < 120e6, n_params  # VQGAN f16 with a 16384 × 256 codebook
    latent = build_latent_codec(latent_settings(c), 256, c.lmbdas)
    lat = jax.eval_shape(lambda k: latent.init(k, jnp.zeros((1, 16, 16, 256)),
                                               jnp.zeros((1,), jnp.int32)), jax.random.key(0))
    assert lat["params"]["q_enc"].shape == (4, 256)
    assert lat["params"]["hyper_vq"]["codebook"].shape == (16384, 256)
    z = jax.eval_shape(lambda p, y: latent.apply(p, y, method="hyper_analyse"), lat,
                       jnp.zeros((1, 16, 16, 256)))
    assert z.shape == (1, 4, 4, 256)


@pytest.mark.slow  # three stages, each compiling its step (~3 min on a busy 2-core CPU)
def test_three_stages_train_and_code(data, tmp_path):
    ae_dir, tc_dir, joint_dir = tmp_path / "ae", tmp_path / "tc", tmp_path / "joint"
    stage1 = config(data, num_steps=8, learning_rate=3e-3)
    stage1.loss.disc_start = 4
    stage1.loss.lpips_weight = 1.0  # the VGG LPIPS term once, end to end
    out = train_and_evaluate(stage1, ae_dir)
    rows = read_metrics(ae_dir)
    assert rows[-1]["d_weight"] > 0 and rows[0]["d_weight"] == 0  # GAN starts at step 4
    assert {"vq_perplexity", "vq_used", "lpips", "rec"} <= set(rows[0])
    assert out["step"] == 8 and (ae_dir / "export" / "model.json").exists()
    stage2 = config(data, stage="transform", autoencoder_checkpoint=str(ae_dir), num_steps=12,
                    learning_rate=3e-3, eval_images=1, eval_data=str(data))
    out = train_and_evaluate(stage2, tc_dir)
    losses = [r["loss"] for r in read_metrics(tc_dir)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    assert out["eval"]["bpp_3"] > out["eval"]["bpp_0"] > 0
    stage3 = config(data, stage="joint", init_checkpoint=str(tc_dir), num_steps=2)
    stage3.loss.disc_start = 0
    train_and_evaluate(stage3, joint_dir)
    assert "g_loss" in read_metrics(joint_dir)[-1]
    codec = registry.make(config_dict.ConfigDict({"codec": "glc", "checkpoint": str(joint_dir),
                                                  "rate_index": 1}))
    image = np.asarray(Image.open(next(data.glob("*.png"))))
    result = codec.encode(image)
    np.testing.assert_array_equal(
        registry.decode_bytes(result.data, checkpoint=str(joint_dir)), result.reconstruction)


@pytest.mark.slow  # paper-size model: minutes of compilation on CPU
def test_paper_preset_one_step_and_checkpoint_round_trip(tmp_path):
    from nlc_jax.configs.glc import get_config
    from nlc_jax.train.loop import build_trainer

    c = get_config("paper")
    c.update(crop=64, batch_size=1)
    trainer = build_trainer(c)
    batch = trainer.put_batch(np.zeros((1, 64, 64, 3), np.uint8))
    state, metrics = trainer.step(trainer.state, batch)
    assert np.isfinite(float(metrics["loss"])) and int(state["step"]) == 1
    checkpoints = TrainCheckpoints(tmp_path / "ckpt", keep=1)
    checkpoints.save(1, state)
    checkpoints.close()
    restored = TrainCheckpoints(tmp_path / "ckpt", keep=1).restore(1, trainer.state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow  # train.py three times, each compiling the step (~3 min)
def test_killed_stage_one_run_resumes_to_the_same_parameters(tmp_path):
    from safetensors.numpy import load_file

    data = write_images(tmp_path / "images")
    flags = [f"--config={ROOT / 'nlc_jax' / 'configs' / 'glc.py'}:tiny", f"--config.data={data}",
             "--config.crop=64", "--config.batch_size=2", "--config.num_steps=14",
             "--config.warmup_steps=0", "--config.log_every=1", "--config.checkpoint_every=2",
             "--config.eval_images=0", "--config.progress=False", "--config.data_threads=1",
             "--config.loss.lpips_weight=0", "--config.loss.disc_start=5",
             "--config.autoencoder.restart_threshold=0.5"]

    def train(workdir: Path, kill_at_step: int | None = None):
        return run_train(workdir, flags, kill_at_step)

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert train(straight).returncode == 0
    train(killed, kill_at_step=4)  # before the discriminator starts, resumed after it
    done = train(killed)
    assert done.returncode == 0, done.stderr[-2000:]
    want = load_file(str(straight / "export" / "params.safetensors"))
    got = load_file(str(killed / "export" / "params.safetensors"))
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
