"""Weight entropy model: exact steps, round trips, rate estimate vs coded size, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.entropy.weight_model import K_MAX, K_MIN, WeightEntropyModel, step_value


def _tree(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"conv": {"w": jnp.asarray(rng.normal(0, 0.1, (3, 3, 8, 16)), jnp.float32),
                     "b": jnp.asarray(rng.normal(0, 0.01, (16,)), jnp.float32)},
            "dense": jnp.asarray(rng.laplace(0, 0.05, (4000,)), jnp.float32),
            "zeros": jnp.zeros((5, 2), jnp.float32)}


def test_step_table_is_exact():
    for k in range(K_MIN, K_MAX + 1):
        assert step_value(k) == np.float32(2.0 ** (k / 8)), k
        assert step_value(k).dtype == np.float32


def test_compress_decompress_round_trip():
    model = WeightEntropyModel(-7.0)
    tree = _tree()
    steps = model.init_steps(tree)
    steps["dense"] = jnp.float32(-5.3)  # snapped to -42/8
    data, deq, module_bits = model.compress(tree, steps)
    out = model.decompress(data, jax.tree.map(np.zeros_like, tree))
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(deq), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
    # each weight is on its tensor's grid, within half a step of the original
    for (w, d, s) in ((tree["dense"], deq["dense"], step_value(-42)),
                      (tree["conv"]["w"], deq["conv"]["w"], step_value(-56))):
        q = np.rint(np.asarray(d, np.float64) / np.float64(s)).astype(np.float32)
        np.testing.assert_array_equal(q * s, d)   # float32 integer × exact float32 step
        assert np.abs(np.asarray(w) - d).max() <= s / 2 + 1e-9
    assert set(module_bits) == {"conv", "dense", "zeros"}
    assert sum(module_bits.values()) <= 8 * len(data)


def test_training_rate_matches_coded_size():
    model = WeightEntropyModel(-7.0)
    tree = _tree(1)
    steps = model.init_steps(tree)
    _, estimate = model.quantize(tree, steps, "round")
    data, _, _ = model.compress(tree, steps)
    coded = 8 * len(data)
    assert abs(coded - float(estimate)) < 0.05 * coded + 200, (coded, float(estimate))
    # a coarser step costs fewer bits in both
    coarse = jax.tree.map(lambda s: s + 2.0, steps)
    _, estimate_coarse = model.quantize(tree, coarse, "round")
    assert float(estimate_coarse) < 0.8 * float(estimate)
    assert 8 * len(model.compress(tree, coarse)[0]) < 0.8 * coded


def test_proxies_and_gradients():
    model = WeightEntropyModel(-6.0)
    tree = _tree(2)
    steps = model.init_steps(tree)

    def loss(t, s):
        deq, bits = model.quantize(t, s, "noise", jax.random.key(0))
        return bits + sum(jnp.sum(jnp.square(d)) for d in jax.tree.leaves(deq))
    grads = jax.grad(loss, argnums=(0, 1))(tree, steps)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert float(grads[1]["dense"]) < 0   # a coarser step lowers the rate
    deq_noise, _ = model.quantize(tree, steps, "noise", jax.random.key(1))
    deq_round, _ = model.quantize(tree, steps, "round")
    diff = np.abs(np.asarray(deq_noise["dense"]) - np.asarray(deq_round["dense"]))
    assert 0 < diff.max() <= 2 ** -6 + 1e-7
    with pytest.raises(ValueError, match="needs an rng"):
        model.quantize(tree, steps, "noise")


def test_corrupt_data_raises_bitstream_error():
    model = WeightEntropyModel()
    tree = _tree(3)
    data, _, _ = model.compress(tree, model.init_steps(tree))
    template = jax.tree.map(np.zeros_like, tree)
    with pytest.raises(BitstreamError):
        model.decompress(data[:3], template)
    with pytest.raises(BitstreamError, match="out of range"):
        model.decompress(b"\xfe\x7f" + data[2:], template)  # step exponent 8191
