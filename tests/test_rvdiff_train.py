"""Rate-variable diffusion codec: training (loss, resume, export → files), the paper preset's
shapes, and the real TAEF2 latent space."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from ml_collections import config_dict
from rvdiff_helpers import image, tiny_config, toy_autoencoder

import nlc_jax
from nlc_jax.codecs import registry
from nlc_jax.codecs.rvdiff import training
from nlc_jax.codecs.weights import export_inference
from nlc_jax.configs.rvdiff import get_config
from nlc_jax.data.images import save_png
from nlc_jax.train import train_and_evaluate
from nlc_jax.train.writer import read_metrics

WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for i in range(4):
        save_png(folder / f"im{i}.png", image(70, 70, seed=i))
    return folder


@pytest.fixture()
def toy(monkeypatch):
    """Training and decoding load the toy autoencoder whatever the config names."""
    ae = toy_autoencoder()
    monkeypatch.setattr(training, "load_autoencoder", lambda config: ae)
    return ae


@pytest.fixture()
def compile_cache(tmp_path):
    """A persistent compilation cache for one test: its three runs compile one identical step
    (about 20 s on the loaded 2-core CPU) once. Without jax's private reset hook, no cache."""
    try:
        from jax._src.compilation_cache import reset_cache
    except ImportError:
        yield
        return
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {n: getattr(jax.config, n) for n in names}
    reset_cache()
    for name, value in zip(names, (str(tmp_path / "xla_cache"), 0.0, 0), strict=True):
        jax.config.update(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        reset_cache()


def train_config(folder, **overrides):
    c = tiny_config()
    c.update(data=str(folder), crop=64, batch_size=2, num_steps=4, warmup_steps=0, log_every=1,
             checkpoint_every=2, eval_images=0, progress=False, data_threads=1,
             learning_rate=3e-3, end_lr_factor=1.0)
    c.update(overrides)
    return c


def losses(workdir):
    return [r["loss"] for r in read_metrics(workdir) if r.get("split") == "train"]


def test_resume_continues_the_same_run_and_exports(data, toy, compile_cache,
                                                tmp_path):
    straight = tmp_path / "straight"
    train_and_evaluate(train_config(data), straight)
    stopped = tmp_path / "stopped"
    assert train_and_evaluate(train_config(data, stop_at_step=2), stopped)["step"] == 2
    assert not (stopped / "export").exists()
    assert train_and_evaluate(train_config(data), stopped)["step"] == 4
    np.testing.assert_allclose(losses(stopped), losses(straight), rtol=1e-5)
    assert (straight / "export" / "model.json").exists()


@pytest.mark.slow  # compiles the paper-size U-Net's gradient (about a minute on 2 cores)
def test_paper_preset_shapes_one_step_and_export(data, monkeypatch, tmp_path):
    from nlc_jax.train.loop import build_trainer

    ae = toy_autoencoder(channels=32)
    monkeypatch.setattr(training, "load_autoencoder", lambda config: ae)
    c = get_config("paper")
    c.update(data=str(data), crop=64, batch_size=1, eval_images=0)
    trainer = build_trainer(c)
    model = trainer.task.model
    assert (model.hyper_channels, model.width, model.multipliers, model.blocks) == (
        192, 128, (1, 2, 4), 2)
    batch = trainer.put_batch(np.stack([image(64, 64)]))
    state, metrics = trainer.step(trainer.state, batch)
    assert int(state["step"]) == 1 and np.isfinite(float(metrics["loss"]))
    export_inference(tmp_path, trainer.task.export(state["params"]), trainer.task.model_config())
    codec = registry.make(config_dict.ConfigDict(
        {"codec": "rvdiff", "checkpoint": str(tmp_path), "rate": 0.5, "steps": 2}))
    result = codec.encode(image(64, 96))
    np.testing.assert_array_equal(codec.decode(result.data), result.reconstruction)


@pytest.mark.slow  # TAEF2 encoder and decoder compile: ~15-20 s on the loaded 2-core CPU
@pytest.mark.skipif(not (WEIGHTS / "taef2_encoder.pth").exists(), reason="needs ../shared")
def test_taef2_latent_space_round_trip(tmp_path):
    c = tiny_config(autoencoder="taef2")
    task = training.RvdiffTask(c)
    assert task.autoencoder.channels == 32 and task.autoencoder.factor == 8
    export_inference(tmp_path, task.export(task.init(jax.random.key(0), 64)), task.model_config())
    codec = registry.make(config_dict.ConfigDict(
        {"codec": "rvdiff", "checkpoint": str(tmp_path), "rate": 0.5, "steps": 2}))
    result = codec.encode(image(64, 64))
    np.testing.assert_array_equal(nlc_jax.decode(result.data, checkpoint=str(tmp_path)),
                                  result.reconstruction)


@pytest.mark.slow  # a second Python process compiles the decoder (~20 s)
def test_another_process_decodes_the_same_image(tmp_path):
    """The sampler's noise and updates are fixed by the file: a fresh process (other jit caches,
    other memory layout) decodes the encoder's image exactly."""
    import subprocess
    import sys

    ae = toy_autoencoder()
    task = training.RvdiffTask(tiny_config(), autoencoder=ae)
    export_inference(tmp_path / "export", task.export(task.init(jax.random.key(0), 64)),
                     task.model_config())
    from nlc_jax.codecs.rvdiff import make_codec

    coder = make_codec(config_dict.ConfigDict({"checkpoint": str(tmp_path / "export"),
                                               "rate": 0.7, "steps": 4, "alpha_max": 1.0,
                                               "noise_seed": 12345}), autoencoder=ae)
    result = coder.encode(image(48, 80))
    (tmp_path / "a.nlc").write_bytes(result.data)
    here, data = str(Path(__file__).parent), str(tmp_path / "a.nlc")
    export, out = str(tmp_path / "export"), str(tmp_path / "out.npy")
    script = (f"import sys; sys.path.insert(0, {here!r})\n"
              "import numpy as np\n"
              "from rvdiff_helpers import toy_autoencoder\n"
              "from nlc_jax.codecs.rvdiff import training\n"
              "training.load_autoencoder = lambda config: toy_autoencoder()\n"
              "import nlc_jax\n"
              f"np.save({out!r}, nlc_jax.decode(open({data!r}, 'rb').read(), "
              f"checkpoint={export!r}))\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), result.reconstruction)
