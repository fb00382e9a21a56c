"""FID / KID statistics and the HiFiC patch protocol."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nlc_jax.metrics.fid import extract_patches, feature_stats, fid, frechet_distance, kid
from nlc_jax.metrics.inputs import MetricInputError


def test_patches_follow_the_hifc_grid_and_half_shift():
    img = np.arange(512 * 768 * 3, dtype=np.int64).reshape(512, 768, 3)
    p = extract_patches(img)
    assert p.shape == (6 + 2, 256, 256, 3)
    np.testing.assert_array_equal(p[0], img[:256, :256])
    np.testing.assert_array_equal(p[5], img[256:512, 512:768])
    np.testing.assert_array_equal(p[6], img[128:384, 128:384])
    np.testing.assert_array_equal(p[7], img[128:384, 384:640])
    assert extract_patches(img[:100, :300]).shape == (0, 256, 256, 3)
    assert extract_patches(img[:40, :40], size=16).shape == (4 + 4, 16, 16, 3)
    assert extract_patches(img[:36, :36], size=16).shape == (4 + 1, 16, 16, 3)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
    # Rotating both Gaussians by the same orthogonal matrix changes nothing.
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    f = np.random.default_rng(1).normal(size=(200, 8))
    assert fid(f, f) == pytest.approx(0.0, abs=1e-8)
    assert fid(f, f + 1.0) == pytest.approx(8.0, rel=1e-9)  # mean shift of 1 in 8 dims
    with pytest.raises(MetricInputError, match="at least 2"):
        fid(f[:1], f)


def test_fid_low_rank_path_equals_the_covariance_path():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 64)), rng.normal(0.2, 1.3, size=(40, 64))  # N < D: SVD path
    via_stats = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid(a, b) == pytest.approx(via_stats, rel=1e-6)  # eigh clips round-off at rank < D
    big_a, big_b = rng.normal(size=(100, 8)), rng.normal(0.5, 1.0, size=(90, 8))  # N > D
    assert fid(big_a, big_b) == pytest.approx(
        frechet_distance(*feature_stats(big_a), *feature_stats(big_b)), rel=1e-12)


def _mmd2_brute_force(x, y):
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4)), rng.normal(0.5, 1.0, size=(12, 4))
    mean, std = kid(x, y, n_subsets=3, subset_size=12)  # the whole set each time
    assert mean == pytest.approx(_mmd2_brute_force(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)
    same = rng.normal(size=(400, 4))
    other = rng.normal(size=(400, 4))
    assert abs(kid(same, other, n_subsets=20, subset_size=200)[0]) < 0.05
    assert kid(same, other + 1.0, n_subsets=20, subset_size=200)[0] > 0.5
    with pytest.raises(MetricInputError, match="do not match"):
        kid(x, y[:, :3])


# --------------------------------------------------------------------------- Inception network

ROOT = Path(__file__).resolve().parents[1]


def test_inception_on_random_weights_gives_2048_features():
    from nlc_jax.metrics.inception import FEATURES, inception_features, random_params

    params = random_params(np.random.default_rng(0))
    imgs = np.random.default_rng(1).integers(0, 256, (2, 64, 80, 3)).astype(np.uint8)
    f = inception_features(params, imgs)
    assert f.shape == (2, FEATURES) and np.all(np.isfinite(f)) and np.all(f >= 0)
    # An image's features do not depend on its place in the batch.
    np.testing.assert_allclose(inception_features(params, imgs[::-1])[::-1], f, rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(f[0], f[1])
    with pytest.raises(MetricInputError, match="RGB"):
        inception_features(params, imgs[..., :1])


def test_inception_matches_the_torchscript_reference():
    from nlc_jax.metrics.inception import (
        InceptionWeightsError,
        features_from_normalized,
        load_inception_params,
    )

    try:
        params = load_inception_params()
    except InceptionWeightsError as e:
        pytest.skip(str(e))
    x = []
    for name in ("kodim01_256.png", "kodim15_256.png"):  # as in tools/make_metric_fixtures.py
        img = Image.open(ROOT / "samples" / name).convert("RGB")
        img = img.resize((299, 299), Image.Resampling.BILINEAR)
        x.append(np.asarray(img, np.float32) / 128.0 - 1.0)
    expected = np.load(ROOT / "tests/fixtures/metrics/inception_features.npy")
    got = np.asarray(features_from_normalized(params, np.stack(x)))
    np.testing.assert_allclose(got, expected, atol=2e-4 * np.abs(expected).max())


def test_inception_weight_errors(tmp_path):
    from nlc_jax.metrics.inception import InceptionWeightsError, load_inception_params

    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(InceptionWeightsError, match="not a readable Inception"):
        load_inception_params(tmp_path / "junk.pt")
    with pytest.raises(InceptionWeightsError, match="no such file"):
        load_inception_params(tmp_path / "missing.pt")
