"""Interfaces every codec implements; the fitting engine and the CLIs depend only on these.

Two kinds of codec exist:

* :class:`OverfittedCodec` (COOL-CHIC, CLRIC, Noise-to-Latent): a small decoder is fitted to each
  image. The codec is a set of *pure* functions over pytrees; the batched engine in
  ``nlc_jax.fit`` vmaps them over a batch axis of independent fits (image, λ, candidate seed),
  jit-compiles one step for all of them, and shards the batch over devices. A codec therefore
  never loops over images, never keeps mutable state, and takes every per-fit quantity (λ, rng,
  mask) as an argument.
* :class:`LearnedCodec` (hyperprior, GLC, …): a trained model that encodes an image in one pass.

Both produce/consume ``.nlc`` files through ``nlc_jax.bitstream`` and are found by name or by the
container's codec id through ``nlc_jax.codecs.registry``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np
import optax

Params = Any  # a pytree of arrays
Aux = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of an overfitting recipe.

    Attributes:
      name: e.g. ``"warmup"``, ``"main"``, ``"final"``; passed to the codec's ``loss`` so it can
        pick its quantization proxy (noise / soft-round / STE) for the phase.
      steps: optimisation steps in this phase.
      keep: after the phase, how many candidates per (image, λ) survive (the best by
        ``codec.eval_loss``); ``None`` keeps all.
      reset_optimizer: start this phase with a fresh optimizer state (``codec.optimizer(phase)``).
    """

    name: str
    steps: int
    keep: int | None = None
    reset_optimizer: bool = True


@dataclasses.dataclass(frozen=True)
class EncodeResult:
    """What ``finalize`` returns for one fit: the file bytes and the numbers reported for it.

    ``reconstruction`` is the encoder's own quantized reconstruction, ``[H, W, C]`` uint8 in the
    target's true (unpadded) size; ``decode(data)`` must reproduce it exactly.
    """

    data: bytes
    reconstruction: np.ndarray
    info: dict[str, float]


@runtime_checkable
class OverfittedCodec(Protocol):
    """Pure-function interface of an overfitted codec (one fit; the engine adds the batch axis).

    Shapes: ``target`` is ``[H, W, C]`` float32 (pixels in [0, 1] for COOL-CHIC, a VAE latent for
    CLRIC) padded to the bucket shape; ``mask`` is ``[H, W]`` float32, 1 on valid positions and 0
    on padding. Padding must cost no rate and no distortion.
    """

    name: str

    def recipe(self) -> list[Phase]:
        """The phases of the fit, in order (the first one is run by ``n_candidates`` seeds)."""
        ...

    @property
    def n_candidates(self) -> int:
        """How many random-init candidates per (image, λ) start the first phase."""
        ...

    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        """Host side: ``[H, W, 3]`` uint8 image → ``[h, w, c]`` float32 fitting target."""
        ...

    def init(self, rng: jax.Array, target_shape: tuple[int, int, int]) -> Params:
        """Random initial parameters (latents and networks) for a target of the given shape."""
        ...

    def optimizer(self, phase: Phase) -> optax.GradientTransformation:
        """The optimizer of a phase (learning-rate schedule over ``phase.steps`` included)."""
        ...

    def loss(self, params: Params, target: jax.Array, mask: jax.Array, lmbda: jax.Array,
             phase: Phase, progress: jax.Array, rng: jax.Array) -> tuple[jax.Array, Aux]:
        """Training loss (``distortion + λ·rate``) with the phase's quantization proxy.

        ``progress`` is the position within the phase in [0, 1] (annealing schedules use it).
        ``aux`` holds scalars such as ``"mse"``, ``"bpp"``, ``"psnr_db"``.
        """
        ...

    def eval_loss(self, params: Params, target: jax.Array, mask: jax.Array,
                  lmbda: jax.Array) -> tuple[jax.Array, Aux]:
        """Loss with hard quantization (used to pick candidates and the best iterate)."""
        ...

    def finalize(self, params: Params, target: np.ndarray, image: np.ndarray,
                 lmbda: float, refine: bool = True) -> EncodeResult:
        """Host side, one unpadded fit: quantize and entropy-code everything, write the file.

        ``refine=False`` skips the encoder's optional search after quantization (COOL-CHIC's
        weight RDOQ): a quicker, slightly larger file, used to rank decoder candidates. A codec
        whose ``refines`` attribute is false writes the same file either way.
        """
        ...

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8 image."""
        ...


@runtime_checkable
class LearnedCodec(Protocol):
    """A trained codec: one forward pass encodes, one decodes."""

    name: str

    def encode(self, image: np.ndarray) -> EncodeResult:
        """``[H, W, 3]`` uint8 → file bytes, the reconstruction and reported numbers."""
        ...

    def decode(self, data: bytes) -> np.ndarray:
        """``.nlc`` bytes → ``[H, W, 3]`` uint8 image."""
        ...


def rgb8(image: Any) -> np.ndarray:
    """``image`` as an ``[H, W, 3]`` uint8 array (what a ``LearnedCodec.encode`` takes).

    Raises:
      ValueError: any other shape or dtype.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
    return image
