"""TensorFlow Datasets inputs (the optional ``tf`` extra): a local image folder prepared as a
tfds dataset loads in ``encode.py --input tfds:...`` and in training (``data=tfds:...``).

Skipped when tensorflow-datasets is not installed (the project venv); run in a venv with the
extra: ``pip install -e '.[tf,dev]' && pytest tests/test_tfds.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import jax  # noqa: E402

from nlc_jax.data.datasets import ImageReadError, image_folder_builder, open_inputs  # noqa: E402
from nlc_jax.data.images import load_image, save_png  # noqa: E402
from nlc_jax.data.pipeline import DataSpecError, iterate, open_source, train_dataset  # noqa: E402
from nlc_jax.train import train_and_evaluate  # noqa: E402
from nlc_jax.train.writer import read_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(40, 50), (24, 30), (48, 48)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SHAPES):
        save_png(folder / f"img{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module", params=["array_record", "tfrecord"])
def prepared(request, folder, tmp_path_factory):
    """(dataset name, data_dir) of the folder prepared in each file format."""
    data_dir = tmp_path_factory.mktemp(f"tfds_{request.param}")
    name = f"tiny_folder_{request.param}"
    image_folder_builder(folder, name, data_dir=str(data_dir),
                         file_format=request.param).download_and_prepare()
    return name, str(data_dir)


def test_folder_builder_round_trips_the_images_in_order(folder, prepared):
    name, data_dir = prepared
    sources = open_inputs(f"tfds:{name}:test", data_dir)
    assert [s.name for s in sources] == ["img0", "img1", "img2"]
    for s in sources:
        np.testing.assert_array_equal(s.load(), load_image(folder / f"{s.name}.png"))
    assert [s.name for s in open_inputs(f"tfds:{name}", data_dir)] == ["img0", "img1", "img2"]


def test_training_source_reads_the_same_images(folder, prepared):
    name, data_dir = prepared
    source = open_source(f"tfds:{name}:test", data_dir)
    assert len(source) == 3
    shapes = sorted(source[i].shape[:2] for i in range(3))
    assert shapes == sorted(SHAPES)
    ds = train_dataset(f"tfds:{name}:test", crop=32, batch_size=2, seed=3, data_dir=data_dir)
    first = [b for _, b in zip(range(3), iterate(ds, 0, threads=1), strict=False)]
    assert first[0].shape == (2, 32, 32, 3) and first[0].dtype == np.uint8
    np.testing.assert_array_equal(next(iterate(ds, 2, threads=1)), first[2])


def test_missing_dataset_is_a_one_line_error(tmp_path):
    with pytest.raises(ImageReadError, match="tfds:no_such_set:test: cannot load") as e:
        open_inputs("tfds:no_such_set:test", str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(DataSpecError, match="data=tfds:no_such_set:train") as e:
        open_source("tfds:no_such_set", str(tmp_path))
    assert "\n" not in str(e.value)


def test_train_on_tfds_data(prepared, tmp_path):
    from nlc_jax.configs.hyperprior import get_config

    name, data_dir = prepared
    c = get_config("tiny")
    c.model.n, c.model.m = 8, 8
    c.update(data=f"tfds:{name}:test", tfds_data_dir=data_dir, crop=64, batch_size=2,
             num_steps=2, warmup_steps=0, log_every=1, checkpoint_every=2, eval_images=0,
             progress=False, data_threads=1)
    result = train_and_evaluate(c, tmp_path)
    assert result["step"] == 2 and len(read_metrics(tmp_path)) == 2
    assert (tmp_path / "export" / "params.safetensors").exists()


def test_encode_cli_reads_tfds_input(prepared, tmp_path):
    from nlc_jax.codecs.hyperprior.training import HyperpriorTask
    from nlc_jax.codecs.weights import export_inference
    from nlc_jax.configs.hyperprior import get_config

    name, data_dir = prepared
    c = get_config("tiny")
    c.model.n, c.model.m = 8, 8
    task = HyperpriorTask(c)
    export = export_inference(tmp_path / "model", task.export(task.init(jax.random.key(0), 64)),
                              task.model_config())
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "encode.py"), "--config", "hyperprior:tiny",
         f"--config.checkpoint={export}", f"--input=tfds:{name}:test",
         f"--tfds_data_dir={data_dir}", f"--output={out}"],
        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, cwd=ROOT,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.stem for p in out.glob("*.nlc")) == ["img0", "img1", "img2"]
