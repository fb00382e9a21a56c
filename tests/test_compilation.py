"""nlc_jax.compilation: the CPU compiler options the engine and the coders compile with."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nlc_jax import compilation


@pytest.fixture
def env(monkeypatch):
    """A clean environment for the options (the test session sets an XLA optimisation level)."""
    monkeypatch.delenv("NLC_JAX_XLA_DEFAULTS", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "")
    return monkeypatch


def test_cpu_gets_the_library_options(env):
    assert compilation.compiler_options("cpu") == compilation.CPU_OPTIONS
    assert compilation.compiler_options("gpu") == {}


def test_flags_in_xla_flags_are_left_to_them(env):
    env.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    options = compilation.compiler_options("cpu")
    assert "xla_backend_optimization_level" not in options
    assert options == {k: v for k, v in compilation.CPU_OPTIONS.items()
                       if k != "xla_backend_optimization_level"}


def test_defaults_switch_and_unknown_options(env):
    env.setenv("NLC_JAX_XLA_DEFAULTS", "1")
    assert compilation.compiler_options("cpu") == {}
    env.setenv("NLC_JAX_XLA_DEFAULTS", "0")
    env.setattr(compilation, "CPU_OPTIONS", {"xla_cpu_no_such_option_here": True})
    compilation._accepted.cache_clear()
    try:
        assert compilation.compiler_options("cpu") == {}  # refused by XLA: XLA's defaults
    finally:
        compilation._accepted.cache_clear()


def test_jit_computes_what_jax_jit_computes(env):
    def f(x):
        return jnp.tanh(x) * jnp.cumsum(x) + jnp.sin(3.0 * x)

    x = jnp.linspace(-2.0, 2.0, 257)
    np.testing.assert_allclose(compilation.jit(f)(x), jax.jit(f)(x), rtol=1e-6, atol=1e-6)
    assert "xla_cpu_use_fusion_emitters" in compilation.compiler_options()
