"""Multi-scale structural similarity (MS-SSIM, Wang, Simoncelli & Bovik 2003).

The standard 5-scale version used by compression papers (and by CompressAI through
``pytorch_msssim``): an 11×11 Gaussian window with σ = 1.5 applied without padding ("valid"),
constants K1 = 0.01, K2 = 0.03, scale weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2×2
average pooling between scales, SSIM computed per colour channel and averaged over channels.
Between scales an odd side is padded by one zero on each end before the 2×2 pooling (the
``pytorch_msssim`` convention, so that our numbers match the values papers report); the
contrast-structure and SSIM terms are clipped at 0 before the weighted product.

Images must have both sides larger than ``(11 - 1) * 2**4 = 160`` pixels so that the window
still fits at the coarsest scale; smaller images raise :class:`MetricInputError`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.metrics.inputs import MetricInputError, check_pair

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_SIDE = (WINDOW - 1) * 2 ** (len(WEIGHTS) - 1) + 1  # 161


def _gaussian_1d(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def _blur(x: jax.Array) -> jax.Array:
    """Separable Gaussian filter, valid region only: ``[N, H, W, K]`` → ``[N, H-10, W-10, K]``.

    Written as 11 shifted, weighted sums per axis: on CPU this is far faster than XLA's grouped
    convolution, and exact in float32.
    """
    g = _gaussian_1d()
    h = x.shape[1] - WINDOW + 1
    x = sum(float(g[k]) * x[:, k:k + h] for k in range(WINDOW))
    w = x.shape[2] - WINDOW + 1
    return sum(float(g[k]) * x[:, :, k:k + w] for k in range(WINDOW))


def _ssim_terms(x: jax.Array, y: jax.Array, data_range: float) -> tuple[jax.Array, jax.Array]:
    """Mean SSIM and contrast-structure per image and channel: ``[N, H, W, C]`` → 2 × ``[N, C]``."""
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # Second moments of values centred on the image mean (per channel): the variances are
    # shift-invariant, and centring avoids float32 cancellation in E[x²] − E[x]² on flat areas.
    shift = jnp.mean(x, axis=(1, 2), keepdims=True)
    xc, yc = x - shift, y - shift
    stats = _blur(jnp.concatenate([xc, yc, xc * xc, yc * yc, xc * yc], axis=-1))
    mxc, myc, xx, yy, xy = jnp.split(stats, 5, axis=-1)
    var_x = xx - mxc**2
    var_y = yy - myc**2
    cov = xy - mxc * myc
    mu_x, mu_y = mxc + shift, myc + shift
    cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return jnp.mean(ssim_map, axis=(1, 2)), jnp.mean(cs_map, axis=(1, 2))


def _downsample(x: jax.Array) -> jax.Array:
    """2×2 average pooling; an odd side gets one zero of padding at each end (counted)."""
    ph, pw = x.shape[1] % 2, x.shape[2] % 2
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    x = x[:, :h, :w]
    n, _, _, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


@functools.partial(jax.jit, static_argnames=("data_range",))
def _ms_ssim_batch(x: jax.Array, y: jax.Array, data_range: float) -> jax.Array:
    weights = jnp.asarray(WEIGHTS, jnp.float32)
    css = []
    for level in range(len(WEIGHTS)):
        ssim, cs = _ssim_terms(x, y, data_range)
        if level < len(WEIGHTS) - 1:
            css.append(jax.nn.relu(cs))
            x, y = _downsample(x), _downsample(y)
    values = jnp.stack(css + [jax.nn.relu(ssim)], axis=0)  # [scales, N, C]
    per_channel = jnp.prod(values ** weights[:, None, None], axis=0)
    return jnp.mean(per_channel, axis=-1)


def ms_ssim(a: np.ndarray | jax.Array, b: np.ndarray | jax.Array,
            max_value: float = 255.0) -> jax.Array:
    """MS-SSIM per image.

    Args:
      a, b: ``[H, W, C]`` or ``[B, H, W, C]`` images of the same shape; 8-bit values with
        ``max_value=255`` (default) or floats in [0, 1] with ``max_value=1``. Both sides must be
        at least :data:`MIN_SIDE` (161) pixels.
      max_value: dynamic range of the pixel values.

    Returns:
      ``[]`` or ``[B]`` float32 MS-SSIM in [0, 1] (1 for identical images).

    Raises:
      MetricInputError: shapes differ, are not images, or are too small for 5 scales.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    check_pair(a, b, "MS-SSIM")
    h, w = a.shape[-3], a.shape[-2]
    if min(h, w) < MIN_SIDE:
        raise MetricInputError(
            f"MS-SSIM needs both image sides >= {MIN_SIDE} px (5 scales, 11x11 window); "
            f"got {h}x{w}")
    single = a.ndim == 3
    if single:
        a, b = a[None], b[None]
    out = _ms_ssim_batch(a, b, float(max_value))
    return out[0] if single else out


def ms_ssim_db(value: np.ndarray | jax.Array | float) -> np.ndarray:
    """MS-SSIM on a dB scale, ``-10·log10(1 - MS-SSIM)`` (``inf`` for a perfect score)."""
    value = np.asarray(value, np.float64)
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(1.0 - value)

