"""The sub-pixel transposed convolution equals flax's ``nn.ConvTranspose(padding="SAME")``."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax.layers import SubpixelConvTranspose


@pytest.mark.parametrize("kernel,stride", [(5, 2), (4, 2), (8, 2), (5, 3), (3, 1), (1, 2)])
def test_matches_flax_conv_transpose(kernel, stride):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 5, 3)), jnp.float32)
    ref = nn.ConvTranspose(4, (kernel, kernel), strides=(stride, stride), padding="SAME")
    ours = SubpixelConvTranspose(4, kernel, stride)
    params = ref.init(jax.random.key(1), x)
    # Same per-layer parameters and initialisation.
    assert jax.tree.all(jax.tree.map(np.array_equal, params, ours.init(jax.random.key(1), x)))
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    out = ours.apply(params, x)
    assert out.shape == (2, 7 * stride, 5 * stride, 4)
    np.testing.assert_allclose(out, ref.apply(params, x), atol=2e-6)

    def loss(module, p, inputs):
        return jnp.sum(jnp.sin(module.apply(p, inputs)))

    g_ref = jax.grad(lambda p, v: loss(ref, p, v), argnums=(0, 1))(params, x)
    g_ours = jax.grad(lambda p, v: loss(ours, p, v), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_ours), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-5)


def test_bfloat16_compute_float32_params():
    x = jnp.ones((1, 4, 4, 2), jnp.float32)
    module = SubpixelConvTranspose(3, 5, 2, dtype=jnp.bfloat16)
    params = module.init(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    assert module.apply(params, x).dtype == jnp.bfloat16
