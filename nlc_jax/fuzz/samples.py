"""Tiny real files of every codec, and the decoders that read them: the fuzzing corpus.

Each file is written by its codec's own encoder path (``finalize`` / ``encode``) from a small
image and random (untrained) parameters, which code as exactly as fitted ones and take seconds
instead of minutes. Files are small (a few hundred bytes) so that truncation at every length is
cheap. CLRIC and rvdiff need an autoencoder, and the hyperprior, GLC and rvdiff their trained
weights: a 4-channel TAE with numpy-drawn random weights (:func:`corpus_tae`, rebuilt identically
by the decoders), and randomly initialised models, smaller than their ``tiny`` presets, exported
next to the files (:data:`MODELS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.codecs import registry

CODECS = ("coolchic", "clric", "noise2latent", "hyperprior", "glc", "rvdiff")
#: the corpus's image size per codec (height, width): a few hundred bytes to 3 KB per file
SIZES = {"coolchic": (11, 9), "clric": (20, 28), "noise2latent": (13, 10), "hyperprior": (20, 24),
         "glc": (24, 20), "rvdiff": (20, 28)}
#: the folder of each trained codec's model export, next to the files
MODELS = {"hyperprior": "hyperprior_model", "glc": "glc_model", "rvdiff": "rvdiff_model"}
HYPERPRIOR_MODEL = MODELS["hyperprior"]
_TAE = "taesd"


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``[h, w, 3]`` uint8 smooth gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w, 1), y / max(h, 1), (x + y) / max(h + w, 1)], -1) * 200 + 30
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def _perturbed(params: Any, seed: int, scale: float) -> Any:
    keys = iter(jax.random.split(jax.random.key(seed), 256))
    return jax.tree.map(lambda a: a + scale * jax.random.normal(next(keys), a.shape), params)


def corpus_tae():
    """A 4-channel TAE (``taesd`` architecture) with random weights drawn by numpy (He-scaled
    kernels, zero biases), bound as CLRIC uses it: the same weights on every machine and under any
    XLA flags (``jax.random`` initialisation is not), so neither stored nor seeded by jax."""
    from nlc_jax.autoencoders import TAE_VARIANTS, make_tae
    from nlc_jax.autoencoders.tae import TAEDecoder, TAEEncoder
    from nlc_jax.codecs.clric import BoundAutoencoder

    cfg = TAE_VARIANTS[_TAE]
    key = jax.random.key(0)
    shapes = {"encoder": jax.eval_shape(TAEEncoder(cfg).init, key, jnp.zeros((1, 16, 16, 3))),
              "decoder": jax.eval_shape(TAEDecoder(cfg).init, key, jnp.zeros((1, 2, 2, 4)))}
    rng = np.random.default_rng(0)

    def draw(leaf):
        if len(leaf.shape) < 2:
            return np.zeros(leaf.shape, np.float32)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    params = {k: jax.tree.map(draw, v["params"]) for k, v in shapes.items()}
    return BoundAutoencoder.of(_TAE, make_tae(cfg), params)


def _overfitted(codec: Any, image: np.ndarray, lmbda: float, seed: int) -> tuple[bytes, Any]:
    target = codec.prepare_target(image)
    params = codec.init(jax.random.key(seed), target.shape)
    result = codec.finalize(_perturbed(params, seed + 1, 0.3), target, image, lmbda)
    return result.data, result.reconstruction


def _coolchic(size: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    from nlc_jax.config_files import load_config

    config = load_config("coolchic", "fast")
    config.recipe.rdoq_passes = 0
    config.model.weight_coding = "range"  # the current format (auto picks version 5 this small)
    return _overfitted(registry.make(config), smooth_image(*size, seed=3), 1e-3, seed=7)


def _clric(size: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    from nlc_jax.codecs.clric import Clric
    from nlc_jax.config_files import load_config

    codec = Clric(load_config("clric", "fast"), autoencoder=corpus_tae())
    return _overfitted(codec, smooth_image(*size, seed=4), 1.0, seed=2)


def _noise2latent(size: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    from nlc_jax.config_files import load_config

    config = load_config("noise2latent", "fast")
    config.model.n_levels = 3
    config.model.gpp = ("W-3-linear-relu", "W-3-residual-relu", "2-1-linear-none")
    config.model.gpp_widths = (6, 8, 4)
    config.model.synthesis = ("8-1-linear-relu", "3-1-linear-none", "3-3-residual-none")
    return _overfitted(registry.make(config), smooth_image(*size, seed=5), 1e-3, seed=11)


def _hyperprior(size: tuple[int, int], model: Path) -> tuple[bytes, np.ndarray]:
    from nlc_jax.codecs.hyperprior.training import HyperpriorTask
    from nlc_jax.codecs.weights import export_untrained
    from nlc_jax.config_files import load_config

    config = load_config("hyperprior", "tiny")
    config.model.n, config.model.m = 8, 12
    export_untrained(model, HyperpriorTask(config))
    return _encoded(registry.make(_checkpoint_config("hyperprior", model)), size, seed=6)


def _glc(size: tuple[int, int], model: Path) -> tuple[bytes, np.ndarray]:
    import tempfile

    from nlc_jax.codecs.glc.training import export_untrained
    from nlc_jax.config_files import load_config

    config = load_config("glc", "tiny")
    config.loss.lpips_weight = 0.0  # no VGG weights needed
    config.autoencoder.update(channels=4, channel_mult=(1,) * 5, attention_factors=(),
                              z_channels=4, codebook_size=16, codebook_dim=8)
    config.latent.update(n=8, hyper_codebook_size=8, hyper_dim=4)
    with tempfile.TemporaryDirectory() as stage_one:
        export_untrained(config, Path(stage_one), model)
    return _encoded(registry.make(_checkpoint_config("glc", model)), size, seed=8)


def _rvdiff(size: tuple[int, int], model: Path) -> tuple[bytes, np.ndarray]:
    from nlc_jax.codecs.rvdiff import make_codec
    from nlc_jax.codecs.rvdiff.training import RvdiffTask
    from nlc_jax.codecs.weights import export_untrained
    from nlc_jax.config_files import load_config

    config = load_config("rvdiff", "tiny")
    config.model.update(hyper_channels=4, width=8, knots=4)
    tae = corpus_tae()
    export_untrained(model, RvdiffTask(config, autoencoder=tae))
    return _encoded(make_codec(_checkpoint_config("rvdiff", model), autoencoder=tae), size,
                    seed=9)


def _checkpoint_config(codec: str, model: Path) -> Any:
    from ml_collections import config_dict

    return config_dict.ConfigDict({"codec": codec, "checkpoint": str(model)})


def _encoded(codec: Any, size: tuple[int, int], seed: int) -> tuple[bytes, np.ndarray]:
    result = codec.encode(smooth_image(*size, seed=seed))
    return result.data, result.reconstruction


def make_corpus(directory: str | Path, codecs: tuple[str, ...] = CODECS,
                size: tuple[int, int] | None = None) -> dict[str, Path]:
    """Write ``<codec>.nlc`` and ``<codec>.npy`` (the encoder's reconstruction, ``[H, W, 3]``
    uint8) for each of ``codecs`` into ``directory``, plus the models of those in :data:`MODELS`
    (``<directory>/<MODELS[codec]>``); returns ``{codec: file}``. Images are ``size`` (height, width), by default :data:`SIZES` (tiny).

    Raises:
      ValueError: an unknown codec name.
    """
    unknown = sorted(set(codecs) - set(CODECS))
    if unknown:
        raise ValueError(f"no fuzzing sample for codec(s) {', '.join(unknown)}; "
                         f"known: {', '.join(CODECS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    makers = {"coolchic": _coolchic, "clric": _clric, "noise2latent": _noise2latent,
              "hyperprior": _hyperprior, "glc": _glc, "rvdiff": _rvdiff}
    files = {}
    for name in codecs:
        hw = size or SIZES[name]
        data, reconstruction = (makers[name](hw, directory / MODELS[name]) if name in MODELS
                                else makers[name](hw))
        files[name] = directory / f"{name}.nlc"
        files[name].write_bytes(data)
        np.save(directory / f"{name}.npy", np.asarray(reconstruction, np.uint8))
    return files


def corpus_decoders(directory: str | Path) -> dict[str, Any]:
    """Decoders of the corpus in ``directory`` that the registry cannot make alone, by codec name
    (``registry.decode_bytes(data, decoders=...)``): CLRIC with :func:`corpus_tae`, the codecs
    of :data:`MODELS` with the corpus's models (those present), rvdiff also with
    :func:`corpus_tae`."""
    from nlc_jax.codecs.clric import Clric
    from nlc_jax.codecs.rvdiff import make_codec

    tae = corpus_tae()
    decoders: dict[str, Any] = {"clric": Clric(autoencoder=tae)}
    for codec, folder in MODELS.items():
        model = Path(directory) / folder
        if not model.is_dir():
            continue
        decoders[codec] = (make_codec({"checkpoint": str(model)}, autoencoder=tae)
                           if codec == "rvdiff" else registry.decoder(codec, str(model)))
    return decoders
