"""Discretized distributions: normalisation, tail stability, gradients, categorical bits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from nlc_jax.entropy import distributions as d

PMFS = {"laplace": d.laplace_pmf, "gaussian": d.gaussian_pmf, "logistic": d.logistic_pmf}
SCIPY = {"laplace": scipy.stats.laplace, "gaussian": scipy.stats.norm,
         "logistic": scipy.stats.logistic}


@pytest.mark.parametrize("family", d.FAMILIES)
@pytest.mark.parametrize("loc, scale", [(0.0, 0.05), (0.3, 1.0), (-2.7, 7.5), (10.2, 40.0)])
def test_pmf_sums_to_one(family, loc, scale):
    support = jnp.arange(-2000, 2001, dtype=jnp.float32)
    pmf = PMFS[family](support, loc, scale, min_likelihood=0.0)
    assert abs(float(np.sum(np.asarray(pmf, np.float64))) - 1.0) < 1e-6


@pytest.mark.parametrize("family", d.FAMILIES)
def test_pmf_matches_scipy_including_far_tails(family):
    x = np.array([-60.0, -12.0, -1.0, 0.0, 1.0, 3.0, 12.0, 60.0])
    loc, scale = 0.4, 2.0
    dist = SCIPY[family](loc=loc, scale=scale)
    ref = np.where(x > loc, dist.sf(x - 0.5) - dist.sf(x + 0.5), dist.cdf(x + 0.5) - dist.cdf(x - 0.5))
    got = np.asarray(PMFS[family](x, loc, scale, min_likelihood=0.0), np.float64)
    keep = ref > 1e-30  # float32 underflow below
    np.testing.assert_allclose(got[keep], ref[keep], rtol=2e-4)
    # Upper-tail bins are as accurate as lower-tail ones (symmetric-tail trick).
    np.testing.assert_allclose(got[x == 12.0], ref[x == 12.0], rtol=2e-4)


@pytest.mark.parametrize("family", d.FAMILIES)
def test_bits_and_gradients_finite_at_extreme_scales(family):
    x = jnp.array([-1e4, -3.0, 0.0, 0.4, 5.0, 1e4])
    def rate(loc, s):
        return jnp.sum(d.bits(PMFS[family](x, loc, s)))

    value_and_grad = jax.jit(jax.value_and_grad(rate, argnums=(0, 1)))
    for scale in (1e-8, 1e-3, 1.0, 1e6, 1e9):
        value, (g_loc, g_scale) = value_and_grad(0.3, scale)
        assert np.isfinite(value) and np.isfinite(g_loc) and np.isfinite(g_scale)
        assert float(value) <= -np.log2(d.MIN_LIKELIHOOD) * x.size + 1e-3


def test_vmap_jit():
    f = jax.jit(jax.vmap(lambda x, m, s: d.gaussian_pmf(x, m, s)))
    out = f(jnp.zeros((3, 5)), jnp.zeros((3, 5)), jnp.ones((3, 5)))
    assert out.shape == (3, 5)


def test_categorical_bits():
    logits = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.125, 0.125, 0.75]]))
    np.testing.assert_allclose(d.categorical_bits(logits, jnp.array([0, 1])), [1.0, 3.0], rtol=1e-6)
    g = jax.grad(lambda lg: d.categorical_bits(lg, jnp.array([0, 1])).sum())(logits * 100)
    assert np.all(np.isfinite(g))


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown distribution family"):
        d.discretized_pmf("cauchy", 0.0, 0.0, 1.0)
