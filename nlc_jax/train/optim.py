"""Optimizer of a training run: Adam with linear warm-up, cosine decay and gradient clipping."""

from __future__ import annotations

from typing import Any

import optax


def learning_rate_schedule(config: Any) -> optax.Schedule:
    """Linear warm-up over ``warmup_steps`` to ``learning_rate``, then cosine decay to
    ``learning_rate * end_lr_factor`` at ``num_steps``."""
    warmup = min(int(config.warmup_steps), int(config.num_steps))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else config.learning_rate,
        peak_value=config.learning_rate, warmup_steps=warmup,
        decay_steps=max(int(config.num_steps), warmup + 1),
        end_value=config.learning_rate * config.end_lr_factor)


def make_optimizer(config: Any) -> optax.GradientTransformation:
    """``clip_by_global_norm(grad_clip)`` (skipped if ``grad_clip <= 0``) then Adam on the schedule."""
    parts = []
    if config.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    parts.append(optax.adam(learning_rate_schedule(config)))
    return optax.chain(*parts)
