"""The Noise-to-Latent codec (Lin et al., arXiv 2511.08009; see ``docs/noise2latent.md``).

Nothing about the latents is transmitted: the file holds a 32-bit seed, the architecture and
the entropy-coded weights of the GPP, upsampling and synthesis networks. The decoder regenerates
the noise pyramid from the seed (``nlc_jax.entropy.seeded_noise``: integer Threefry, identical on
every machine), predicts ``μ, σ`` per latent position, forms ``y = μ + σ·ε`` in one shot and
synthesises the image.

Fitting (pure, vmapped by ``nlc_jax.fit``): parameters are ``{"noise": (ε_0, …), "seed":
[2] float32 (the seed's two 16-bit halves), "gpp", "upsampling", "synthesis", "log2_steps"}``;
``noise`` and ``seed`` are constants of a candidate (the optimizer leaves them alone), so the
engine's candidates are a seed search for free. Loss = MSE on [0, 1] RGB + λ · bpp, where bpp is
the weights' rate under :class:`~nlc_jax.entropy.weight_model.WeightEntropyModel` (learned
per-tensor steps, uniform-noise proxy; straight-through rounding in the final phase).

File (``.nlc`` container, codec ``noise2latent``): ``HEADER`` (version, seed, architecture) and
``NETWORKS`` (the weight model's bytes). bpp is 8 × file size / pixels.

Exactness: the noise and the dequantized weights are bit-identical on every machine; the image
is computed by the one numpy float32 function :func:`reconstruct`, which ``finalize`` itself
calls, so ``decode`` returns exactly ``finalize``'s reconstruction on a machine with the same
numpy/BLAS; another BLAS or the jitted float32 path may move a pixel by one level (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nlc_jax.bitstream.container import SectionType, read_image_container, write_container
from nlc_jax.codecs import recipe
from nlc_jax.codecs.base import EncodeResult, Phase
from nlc_jax.codecs.noise2latent.arch import (
    NETWORKS,
    N2LArch,
    init_networks,
    mac_per_pixel,
    read_header,
    write_header,
)
from nlc_jax.codecs.noise2latent.generate import decode_image
from nlc_jax.codecs.overfitted.layers import zeros_template
from nlc_jax.codecs.overfitted.upsampling import level_shape
from nlc_jax.data.images import to_uint8
from nlc_jax.entropy.seeded_noise import gaussian_pyramid
from nlc_jax.entropy.weight_model import WeightEntropyModel
from nlc_jax.metrics.psnr import psnr


def seed_of(params: dict) -> int:
    """The 32-bit noise seed of a fit (stored as two exact 16-bit float32 halves)."""
    hi, lo = (int(v) for v in np.asarray(params["seed"], np.float64))
    return (hi << 16) | lo


def reconstruct(seed: int, nets: dict, arch: N2LArch, height: int, width: int) -> np.ndarray:
    """Seed and dequantized networks → ``[height, width, 3]`` uint8 (numpy float32 path)."""
    shapes = [level_shape(height, width, i) for i in range(arch.n_levels)]
    noise = gaussian_pyramid(seed, shapes, arch.noise_channels, np)
    nets = jax.tree.map(lambda a: np.asarray(a, np.float32), nets)
    return to_uint8(decode_image(noise, nets, arch, np))


class Noise2Latent(recipe.RecipeMixin):
    """Noise-to-Latent overfitted codec (see the module docstring)."""

    name = "noise2latent"

    def __init__(self, config=None):
        """``config`` from ``configs/noise2latent.py``; ``None`` gives a decode-only codec."""
        self.config = config
        self.weights = WeightEntropyModel(
            float(config.init_log2_step) if config is not None else -7.0)
        if config is not None:
            self.arch = N2LArch.from_config(config.model)

    # ---- recipe -------------------------------------------------------------------------
    def optimizer(self, phase: Phase) -> optax.GradientTransformation:
        return optax.multi_transform(
            {"frozen": optax.set_to_zero(),
             "nets": recipe.network_optimizer(self.config.recipe, phase)},
            lambda params: {k: ("frozen" if k in ("noise", "seed") else "nets")
                            for k in params})

    # ---- fitting ------------------------------------------------------------------------
    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(image, np.float32) / 255.0

    def init(self, rng: jax.Array, target_shape: tuple[int, int, int]) -> dict:
        """Random networks and a random seed; the noise of the (padded) ``target_shape``."""
        seed_key, net_key = jax.random.split(rng)
        halves = jax.random.randint(seed_key, (2,), 0, 1 << 16, jnp.int32)
        seed = (halves[0].astype(jnp.uint32) << 16) | halves[1].astype(jnp.uint32)
        h, w = target_shape[:2]
        shapes = [level_shape(h, w, i) for i in range(self.arch.n_levels)]
        nets = init_networks(net_key, self.arch)
        return {"noise": gaussian_pyramid(seed, shapes, self.arch.noise_channels, jnp),
                "seed": halves.astype(jnp.float32), **nets,
                "log2_steps": self.weights.init_steps(nets)}

    def _forward(self, params: dict, target: jax.Array, mask: jax.Array, lmbda: jax.Array,
                 mode: str, rng: jax.Array | None) -> tuple[jax.Array, dict]:
        nets, weight_bits = self.weights.quantize({k: params[k] for k in NETWORKS},
                                                  params["log2_steps"], mode, rng)
        masks = [mask[::2 ** i, ::2 ** i] for i in range(self.arch.n_levels)]
        noise = jax.lax.stop_gradient(params["noise"])
        x = decode_image(noise, nets, self.arch, jnp, masks)
        n_pixels = jnp.maximum(jnp.sum(mask), 1.0)
        mse = jnp.sum(jnp.square(x - target) * mask[..., None]) / (target.shape[-1] * n_pixels)
        bpp = weight_bits / n_pixels
        aux = {"mse": mse, "bpp": bpp, "psnr_db": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}
        return mse + lmbda * bpp, aux

    def loss(self, params, target, mask, lmbda, phase: Phase, progress, rng):
        del progress
        mode = "ste" if phase.name == "final" else "noise"
        return self._forward(params, target, mask, lmbda, mode, rng)

    def eval_loss(self, params, target, mask, lmbda):
        return self._forward(params, target, mask, lmbda, "round", None)

    # ---- bitstream ----------------------------------------------------------------------
    def finalize(self, params, target: np.ndarray, image: np.ndarray, lmbda: float,
                 refine: bool = True) -> EncodeResult:
        del target, lmbda, refine  # no search after quantization: the file is the fit
        h, w = image.shape[:2]
        seed = seed_of(params)
        nets = {k: jax.tree.map(np.asarray, params[k]) for k in NETWORKS}
        steps = {k: jax.tree.map(np.asarray, params["log2_steps"][k]) for k in NETWORKS}
        weight_bytes, deq, module_bits = self.weights.compress(nets, steps)
        data = write_container(self.name, h, w, 3, 8, [
            (SectionType.HEADER, write_header(self.arch, seed)),
            (SectionType.NETWORKS, weight_bytes)])
        recon = reconstruct(seed, deq, self.arch, h, w)
        n = h * w
        info = {"bpp": 8.0 * len(data) / n, "psnr_db": float(psnr(image, recon)),
                "mac_per_pixel": mac_per_pixel(self.arch), "seed": float(seed),
                **{f"{k}_bpp": module_bits.get(k, 0) / n for k in NETWORKS}}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def decode(self, data: bytes) -> np.ndarray:
        c = read_image_container(data, self.name)
        arch, seed = read_header(c.section(SectionType.HEADER))
        nets = self.weights.decompress(c.section(SectionType.NETWORKS), zeros_template(init_networks, arch))
        return reconstruct(seed, nets, arch, c.height, c.width)


def make_codec(config=None) -> Noise2Latent:
    """Registry factory; ``config=None`` gives a decode-only codec."""
    return Noise2Latent(config)
