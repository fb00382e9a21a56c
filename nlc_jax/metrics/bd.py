"""Bjøntegaard deltas (VCEG-M33) with piecewise-cubic Hermite (pchip) interpolation.

This is the variant of the JCT-VC / JVET common-test-condition spreadsheets and of current
learned-codec comparisons: each RD curve is interpolated with a monotone pchip, and the two
interpolants are integrated over the interval where both curves are defined.

* BD-rate: log-rate as a function of quality, averaged over the overlapping quality interval;
  ``(exp(mean Δ log R) - 1) · 100`` percent. Negative means the test codec needs fewer bits.
* BD-quality (BD-PSNR): quality as a function of log-rate, averaged over the overlapping log-rate
  interval. Positive means the test codec is better for a higher-is-better metric (PSNR,
  MS-SSIM dB); for LPIPS (lower is better) a *negative* BD-LPIPS means better.

Any quality that varies monotonically with rate works: PSNR, MS-SSIM in dB, LPIPS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


class BDError(ValueError):
    """RD curves on which a Bjøntegaard delta is not defined."""


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    rate = np.asarray(rate, np.float64).reshape(-1)
    quality = np.asarray(quality, np.float64).reshape(-1)
    if rate.shape != quality.shape:
        raise BDError(f"{name}: {rate.size} rates but {quality.size} quality values")
    if rate.size < 2:
        raise BDError(f"{name}: a BD metric needs at least 2 RD points, got {rate.size}")
    if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(quality))):
        raise BDError(f"{name}: RD points must be finite")
    if np.any(rate <= 0):
        raise BDError(f"{name}: rates must be positive")
    return np.log(rate), quality


def _mean_over_overlap(x_a: np.ndarray, y_a: np.ndarray, x_t: np.ndarray, y_t: np.ndarray,
                       axis: str) -> float:
    """Mean of ``pchip_t(x) - pchip_a(x)`` over the overlap of the two x ranges."""
    lo = max(x_a.min(), x_t.min())
    hi = min(x_a.max(), x_t.max())
    if not hi > lo:
        raise BDError(f"the two RD curves do not overlap in {axis}")
    integrals = []
    for x, y, name in ((x_a, y_a, "anchor"), (x_t, y_t, "test")):
        order = np.argsort(x)
        xs, ys = x[order], y[order]
        if np.any(np.diff(xs) == 0):
            raise BDError(f"{name} curve has repeated {axis} values")
        integrals.append(PchipInterpolator(xs, ys).integrate(lo, hi))
    return float((integrals[1] - integrals[0]) / (hi - lo))


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
            test_rate: Sequence[float], test_quality: Sequence[float]) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative = fewer bits).

    Args:
      anchor_rate, test_rate: ``[N]`` rates (bpp, kbps, bytes: any positive unit, the same one).
      anchor_quality, test_quality: ``[N]`` quality (PSNR dB, MS-SSIM dB, LPIPS, …), monotone in
        rate along each curve.

    Raises:
      BDError: fewer than 2 points, non-positive rates, no overlap in quality, repeated values.
    """
    lr_a, q_a = _curve(anchor_rate, anchor_quality, "anchor")
    lr_t, q_t = _curve(test_rate, test_quality, "test")
    return float(np.expm1(_mean_over_overlap(q_a, lr_a, q_t, lr_t, "quality")) * 100.0)


def bd_quality(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
               test_rate: Sequence[float], test_quality: Sequence[float]) -> float:
    """Mean quality difference (test − anchor) over the overlapping log-rate interval.

    Same arguments as :func:`bd_rate`; the result is in the quality's unit (dB for PSNR).
    """
    lr_a, q_a = _curve(anchor_rate, anchor_quality, "anchor")
    lr_t, q_t = _curve(test_rate, test_quality, "test")
    return _mean_over_overlap(lr_a, q_a, lr_t, q_t, "rate")


def bd_psnr(anchor_rate: Sequence[float], anchor_psnr: Sequence[float],
            test_rate: Sequence[float], test_psnr: Sequence[float]) -> float:
    """BD-PSNR in dB (positive = the test codec has higher PSNR at equal rate)."""
    return bd_quality(anchor_rate, anchor_psnr, test_rate, test_psnr)
