"""The overfitting recipe shared by the COOL-CHIC family (COOL-CHIC, CLRIC, Noise-to-Latent).

A ``recipe`` config block (see ``configs/coolchic.py``) describes Cool-chic 5's schedule:

* ``warmup``: all ``n_candidates`` random inits for ``warmup_steps``, keep the best 2;
* ``warmup2``: the 2 survivors for ``warmup_steps`` more, keep the best;
* ``main``: the rest of ``n_itr`` with a soft-round + noise quantization proxy whose temperature
  and noise width are annealed linearly, learning rate cosine-decayed from ``lr`` to ``min_lr``;
* ``final``: ``final_steps`` at ``final_lr`` with straight-through rounding of the latents, or
  (``final_quantizer = "hard"``, Cool-chic 5) hard rounding: the latents stay fixed and only
  the networks are tuned to them.

Optional fields (absent: the earlier behaviour, which CLRIC and Noise-to-Latent keep):

* ``noise_type``: ``"uniform"`` (``noise`` is the width of uniform noise) or ``"gaussian"``
  (``noise`` is a standard deviation; the warm-ups use Cool-chic 5's λ-dependent level
  ``(-0.432·log10 λ + 0.747) / 10``);
* ``optimizer``: ``"adam"`` or ``"soap"`` for the networks (:mod:`nlc_jax.optim.soap`, with
  ``soap_betas``, ``weight_decay`` and a preconditioner refreshed every step in the warm-ups
  and every ``precondition_frequency`` steps after); ``latent_betas`` / ``latent_betas_warmup``:
  Adam's betas of the latents; ``final_schedule``: ``"cosine"`` decays ``final_lr`` to
  ``min_lr``.

Codecs call :func:`phases`, :func:`learning_rate` and :func:`proxy` so that every member of the
family follows the same recipe from the same config fields.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from nlc_jax.codecs.base import Phase
from nlc_jax.optim.soap import soap


def auto_warmup_steps(n_itr: int) -> int:
    """Cool-chic 5's warm-up length per stage for a budget of ``n_itr`` iterations:
    50 / 100 / 200 / 400 below 4k / 9k / 12k / above."""
    for limit, steps in ((4000, 50), (9000, 100), (12000, 200)):
        if n_itr < limit:
            return steps
    return 400


def phases(recipe, name: str) -> list[Phase]:
    """The four phases of ``recipe`` (``name`` is the codec's, for error messages).

    Raises:
      ValueError: ``n_itr`` leaves no main phase.
    """
    k = int(recipe.n_candidates)
    if k < 1:
        raise ValueError(f"{name} recipe: n_candidates must be >= 1, got {k}")
    w = int(recipe.warmup_steps) or auto_warmup_steps(int(recipe.n_itr))
    main = int(recipe.n_itr) - int(recipe.final_steps) - (k + 2) * w
    if main < 1:
        raise ValueError(f"{name} recipe: n_itr={recipe.n_itr} leaves no main phase after "
                         f"{k}+2 warm-ups of {w} and {recipe.final_steps} final steps")
    return [Phase("warmup", w, keep=min(2, k)),
            Phase("warmup2", w, keep=1, reset_optimizer=False),
            Phase("main", main),
            Phase("final", int(recipe.final_steps))]


def learning_rate(recipe, phase: Phase) -> optax.ScalarOrSchedule:
    """The phase's learning rate: cosine decay in ``main`` (and in ``final`` with
    ``final_schedule = "cosine"``), ``final_lr`` in ``final``, else ``lr``."""
    if phase.name == "main":
        return optax.cosine_decay_schedule(recipe.lr, max(phase.steps, 1),
                                           alpha=recipe.min_lr / recipe.lr)
    if phase.name == "final":
        if recipe.get("final_schedule", "constant") == "cosine":
            return optax.cosine_decay_schedule(recipe.final_lr, max(phase.steps, 1),
                                               alpha=min(1.0, recipe.min_lr / recipe.final_lr))
        return recipe.final_lr
    return recipe.lr


def _is_warmup(phase: Phase) -> bool:
    return phase.name.startswith("warmup")


def network_optimizer(recipe, phase: Phase) -> optax.GradientTransformation:
    """The networks' optimizer of a phase: global-norm clipping at ``grad_clip``, then Adam or
    SOAP (``recipe.optimizer``) at :func:`learning_rate`."""
    lr = learning_rate(recipe, phase)
    kind = recipe.get("optimizer", "adam")
    if kind == "adam":
        opt = optax.adam(lr)
    elif kind == "soap":
        b1, b2 = recipe.soap_betas
        opt = soap(lr, b1=b1, b2=b2, weight_decay=recipe.weight_decay,
                   precondition_frequency=1 if _is_warmup(phase)
                   else int(recipe.precondition_frequency))
    else:
        raise ValueError(f"recipe.optimizer must be 'adam' or 'soap', got {kind!r}")
    return optax.chain(optax.clip_by_global_norm(recipe.grad_clip), opt)


def latent_optimizer(recipe, phase: Phase) -> optax.GradientTransformation:
    """Adam for the latent grids at :func:`learning_rate`, with ``latent_betas_warmup`` in the
    warm-ups and ``latent_betas`` after (optax's defaults when absent)."""
    betas = recipe.get("latent_betas_warmup" if _is_warmup(phase) else "latent_betas",
                       (0.9, 0.999))
    return optax.adam(learning_rate(recipe, phase), b1=betas[0], b2=betas[1])


def warmup_noise(lmbda: jax.Array) -> jax.Array:
    """Cool-chic 5's noise standard deviation in the warm-ups: ``(-0.432·log10 λ + 0.747)/10``."""
    return (-0.432 * jnp.log10(lmbda) + 0.747) / 10.0


class RecipeMixin:
    """``n_candidates`` and ``recipe()`` of an overfitted codec from ``self.config.recipe``."""

    name: str
    config: Any

    @property
    def n_candidates(self) -> int:
        """Random-init candidates (seeds) per fit in the first phase."""
        return int(self.config.recipe.n_candidates)

    def recipe(self) -> list[Phase]:
        """The four phases of the codec's recipe (see :func:`phases`)."""
        return phases(self.config.recipe, self.name)

    def phase_key(self, phase: Phase) -> tuple[str, int]:
        """Phases with equal keys train identically (the engine compiles them once): the two
        warm-ups differ only in their candidate count, which the compiled step does not fix."""
        return ("warmup" if _is_warmup(phase) else phase.name, phase.steps)


def proxy(recipe, phase: Phase, progress: jax.Array,
          lmbda: jax.Array) -> tuple[str, jax.Array | float, jax.Array | float]:
    """Quantization proxy of a phase: ``(mode, temperature, noise)`` for
    :func:`nlc_jax.entropy.quantization.quantize` (``progress`` in [0, 1] within the phase)."""
    if phase.name == "final":
        return ("round" if recipe.get("final_quantizer", "ste") == "hard" else "ste"), 0.0, 0.0
    gaussian = recipe.get("noise_type", "uniform") == "gaussian"
    mode = "softround_gaussian" if gaussian else "softround_noise"
    if phase.name == "main":
        t0, t1 = recipe.temperature
        n0, n1 = recipe.noise
        return mode, t0 + (t1 - t0) * progress, n0 + (n1 - n0) * progress
    return mode, recipe.temperature[0], warmup_noise(lmbda) if gaussian else recipe.noise[0]
