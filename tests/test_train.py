"""Training loop: loss goes down, exact resume, 4 devices == 1 device, clear errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.data.images import save_png
from nlc_jax.train import CheckpointError, ConfigError, train_and_evaluate
from nlc_jax.train.checkpoint import TrainCheckpoints
from nlc_jax.train.writer import read_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(4):
        base = rng.integers(0, 256, (9, 9, 3)).repeat(8, 0).repeat(8, 1)[:70, :70]
        save_png(folder / f"im{i}.png", base.astype(np.uint8))
    return folder


def config(folder, **overrides):
    from nlc_jax.configs.hyperprior import get_config

    c = get_config("tiny")
    c.model.n, c.model.m = 8, 8
    c.update(data=str(folder), crop=64, batch_size=4, num_steps=6, warmup_steps=0,
              log_every=1, checkpoint_every=3, eval_images=0, progress=False, data_threads=1,
              learning_rate=3e-3, end_lr_factor=1.0)
    c.update(overrides)
    return c


def losses(workdir):
    return [r["loss"] for r in read_metrics(workdir)]


def test_tiny_run_lowers_the_loss_and_exports(data, tmp_path):
    result = train_and_evaluate(config(data, num_steps=30, log_every=10, eval_images=1,
                                       eval_data=str(data)), tmp_path)
    curve = losses(tmp_path)
    assert len(curve) == 3 and curve[-1] < 0.8 * curve[0], curve
    assert (tmp_path / "export" / "params.safetensors").exists()
    assert result["eval"]["bpp"] > 0 and json.loads((tmp_path / "eval_30.json").read_text())


@pytest.mark.slow  # three compilations of the step: ~1 min on an idle 2-core CPU
def test_resume_reproduces_the_loss_trajectory(data, tmp_path):
    straight = tmp_path / "straight"
    train_and_evaluate(config(data), straight)
    stopped = tmp_path / "stopped"
    assert train_and_evaluate(config(data, stop_at_step=3), stopped)["step"] == 3
    assert not (stopped / "export").exists()
    assert train_and_evaluate(config(data), stopped)["step"] == 6  # resumes from step 3
    assert losses(stopped) == losses(straight)


@pytest.mark.slow  # two subprocesses, each compiling the step
def test_four_devices_match_one(data, tmp_path):
    script = (
        "import sys, json, jax; sys.path.insert(0, %r)\n"
        "from tests.test_train import config\n"
        "from nlc_jax.train import train_and_evaluate\n"
        "from nlc_jax.train.writer import read_metrics\n"
        "train_and_evaluate(config(%r, num_steps=2), %r)\n"
        "print(json.dumps([len(jax.devices())] + [r['loss'] for r in read_metrics(%r)]))\n")
    out = {}
    for n in (1, 4):
        workdir = str(tmp_path / f"d{n}")
        env = dict(os.environ, JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        proc = subprocess.run([sys.executable, "-c", script % (str(ROOT), str(data), workdir,
                                                                workdir)],
                              env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out[1][0] == 1 and out[4][0] == 4
    np.testing.assert_allclose(out[4][1:], out[1][1:], rtol=1e-4)


def test_bad_config_and_corrupt_checkpoint_errors(data, tmp_path):
    with pytest.raises(ConfigError, match="num_steps"):
        train_and_evaluate(config(data, num_steps=0), tmp_path / "a")
    with pytest.raises(ConfigError, match="compute_dtype"):
        train_and_evaluate(config(data, compute_dtype="float8"), tmp_path / "a")
    with pytest.raises(ValueError, match="no such file"):
        train_and_evaluate(config(data, data=str(tmp_path / "nope")), tmp_path / "a")
    checkpoints = TrainCheckpoints(tmp_path / "ckpt", keep=2)
    state = {"step": jnp.int32(3), "params": {"w": jnp.arange(4.0)}}
    checkpoints.save(3, state)
    checkpoints.close()
    checkpoints = TrainCheckpoints(tmp_path / "ckpt", keep=2)
    restored = checkpoints.restore(3, state)
    np.testing.assert_array_equal(restored["params"]["w"], np.arange(4.0))
    for f in (tmp_path / "ckpt" / "3" / "default").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot restore the training checkpoint"):
        checkpoints.restore(3, state)


def test_cli_reports_errors_in_one_line(data, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--config", "hyperprior:tiny",
         "--workdir", str(tmp_path), "--config.batch_size=0"],
        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, cwd=ROOT,
        timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "train.py: error: batch_size must be > 0, got 0"
