"""Training input pipeline (grain) and GDN layer."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.data.images import save_png
from nlc_jax.data.pipeline import (
    DataSpecError,
    SkippedImageWarning,
    iterate,
    open_source,
    random_crop_flip,
    train_dataset,
)
from nlc_jax.layers import GDN, lower_bound, nonneg_init, nonneg_value


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 50), (24, 30), (48, 48), (33, 20)]):
        save_png(tmp_path / f"im{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return tmp_path


def test_batches_are_deterministic_and_resumable(folder):
    ds = train_dataset(str(folder), crop=32, batch_size=3, seed=7)
    first = [b for _, b in zip(range(5), iterate(ds, 0, threads=2), strict=False)]
    assert first[0].shape == (3, 32, 32, 3) and first[0].dtype == np.uint8
    again = [b for _, b in zip(range(5), iterate(train_dataset(str(folder), crop=32,
                                                                batch_size=3, seed=7), 0), strict=False)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = next(iterate(ds, 3))
    np.testing.assert_array_equal(resumed, first[3])
    other = next(iterate(train_dataset(str(folder), crop=32, batch_size=3, seed=8), 0))
    assert not np.array_equal(other, first[0])


def test_shards_partition_the_global_batch(folder):
    full = next(iterate(train_dataset(str(folder), crop=16, batch_size=4, seed=1)))
    parts = [next(iterate(train_dataset(str(folder), crop=16, batch_size=2, seed=1,
                                        shard_index=i, shard_count=2))) for i in range(2)]
    np.testing.assert_array_equal(np.stack([parts[0][0], parts[1][0], parts[0][1], parts[1][1]]),
                                  full)


def test_crop_pads_small_images_and_flips():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    out = random_crop_flip(image, 8, np.random.default_rng(0))
    assert out.shape == (8, 8, 3)
    seen = set()
    for seed in range(20):
        crop = random_crop_flip(image, 6, np.random.default_rng(seed))
        seen.add(bool(np.array_equal(crop[:5], image)))
        assert np.array_equal(crop[:5], image) or np.array_equal(crop[:5], image[:, ::-1])
    assert seen == {True, False}


def test_unreadable_file_is_skipped_with_a_warning(folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    source = open_source(str(folder))
    index = [p.name for p in source._paths].index("broken.png")
    with pytest.warns(SkippedImageWarning, match="broken.png"):
        image = source[index]
    assert image.ndim == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source[index]  # reported once only


def test_bad_specs_raise_one_line_errors(tmp_path):
    with pytest.raises(DataSpecError, match="no such file"):
        open_source(str(tmp_path / "missing"))
    with pytest.raises(DataSpecError, match="tensorflow-datasets"):
        open_source("tfds:clic")
    with pytest.raises(DataSpecError, match="positive"):
        train_dataset(str(tmp_path), crop=0, batch_size=1, seed=0)


def test_gdn_matches_formula_and_igdn():
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    gdn = GDN()
    params = gdn.init(jax.random.key(1), x)
    beta = nonneg_value(params["params"]["beta"], 1e-6)
    gamma = nonneg_value(params["params"]["gamma"])
    np.testing.assert_allclose(beta, 1.0, rtol=1e-6)
    np.testing.assert_allclose(gamma, 0.1 * np.eye(3), atol=1e-6)
    y = gdn.apply(params, x)
    np.testing.assert_allclose(y, x / jnp.sqrt(1 + 0.1 * x**2), rtol=1e-5)
    z = GDN(inverse=True).apply(params, x)
    np.testing.assert_allclose(z, x * jnp.sqrt(1 + 0.1 * x**2), rtol=1e-5)


def test_reparameterisation_stays_nonnegative_and_trainable():
    stored = nonneg_init(jnp.array([0.0, 0.5, 2.0]))
    np.testing.assert_allclose(nonneg_value(stored), [0.0, 0.5, 2.0], atol=1e-6)
    assert float(nonneg_value(jnp.array([-3.0]), 0.1)[0]) == pytest.approx(0.1, abs=1e-6)
    # Clamped value: a gradient that would raise it flows, one that would lower it does not.
    g_up = jax.grad(lambda s: -nonneg_value(s, 0.1).sum())(jnp.array([-3.0]))
    g_down = jax.grad(lambda s: nonneg_value(s, 0.1).sum())(jnp.array([-3.0]))
    assert float(g_up[0]) != 0.0 and float(g_down[0]) == 0.0
    assert float(jax.grad(lambda v: lower_bound(v, 1.0))(2.0)) == 1.0
