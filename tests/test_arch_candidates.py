"""Per-image decoder size: ``arch_candidates`` fits every preset and keeps the cheapest file."""

from __future__ import annotations

import numpy as np
from coolchic_helpers import get_config, smooth_image
from PIL import Image

from nlc_jax.codecs import registry
from nlc_jax.data.datasets import open_inputs
from nlc_jax.data.images import load_image
from nlc_jax.fit.coding import rd_cost
from nlc_jax.fit.pipeline import EncodeSettings, encode_images


def test_candidates_keep_the_lowest_rd_cost(tmp_path):
    config = get_config("fast")
    config.recipe.n_itr, config.recipe.warmup_steps = 12, 2
    config.recipe.final_steps, config.recipe.n_candidates = 2, 1
    config.recipe.rdoq_passes = 0
    config.arch_candidates = "fast,lop"
    codec = registry.make(config)
    assert [c.arch for c in codec.arch_candidates()] == [
        registry.make(get_config(p)).arch for p in ("fast", "lop")]

    Image.fromarray(smooth_image(16, 24, seed=2)).save(tmp_path / "img.png")
    image = load_image(tmp_path / "img.png")
    settings = EncodeSettings(lmbdas=(2e-3,), checkpoint_every_s=None, progress=False)
    outcome = encode_images(codec, open_inputs(str(tmp_path / "img.png")), tmp_path / "out",
                            settings)
    assert len(outcome.rows) == 1 and not outcome.errors
    costs = outcome.candidate_costs["img.nlc"]
    assert set(costs) == {"fast", "lop"} and np.isfinite(list(costs.values())).all()
    data = (tmp_path / "out" / "img.nlc").read_bytes()
    decoded = registry.decode_bytes(data)
    assert rd_cost(data, decoded, image, 2e-3) == min(costs.values())
