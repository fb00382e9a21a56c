"""COOL-CHIC through the batched engine (tiny sizes): a λ sweep in one batch, files decode."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from nlc_jax.codecs import registry
from nlc_jax.configs import coolchic as coolchic_config
from nlc_jax.fit import FitOptions, fit_batch
from nlc_jax.fit.buckets import pad_target

SAMPLE = Path(__file__).parents[1] / "samples" / "kodim15_256.png"


@pytest.mark.slow  # ~4 CPU-minutes, mostly compiling the four phases
def test_coolchic_lambda_sweep_in_one_padded_batch():
    from nlc_jax.data.images import load_image

    config = coolchic_config.get_config("fast")
    config.recipe.n_itr, config.recipe.warmup_steps = 60, 5
    config.recipe.final_steps, config.recipe.n_candidates = 5, 2
    codec = registry.make(config)
    image = load_image(SAMPLE)[100:124, 60:92]                  # 24x32 crop
    target = codec.prepare_target(image)
    padded, mask = pad_target(target, (32, 32))                  # bucket: 32x32, 25% padding
    lmbdas = np.array([2e-4, 2e-2], np.float32)
    fit = fit_batch(codec, np.stack([padded] * 2), np.stack([mask] * 2), lmbdas,
                    np.array([7, 7]), options=FitOptions(chunk_steps=20))
    assert not fit.failed.any() and not fit.nan_steps.any()
    assert fit.aux["bpp"][0] > fit.aux["bpp"][1]                 # λ orders the rate
    results = []
    for i, lm in enumerate(lmbdas):
        params = jax.tree.map(lambda x, i=i: x[i], fit.params)
        res = codec.finalize(params, target, image, float(lm))
        np.testing.assert_array_equal(codec.decode(res.data), res.reconstruction)
        assert res.reconstruction.shape == image.shape
        results.append(res)
    assert len(results[0].data) > len(results[1].data)
