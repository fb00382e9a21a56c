"""Entropy models: factorized prior, conditional model, hyperprior container."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nlc_jax.entropy import factorized
from nlc_jax.entropy.conditional import ConditionalEntropyModel
from nlc_jax.entropy.factorized import EntropyTables, FactorizedPrior
from nlc_jax.entropy.hyperprior import HyperpriorEntropyModel


@pytest.fixture(scope="module")
def trained_prior():
    """A factorized prior fitted for a few hundred steps to two channels with different laws."""
    prior = FactorizedPrior(channels=2)
    rng = np.random.default_rng(0)
    data = np.stack([rng.laplace(0, 0.7, 4096), rng.normal(3.0, 4.0, 4096)], -1).astype(np.float32)
    params = prior.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    opt = optax.adam(3e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        noisy = data + jax.random.uniform(key, data.shape, minval=-0.5, maxval=0.5)
        loss, g = jax.value_and_grad(lambda p: -jnp.mean(jnp.log2(prior.apply(p, noisy))))(params)
        updates, state = opt.update(g, state)
        return optax.apply_updates(params, updates), state, loss

    key = jax.random.PRNGKey(1)
    for _ in range(300):
        key, sub = jax.random.split(key)
        params, state, _ = step(params, state, sub)
    return prior, params, np.rint(data).astype(np.int32)


def test_factorized_likelihood_normalised_and_fitted(trained_prior):
    prior, params, symbols = trained_prior
    support = jnp.arange(-200, 201, dtype=jnp.float32)[:, None].repeat(2, 1)
    lik = prior.apply(params, support)
    np.testing.assert_allclose(np.asarray(lik, np.float64).sum(0), 1.0, atol=1e-5)
    # Fitted: the learned rate is close to the empirical entropy of each channel.
    learned = -np.log2(np.asarray(prior.apply(params, symbols.astype(np.float32)))).mean(0)
    for c in range(2):
        _, counts = np.unique(symbols[:, c], return_counts=True)
        p = counts / counts.sum()
        assert learned[c] < -(p * np.log2(p)).sum() + 0.1


def test_factorized_gradients_and_vmap():
    prior = FactorizedPrior(channels=3)
    params = prior.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    y = jnp.array([[-1e4, 0.0, 1e4], [0.2, -3.0, 7.0]])
    g = jax.jit(jax.grad(lambda p: -jnp.sum(jnp.log2(prior.apply(p, y)))))(params)
    assert all(np.all(np.isfinite(v)) for v in jax.tree_util.tree_leaves(g))
    batched = jax.jit(jax.vmap(lambda v: prior.apply(params, v)))(y[:, None, :])
    np.testing.assert_allclose(batched[:, 0], jax.jit(prior.apply)(params, y), rtol=1e-5)


def test_factorized_compress_round_trip_and_rate(trained_prior):
    prior, params, symbols = trained_prior
    tables = factorized.make_tables(prior, params)
    assert tables.counts.shape[0] == 2 and tables.offsets.shape == (2,)
    sym = symbols.reshape(64, 64, 2).copy()
    sym[0, 0] = [5000, -5000]  # escaped
    data = factorized.compress(tables, sym)
    np.testing.assert_array_equal(factorized.decompress(tables, data, sym.shape), sym)
    # Coded size tracks the learned (training) rate of the same symbols.
    learned = -np.log2(np.asarray(prior.apply(params, sym.astype(np.float32)))).sum()
    assert abs(8 * len(data) - learned) < 0.02 * learned + 150
    assert factorized.table_bits(tables, symbols) <= 8 * len(factorized.compress(tables, symbols))
    restored = EntropyTables(**tables.as_dict())
    assert factorized.decompress(restored, data, sym.shape).tolist() == sym.tolist()


@pytest.mark.parametrize("family", ["laplace", "gaussian"])
def test_conditional_model_rate_matches_coded_size(family):
    rng = np.random.default_rng(2)
    loc = rng.normal(0, 3, (32, 32, 4))
    scale = np.exp(rng.uniform(-2, 3, (32, 32, 4)))
    y = loc + rng.laplace(0, 1, loc.shape) * scale
    symbols = np.rint(y).astype(np.int32)
    model = ConditionalEntropyModel(family)
    data = model.compress(symbols, loc, scale)
    np.testing.assert_array_equal(model.decompress(data, loc, scale), symbols)
    exact = model.exact_bits(symbols, loc, scale)
    training = float(model.bits(symbols.astype(np.float32), loc, scale))
    assert exact <= 8 * len(data) <= exact + 96
    assert abs(training - exact) < 0.01 * exact + 64  # float32 training rate ≈ real rate
    noisy = float(model.bits(y + rng.uniform(-0.5, 0.5, y.shape), loc, scale))
    assert abs(noisy - exact) < 0.05 * exact  # the noisy proxy estimates the same rate


def test_hyperprior_round_trip_and_training_rates(trained_prior):
    prior, params, symbols = trained_prior
    tables = factorized.make_tables(prior, params)
    model = HyperpriorEntropyModel(prior)
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, (4, 4, 2)).astype(np.float32)
    y = rng.normal(0, 5, (8, 8, 3)).astype(np.float32)

    def hyper_fn(z_hat):  # stands in for the codec's hyper-synthesis network
        base = np.repeat(np.repeat(z_hat.sum(-1, keepdims=True), 2, 0), 2, 1)
        return np.tile(base * 0.3, (1, 1, 3)), np.tile(np.abs(base) + 1.0, (1, 1, 3))

    z_bytes, y_bytes, y_hat = model.compress(tables, y, z, hyper_fn)
    decoded = model.decompress(tables, z_bytes, y_bytes, z.shape, hyper_fn)
    np.testing.assert_array_equal(decoded, y_hat)
    assert np.max(np.abs(y_hat - y)) <= 0.5 + 1e-5
    z_hat, z_bits = model.z_rate(params, z, "noise", jax.random.PRNGKey(0))
    loc, scale = hyper_fn(np.asarray(z_hat))
    y_hat_train, y_bits = model.y_rate(y, loc, scale, "noise", jax.random.PRNGKey(1))
    assert z_hat.shape == z.shape and y_hat_train.shape == y.shape
    assert np.isfinite(float(z_bits)) and float(y_bits) > 0
