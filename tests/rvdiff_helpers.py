"""Helpers of the rvdiff tests: a fast toy autoencoder, a tiny config, a test image."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from nlc_jax.autoencoders import AutoencoderFns
from nlc_jax.codecs.clric import BoundAutoencoder
from nlc_jax.configs.rvdiff import get_config

FACTOR, CHANNELS = 8, 4


def toy_autoencoder(seed: int = 0, channels: int = CHANNELS) -> BoundAutoencoder:
    """A linear 8×-pooling autoencoder with random weights (fast stand-in for a VAE)."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {"enc": 0.5 * jax.random.normal(k1, (3, channels)),
              "dec": 0.5 * jax.random.normal(k2, (channels, 3))}

    def encode(p, x):
        b, h, w, _ = x.shape
        pooled = x.reshape(b, h // FACTOR, FACTOR, w // FACTOR, FACTOR, 3).mean(axis=(2, 4))
        return (pooled - 0.5) @ p["enc"]

    def decode(p, z):
        return jnp.repeat(jnp.repeat(z @ p["dec"] + 0.5, FACTOR, 1), FACTOR, 2)

    ident = jax.jit(lambda p, x: x)
    fns = AutoencoderFns("toy", channels, FACTOR, jax.jit(encode), jax.jit(decode),
                         ident, jax.jit(encode), jax.jit(decode), ident, None)
    return BoundAutoencoder.of("toy", fns, params)


def tiny_config(**overrides) -> config_dict.ConfigDict:
    c = get_config("tiny")
    c.model.hyper_channels, c.model.width, c.model.knots = 4, 8, 4
    c.update(overrides)
    return c


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)
    return np.clip(smooth[:h, :w] + rng.integers(-10, 10, (h, w, 3)), 0, 255).astype(np.uint8)
