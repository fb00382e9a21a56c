"""FID and KID between two sets of image features, and the patch protocol for small test sets.

* FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to the two feature sets,
  ``|μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)``, computed in float64.
* KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
  ``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets (mean and standard deviation
  reported, as torch-fidelity and clean-fid do).
* Patches (HiFiC, Mentzer et al. 2020; also MS-ILLM): a Kodak/CLIC-sized test set has far fewer
  images than the 2048 feature dimensions, so each image is cut into ``P × P`` patches
  (P = 256): the non-overlapping grid from the top-left corner, then the same grid shifted by
  ``P/2`` in both directions. A 768×512 image gives 6 + 2 = 8 patches.

The features are the 2048-d pool features of the FID Inception-v3 network
(:mod:`nlc_jax.metrics.inception`); these functions take any ``[N, D]`` features.
"""

from __future__ import annotations

import numpy as np

from nlc_jax.metrics.inputs import MetricInputError

PATCH = 256


def extract_patches(image: np.ndarray, size: int = PATCH) -> np.ndarray:
    """HiFiC patch protocol: the ``size`` grid, then the grid shifted by ``size // 2``.

    Args:
      image: ``[H, W, C]`` array.
      size: patch side.

    Returns:
      ``[N, size, size, C]`` patches (``N = 0`` for an image smaller than ``size``).
    """
    h, w = image.shape[:2]
    patches = []
    for offset in (0, size // 2):
        for top in range(offset, h - size + 1, size):
            for left in range(offset, w - size + 1, size):
                patches.append(image[top:top + size, left:left + size])
    if not patches:
        return np.zeros((0, size, size) + image.shape[2:], image.dtype)
    return np.stack(patches)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased) of ``[N, D]`` features, float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise MetricInputError(f"FID needs at least 2 feature vectors [N, D], got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``tr((Σ₁Σ₂)^½)`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric matrix ``Σ₁^½ Σ₂ Σ₁^½`` (similar to ``Σ₁Σ₂``), with symmetric eigensolvers: much
    faster than a general matrix square root at 2048 dimensions, and free of the imaginary
    round-off that ``sqrtm`` leaves on singular covariances (few samples).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricInputError("FID: the two feature sets have different dimensions")
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    trace_covmean = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two ``[N, D]`` feature sets.

    With fewer samples than dimensions (the usual case for patch FID on Kodak: 192 patches,
    2048 features) the covariances are low-rank and ``tr((Σ₁Σ₂)^½)`` equals the nuclear norm
    (sum of singular values) of ``A Bᵀ``, where ``A``, ``B`` are the centred features divided by
    ``sqrt(N - 1)``; that ``[N_a, N_b]`` SVD is much cheaper than a ``[D, D]`` eigensolve and
    gives the same value. Otherwise :func:`frechet_distance` on the fitted statistics is used.
    """
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise MetricInputError(f"FID: feature shapes {a.shape} and {b.shape} do not match")
    if min(a.shape[0], b.shape[0]) < 2:
        raise MetricInputError(f"FID needs at least 2 feature vectors in each set, got "
                               f"{a.shape[0]} and {b.shape[0]}")
    if max(a.shape[0], b.shape[0]) > a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca = (a - mu_a) / np.sqrt(a.shape[0] - 1)
    cb = (b - mu_b) / np.sqrt(b.shape[0] - 1)
    trace_covmean = float(np.sum(np.linalg.svd(ca @ cb.T, compute_uv=False)))
    diff = mu_a - mu_b
    return float(diff @ diff + np.sum(ca * ca) + np.sum(cb * cb) - 2.0 * trace_covmean)


def kid(features_a: np.ndarray, features_b: np.ndarray, n_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD² (cubic polynomial kernel), mean and std over random subsets.

    Args:
      features_a, features_b: ``[N_a, D]`` and ``[N_b, D]`` features.
      n_subsets: number of random subsets.
      subset_size: subset size, clipped to the smaller set (which must hold at least 2).
      seed: seed of the subset sampler (results are deterministic for a given seed).

    Returns:
      ``(mean, std)`` of the per-subset MMD² estimates.
    """
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise MetricInputError(f"KID: feature shapes {a.shape} and {b.shape} do not match")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise MetricInputError("KID needs at least 2 feature vectors in each set")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_subsets)
    for i in range(n_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1.0) ** 3
        kyy = (y @ y.T / d + 1.0) ** 3
        kxy = (x @ y.T / d + 1.0) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        estimates[i] = within - 2.0 * kxy.mean()
    return float(estimates.mean()), float(estimates.std())
