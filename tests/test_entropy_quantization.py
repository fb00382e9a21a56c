"""Quantization proxies and annealing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.entropy import quantization as q

X = jnp.linspace(-3.7, 3.7, 301)


def test_round_and_ste():
    np.testing.assert_array_equal(q.hard_round(X), jnp.round(X))
    np.testing.assert_array_equal(q.ste_round(X), jnp.round(X))
    grad = jax.grad(lambda x: q.ste_round(x).sum())(X)
    np.testing.assert_array_equal(grad, jnp.ones_like(X))


def test_soft_round_limits_and_inverse():
    away_from_half = X[jnp.abs(X - jnp.floor(X) - 0.5) > 0.02]
    np.testing.assert_allclose(q.soft_round(away_from_half, 1e-3), jnp.round(away_from_half),
                               atol=1e-5)
    np.testing.assert_allclose(q.soft_round(X, 1e3), X, atol=1e-3)
    round_trip = jax.jit(lambda x, t: (q.soft_round(x, t), q.soft_round_inverse(q.soft_round(x, t), t)))
    for t in (0.2, 0.5, 1.0):  # at smaller t the inverse is ill-conditioned near integers
        y, back = round_trip(X, t)
        np.testing.assert_allclose(back, X, atol=2e-3)
        assert np.all(np.diff(np.asarray(y)) >= 0)  # monotone
    grads = jax.jit(jax.grad(lambda x: q.soft_round(x, 0.01).sum()))(X)
    assert np.all(np.isfinite(grads))


def test_noise_proxies_ranges_and_statistics():
    rng = jax.random.PRNGKey(0)
    zeros = jnp.zeros(20000)
    u = q.add_uniform_noise(zeros, rng)
    assert float(u.min()) >= -0.5 and float(u.max()) <= 0.5 and abs(float(u.mean())) < 0.01
    uniform_k = q.kumaraswamy_noise(rng, (20000,), 1.0)
    np.testing.assert_allclose(np.std(uniform_k), np.sqrt(1 / 12), rtol=0.03)
    peaked = q.kumaraswamy_noise(rng, (20000,), 4.0)
    assert float(jnp.abs(peaked).max()) <= 0.5
    assert np.std(peaked) < 0.7 * np.std(uniform_k)  # larger a concentrates the noise
    assert abs(float(jnp.median(peaked))) < 0.02


def test_softround_gaussian_noise_level():
    """At a high temperature soft-round is the identity: the proxy adds N(0, noise_scale²)."""
    x = jnp.zeros(40000)
    y = q.quantize(x, "softround_gaussian", jax.random.PRNGKey(3), temperature=1e4,
                   noise_scale=0.2)
    np.testing.assert_allclose(np.std(y), 0.2, rtol=0.03)
    assert abs(float(jnp.mean(y))) < 0.01


@pytest.mark.parametrize("mode", q.QUANTIZE_MODES)
def test_quantize_modes_jit_vmap_and_gradients(mode):
    rngs = jax.random.split(jax.random.PRNGKey(1), 4)
    x = jnp.tile(X[None], (4, 1))

    def loss(x, rng):
        return jnp.sum(q.quantize(x, mode, rng, temperature=0.3) ** 2)

    values = jax.jit(jax.vmap(loss))(x, rngs)
    grads = jax.jit(jax.vmap(jax.grad(loss)))(x, rngs)
    assert values.shape == (4,) and np.all(np.isfinite(grads))
    if mode == "round":
        np.testing.assert_array_equal(q.quantize(X, mode), jnp.round(X))


def test_quantize_errors():
    with pytest.raises(ValueError, match="unknown quantization mode"):
        q.quantize(X, "dither", jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="needs an rng"):
        q.quantize(X, "noise")


def test_anneal():
    assert float(q.anneal(0.0, 0.5, 0.1)) == pytest.approx(0.5)
    assert float(q.anneal(1.0, 0.5, 0.1)) == pytest.approx(0.1)
    assert float(q.anneal(2.0, 0.5, 0.1)) == pytest.approx(0.1)  # clipped
    assert float(q.anneal(0.5, 1.0, 0.01, "exponential")) == pytest.approx(0.1, rel=1e-5)
    assert float(q.anneal(0.5, 0.0, 1.0, "cosine")) == pytest.approx(0.5)
    assert float(q.anneal(0.25, 0.0, 1.0, "cosine")) < 0.25
    assert float(q.anneal(0.7, 3.0, 1.0, "constant")) == 3.0
    jax.jit(lambda p: q.anneal(p, 1.0, 0.1, "exponential"))(0.3)
    with pytest.raises(ValueError, match="unknown annealing"):
        q.anneal(0.5, 0.0, 1.0, "step")
