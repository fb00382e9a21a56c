"""The public API in ``nlc_jax/__init__.py``: load_config, make_codec, encode, decode."""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from coolchic_helpers import random_params, smooth_image
from toy_codec import ToyCodec

import nlc_jax
from nlc_jax.bitstream import BitstreamError


def test_import_is_cheap_and_exports_the_api():
    code = ("import sys, nlc_jax; assert 'jax' not in sys.modules, 'import nlc_jax imported jax'; "
            "print(sorted(n for n in nlc_jax.__all__ if not n.startswith('_')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for name in ("load_config", "make_codec", "encode", "decode", "load_autoencoder"):
        assert name in out.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nlc_jax.nope  # noqa: B018


def test_load_config_spellings_and_overrides(tmp_path):
    fast = nlc_jax.load_config("coolchic", "fast")
    assert nlc_jax.load_config("coolchic:fast").to_dict() == fast.to_dict()
    assert nlc_jax.load_config("configs/coolchic.py:fast").to_dict() == fast.to_dict()
    assert nlc_jax.load_config("coolchic:fast", overrides=["recipe.n_itr=77"]).recipe.n_itr == 77
    assert nlc_jax.load_config("coolchic").preset == "hop"  # the file's default preset
    # one shared recipe block: the family's common fields are the same in every codec
    shared = ("lr", "final_lr", "min_lr", "grad_clip")
    recipes = [nlc_jax.load_config(n, p).recipe for n, p in
               (("coolchic", "fast"), ("clric", "fast"), ("noise2latent", "fast"))]
    assert len({tuple(r[k] for k in shared) for r in recipes}) == 1
    own = tmp_path / "mine.py"
    own.write_text("from nlc_jax.configs import coolchic\n\n"
                   "def get_config(preset='fast'):\n"
                   "    c = coolchic.get_config(preset)\n"
                   "    c.lmbda = 0.02\n"
                   "    return c\n")
    assert nlc_jax.load_config(f"{own}:lop").lmbda == 0.02
    assert nlc_jax.load_config(str(own)).preset == "fast"
    with pytest.raises(ValueError, match="unknown coolchic preset 'nope'"):
        nlc_jax.load_config("coolchic", "nope")
    with pytest.raises(ValueError, match="no config 'nonesuch'.*coolchic"):
        nlc_jax.load_config("nonesuch")
    with pytest.raises(ValueError, match="unknown config key 'recipe.foo'"):
        nlc_jax.load_config("coolchic:fast", overrides=["recipe.foo=1"])


def test_encode_batches_images_and_lambdas_in_order():
    images = [smooth_image(16, 24, seed=1), smooth_image(20, 12, seed=2),
              smooth_image(16, 24, seed=3)]
    lmbdas = (1e-3, 3e-1)
    results = nlc_jax.encode(images, ToyCodec(steps=40), lmbdas, batch_size=4)
    assert len(results) == 6
    for k, result in enumerate(results):
        image = images[k // 2]
        assert result.reconstruction.shape == image.shape
        np.testing.assert_array_equal(ToyCodec().decode(result.data), result.reconstruction)
    for i in range(3):  # λ orders the rate of every image
        assert len(results[2 * i].data) > len(results[2 * i + 1].data)
    one = nlc_jax.encode(images[1], ToyCodec(steps=40), lmbdas[:1])
    assert len(one) == 1 and one[0].reconstruction.shape == images[1].shape


class _Diverging(ToyCodec):
    """The toy codec whose loss is never finite for λ > 1."""

    def loss(self, params, target, mask, lmbda, phase, progress, rng):
        loss, aux = super().loss(params, target, mask, lmbda, phase, progress, rng)
        return jnp.where(lmbda > 1.0, jnp.nan, loss), aux

    def eval_loss(self, params, target, mask, lmbda):
        loss, aux = super().eval_loss(params, target, mask, lmbda)
        return jnp.where(lmbda > 1.0, jnp.nan, loss), aux


def test_encode_errors():
    image = smooth_image(8, 8)
    with pytest.raises(nlc_jax.FitDivergedError, match=r"image 0 \(lmbda 2\): fit diverged"):
        nlc_jax.encode(image, _Diverging(steps=8), [1e-3, 2.0])
    with pytest.raises(ValueError, match=r"image 0: expected \[H, W, 3\] uint8"):
        nlc_jax.encode(image.astype(np.float32), ToyCodec(), [1e-3])
    with pytest.raises(ValueError, match="finite number > 0"):
        nlc_jax.encode(image, ToyCodec(), [float("nan")])
    with pytest.raises(ValueError, match="no images"):
        nlc_jax.encode([], ToyCodec(), [1e-3])


def test_decode_matches_the_encoder_and_refuses_bad_data():
    codec = nlc_jax.make_codec(nlc_jax.load_config("coolchic:fast",
                                                   overrides=["recipe.rdoq_passes=0"]))
    image = smooth_image(11, 9, seed=3)
    result = codec.finalize(random_params(codec, 11, 9, seed=7), codec.prepare_target(image),
                            image, 1e-3)
    decoded = nlc_jax.decode(result.data)
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, result.reconstruction)
    with pytest.raises(BitstreamError):
        nlc_jax.decode(result.data[:-3])
    with pytest.raises(TypeError):
        nlc_jax.decode(result.data, model="x")  # models are named: checkpoint=...


@pytest.mark.slow  # ~1-4 CPU-minutes: compiling COOL-CHIC's phases
def test_coolchic_encode_decode_round_trip():
    config = nlc_jax.load_config("coolchic:fast", overrides=[
        "recipe.n_itr=12", "recipe.warmup_steps=2", "recipe.final_steps=2",
        "recipe.n_candidates=1", "recipe.rdoq_passes=0"])
    image = smooth_image(16, 24, seed=4)
    gray = np.repeat(image[..., :1], 3, axis=-1)  # a gray input decodes gray
    results = nlc_jax.encode([image, gray], nlc_jax.make_codec(config), [2e-3])
    for result, source in zip(results, (image, gray), strict=True):
        decoded = nlc_jax.decode(result.data)
        assert decoded.dtype == np.uint8 and decoded.shape == source.shape
        np.testing.assert_array_equal(decoded, result.reconstruction)
    assert (decoded == decoded[..., :1]).all()
