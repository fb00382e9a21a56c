"""A tiny but real overfitted codec used to test the batched fitting engine.

Per fit: a latent grid ``[H, W, 3]`` (:data:`LATENT_CHANNELS` latents per pixel), a 1×1 synthesis
``3 → 3`` and a
factorized Laplace rate model with one learned scale per latent channel. Training uses additive
uniform noise (phase ``warmup``) or straight-through rounding (``final``); evaluation
rounds. The file stores the rounded latents (zlib) and the synthesis weights (float32), so
``decode`` reproduces ``finalize``'s reconstruction exactly. It implements
:class:`nlc_jax.codecs.base.OverfittedCodec`.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nlc_jax.codecs.base import EncodeResult, Phase

LATENT_CHANNELS = 3
MAX_SIDE = 64  # largest (padded) target side the toy codec supports


def _laplace_bits(y: jax.Array, log_scale: jax.Array) -> jax.Array:
    """Bits of integer-binned ``y`` under a zero-mean Laplace of scale ``exp(log_scale)``."""
    b = jnp.exp(log_scale)

    def cdf(x):
        return jnp.where(x < 0, 0.5 * jnp.exp(x / b), 1.0 - 0.5 * jnp.exp(-x / b))

    p = jnp.maximum(cdf(y + 0.5) - cdf(y - 0.5), 1e-9)
    return -jnp.log2(p)


def _synthesize(latents, w, bias):
    return latents @ w + bias


@dataclasses.dataclass
class ToyCodec:
    """Toy overfitted codec. ``steps`` sets the length of the main phase."""

    steps: int = 40
    candidates: int = 2
    lr: float = 0.1
    name: str = "toy"

    def recipe(self) -> list[Phase]:
        return [Phase("warmup", max(1, self.steps // 4), keep=1),
                Phase("final", self.steps)]

    @property
    def n_candidates(self) -> int:
        return self.candidates

    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(image, np.float32) / 255.0

    def init(self, rng, target_shape):
        h, w, c = target_shape
        _, k2 = jax.random.split(rng)
        return {
            # zero latents: a padded fit starts exactly like the unpadded one (mask test)
            "latents": jnp.zeros((h, w, LATENT_CHANNELS)),
            "w": jax.random.normal(k2, (LATENT_CHANNELS, c)) * 0.3,
            "b": jnp.full((c,), 0.5),
            "log_scale": jnp.zeros((LATENT_CHANNELS,)),
        }

    def optimizer(self, phase: Phase) -> optax.GradientTransformation:
        return optax.adam(optax.cosine_decay_schedule(self.lr, max(phase.steps, 1), 0.1))

    def _loss(self, params, target, mask, lmbda, latents):
        recon = _synthesize(latents, params["w"], params["b"])
        n = jnp.maximum(jnp.sum(mask), 1.0)
        mse = jnp.sum(mask[..., None] * jnp.square(recon - target)) / (n * target.shape[-1])
        bits = jnp.sum(mask[..., None] * _laplace_bits(latents, params["log_scale"]))
        bpp = bits / n
        loss = mse + lmbda * bpp
        psnr = -10.0 * jnp.log10(jnp.maximum(mse, 1e-12))
        return loss, {"mse": mse, "bpp": bpp, "psnr_db": psnr}

    def loss(self, params, target, mask, lmbda, phase, progress, rng):
        y = params["latents"]
        if phase.name == "final":
            y = y + jax.lax.stop_gradient(jnp.round(y) - y)
        else:
            # noise drawn on a fixed canvas, so padding does not change the realisation
            noise = jax.random.uniform(rng, (MAX_SIDE, MAX_SIDE, y.shape[-1]), minval=-0.5,
                                       maxval=0.5)
            y = y + noise[:y.shape[0], :y.shape[1]]
        loss, aux = self._loss(params, target, mask, lmbda, y)
        # Test hook: a fit with λ > 1 diverges (NaN loss) in the second half of every phase.
        return jnp.where((lmbda > 1.0) & (progress >= 0.5), jnp.nan, loss), aux

    def eval_loss(self, params, target, mask, lmbda):
        return self._loss(params, target, mask, lmbda, jnp.round(params["latents"]))

    def finalize(self, params, target, image, lmbda, refine=True) -> EncodeResult:
        del refine  # nothing to refine
        h, w, _ = target.shape
        q = np.clip(np.round(np.asarray(params["latents"])[:h, :w]), -127, 127).astype(np.int8)
        wts = np.asarray(params["w"], np.float32)
        bias = np.asarray(params["b"], np.float32)
        data = (b"TOY1" + struct.pack("<II", h, w) + wts.tobytes() + bias.tobytes()
                + zlib.compress(q.tobytes(), 9))
        recon = self.decode(data)
        mse = float(np.mean((recon.astype(np.float64) - image) ** 2))
        return EncodeResult(data, recon, {"psnr_db": 10 * np.log10(255.0**2 / max(mse, 1e-12)),
                                          "mac_per_pixel": 9.0})

    def decode(self, data: bytes) -> np.ndarray:
        if data[:4] != b"TOY1":
            raise ValueError("not a toy-codec file")
        h, w = struct.unpack("<II", data[4:12])
        nw = LATENT_CHANNELS * 3
        wts = np.frombuffer(data[12:12 + 4 * nw], np.float32).reshape(LATENT_CHANNELS, 3)
        bias = np.frombuffer(data[12 + 4 * nw:12 + 4 * nw + 12], np.float32)
        q = np.frombuffer(zlib.decompress(data[24 + 4 * nw:]), np.int8).reshape(h, w, -1)
        recon = _synthesize(q.astype(np.float32), wts, bias)
        return np.clip(np.round(recon * 255.0), 0, 255).astype(np.uint8)


def make(config) -> ToyCodec:
    """Registry-style factory: ``config.steps`` (optional)."""
    return ToyCodec(steps=int(config.get("steps", 40)))


def register() -> None:
    """Make ``config.codec = "toy"`` resolvable through the codec registry (tests only)."""
    from nlc_jax.codecs import registry
    registry._FACTORIES.setdefault("toy", "toy_codec:make")


def subprocess_env() -> dict[str, str]:
    """Environment for a test's subprocess (``toy_encode.py``, ``encode.py``): CPU JAX, and this
    folder and the checkout on ``PYTHONPATH`` so ``toy_codec`` and ``nlc_jax`` import."""
    import os
    from pathlib import Path

    tests = Path(__file__).parent
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(tests), str(tests.parent), env.get("PYTHONPATH", "")])
    return env
