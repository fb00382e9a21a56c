"""The overfitting recipe shared by the COOL-CHIC family (COOL-CHIC, CLRIC, Noise-to-Latent).

A ``recipe`` config block (see ``configs/coolchic.py``) describes Cool-chic 5's schedule:

* ``warmup``: all ``n_candidates`` random inits for ``warmup_steps``, keep the best 2;
* ``warmup2``: the 2 survivors for ``warmup_steps`` more, keep the best;
* ``main``: the rest of ``n_itr`` with a soft-round + noise quantization proxy whose temperature
  and noise width are annealed linearly, learning rate cosine-decayed from ``lr`` to ``min_lr``;
* ``final``: ``final_steps`` of straight-through rounding at ``final_lr``.

Codecs call :func:`phases`, :func:`learning_rate` and :func:`proxy` so that every member of the
family follows the same recipe from the same config fields.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from nlc_jax.codecs.base import Phase


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
    """The phase's learning rate: cosine decay in ``main``, ``final_lr`` in ``final``."""
    if phase.name == "main":
        return optax.cosine_decay_schedule(recipe.lr, max(phase.steps, 1),
                                           alpha=recipe.min_lr / recipe.lr)
    return recipe.final_lr if phase.name == "final" else recipe.lr


def network_optimizer(recipe, phase: Phase) -> optax.GradientTransformation:
    """The networks' optimizer of a phase: global-norm clipping at ``grad_clip``, then Adam at
    :func:`learning_rate`."""
    return optax.chain(optax.clip_by_global_norm(recipe.grad_clip),
                       optax.adam(learning_rate(recipe, phase)))


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


def proxy(recipe, phase: Phase, progress: jax.Array) -> tuple[str, jax.Array | float,
                                                               jax.Array | float]:
    """Quantization proxy of a phase: ``(mode, temperature, noise width)`` for
    :func:`nlc_jax.entropy.quantization.quantize` (``progress`` in [0, 1] within the phase)."""
    if phase.name == "final":
        return "ste", 0.0, 0.0
    if phase.name == "main":
        t0, t1 = recipe.temperature
        n0, n1 = recipe.noise
        return "softround_noise", t0 + (t1 - t0) * progress, n0 + (n1 - n0) * progress
    return "softround_noise", recipe.temperature[0], recipe.noise[0]
