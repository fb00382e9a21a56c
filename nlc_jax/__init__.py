"""nlc_jax: neural image compression in JAX/Flax, built for accelerator throughput.

The public API (``docs/api.md``)::

    import nlc_jax
    config = nlc_jax.load_config("coolchic", "fast")         # or "coolchic:fast", or a file path
    codec = nlc_jax.make_codec(config)                       # optional: encode takes the config
    results = nlc_jax.encode(images, config, lmbdas=(1e-3, 4e-3))   # list[EncodeResult]
    image = nlc_jax.decode(results[0].data)                  # [H, W, 3] uint8
    fns, params = nlc_jax.load_autoencoder("taef2")          # SD-VAE / TAE family

Names are imported on first use, so ``import nlc_jax`` stays cheap (no JAX import).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "nlc_jax.config_files",
    "make_codec": "nlc_jax.api",
    "encode": "nlc_jax.api",
    "decode": "nlc_jax.api",
    "EncodeResult": "nlc_jax.api",
    "FitDivergedError": "nlc_jax.api",
    "FitOptions": "nlc_jax.fit.engine",
    "BitstreamError": "nlc_jax.bitstream.errors",
}
_RENAMED = {"load_autoencoder": ("nlc_jax.autoencoders", "load")}

__all__ = ["__version__", *_EXPORTS, *_RENAMED]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'nlc_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
