"""Shared helpers of the COOL-CHIC tests: configs, small images, a quickly fitted file."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from nlc_jax.codecs.coolchic import CoolChic
from nlc_jax.config_files import load_config

ROOT = Path(__file__).resolve().parents[1]


def get_config(preset: str = "fast"):
    """A preset's config with weight RDOQ off (each new codec compiles its RDOQ helpers, which
    would dominate these tests; ``test_weight_rdoq.py`` tests RDOQ and sets it itself)."""
    config = load_config("coolchic", preset)
    config.recipe.rdoq_passes = 0
    return config


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``[h, w, 3]`` uint8 smooth gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w, 1), y / max(h, 1), (x + y) / max(h + w, 1)], -1) * 200 + 30
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def random_params(codec: CoolChic, h: int, w: int, seed: int = 0, scale: float = 0.3):
    """Initial parameters with random latents and perturbed networks (non-trivial files)."""
    params = codec.init(jax.random.key(seed), (h, w, 3))
    keys = iter(jax.random.split(jax.random.key(seed + 1), 64))
    return jax.tree_util.tree_map(
        lambda a: a + scale * jax.random.normal(next(keys), a.shape), params)
