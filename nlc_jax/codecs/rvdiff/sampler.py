"""The few-step stochastic sampler of the reverse process (host side, NumPy float32).

Decoding starts from the decoded quantized latent ``ŷ`` at the file's rate/time ``t`` (no
Gaussian initialisation) and takes ``N`` denoiser evaluations at ``t_i = t · (N − i) / N``,
``i = 0 … N−1``. Between two evaluations it moves to the next time with a DDIM-style step whose
randomness is ``α``::

    x̂₀ = D(y, t_i)                        (the U-Net: Tweedie's estimate of y₀)
    ε̂  = (y − x̂₀) / s(t_i)                (the noise the state still carries, per channel)
    y  ← x̂₀ + s(t_{i+1}) · (√(1 − α²) · ε̂ + α · ε_i),     α = α(t_{i+1})

with ``s(t) = Δ_y(t) / √12`` (the standard deviation of the uniform quantization noise of step
``Δ_y``) and ``ε_i`` the seeded noise grid ``i`` of the file's seed
(:func:`nlc_jax.entropy.seeded_noise.gaussian_grid`, bit-identical on every machine). The last
evaluation's ``x̂₀`` is the output. ``N = 0`` returns ``ŷ`` (the plain hyperprior decode);
``N = 1`` one deterministic ``x̂₀``. ``α(t) = alpha_max · t^alpha_power`` (``alpha_max = 0``:
deterministic DDIM; ``alpha_power = 0``: constant; ``1``: linear in ``t``); the encoder
evaluates it (:func:`alpha_schedule`) and the file stores the ``N − 1`` float32 values, so the
decoder needs no ``pow``.

Guarantee: given the file, the sample is a fixed function of the denoiser's outputs; the noise
and every update here are IEEE-754 float32 element-wise operations in NumPy, identical on every
machine. Two machines therefore decode the same image whenever their networks (U-Net, hyper-
synthesis, autoencoder decoder) return the same floats, which holds for the same backend and
library versions, not across arbitrary hardware.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nlc_jax.entropy.seeded_noise import MAX_LEVELS, gaussian_grid

#: at most this many denoiser evaluations (one seeded noise level per intermediate step)
MAX_STEPS = MAX_LEVELS
_INV_SQRT12 = np.float32(1.0 / np.sqrt(12.0))


class SamplerError(ValueError):
    """Bad sampler settings (one-line message)."""


def check_sampler(steps: int, alpha_max: float, alpha_power: float) -> None:
    """Raise :class:`SamplerError` unless ``0 ≤ steps ≤ MAX_STEPS``, ``α_max ∈ [0, 1]`` and
    ``alpha_power ≥ 0``."""
    if not 0 <= int(steps) <= MAX_STEPS:
        raise SamplerError(f"steps must be in [0, {MAX_STEPS}], got {steps}")
    if not 0.0 <= float(alpha_max) <= 1.0:
        raise SamplerError(f"alpha_max must be in [0, 1], got {alpha_max}")
    if not (float(alpha_power) >= 0.0 and np.isfinite(alpha_power)):
        raise SamplerError(f"alpha_power must be a finite number >= 0, got {alpha_power}")


def time_grid(t: float, steps: int) -> list[float]:
    """The ``steps`` evaluation times ``t · (N − i) / N`` (float32 values), largest first."""
    return [float(np.float32(t) * np.float32(steps - i) / np.float32(steps))
            for i in range(steps)]


def alpha_at(t: float, alpha_max: float, alpha_power: float) -> np.float32:
    """``α(t) = alpha_max · t^alpha_power`` as float32 (``0^0 = 1``)."""
    return np.float32(np.float32(alpha_max) * np.float32(t) ** np.float32(alpha_power))


def alpha_schedule(t: float, steps: int, alpha_max: float,
                   alpha_power: float) -> tuple[float, ...]:
    """The ``max(steps − 1, 0)`` randomness values ``α(t_{i+1})`` of a decode (float32 values).

    Raises:
      SamplerError: bad settings (see :func:`check_sampler`).
    """
    check_sampler(steps, alpha_max, alpha_power)
    return tuple(float(alpha_at(ti, alpha_max, alpha_power)) for ti in time_grid(t, steps)[1:])


def sample(y_hat: np.ndarray, t: float, steps: int, seed: int, alphas: tuple[float, ...],
           denoise: Callable[[np.ndarray, float], np.ndarray],
           step_of: Callable[[float], np.ndarray]) -> np.ndarray:
    """Run the sampler (see the module docstring).

    Args:
      y_hat: decoded quantized latent ``[h, w, C]`` float32.
      t: the file's rate/time.
      steps: ``N`` (``0 … MAX_STEPS``).
      seed: the file's 32-bit noise seed.
      alphas: the ``max(steps − 1, 0)`` values of :func:`alpha_schedule` (from the file).
      denoise: ``(y [h, w, C], t) -> x̂₀ [h, w, C]`` (the U-Net).
      step_of: ``t -> Δ_y(t)`` ``[C]`` float32.

    Returns:
      the latent ``[h, w, C]`` float32 to hand to the autoencoder's decoder.
    """
    if not 0 <= int(steps) <= MAX_STEPS or len(alphas) != max(int(steps) - 1, 0):
        raise SamplerError(f"{steps} steps need {max(int(steps) - 1, 0)} alpha values, got "
                           f"{len(alphas)} (at most {MAX_STEPS} steps)")
    if any(not 0.0 <= a <= 1.0 for a in alphas):
        raise SamplerError(f"alpha values must be in [0, 1], got {alphas}")
    y = np.asarray(y_hat, np.float32)
    times = time_grid(t, steps)
    h, w, c = y.shape
    for i, ti in enumerate(times):
        x0 = np.asarray(denoise(y, ti), np.float32)
        if i == len(times) - 1:
            return x0
        t_next = times[i + 1]
        s_now = np.asarray(step_of(ti), np.float32) * _INV_SQRT12
        s_next = np.asarray(step_of(t_next), np.float32) * _INV_SQRT12
        alpha = np.float32(alphas[i])
        eps_hat = (y - x0) / s_now
        eps = gaussian_grid(int(seed), i, h, w, c, np)
        keep = np.float32(np.sqrt(np.float32(1.0) - alpha * alpha))
        y = x0 + s_next * (keep * eps_hat + alpha * eps)
    return y
