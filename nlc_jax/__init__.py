"""nlc_jax: neural image compression in JAX/Flax, built for accelerator throughput."""

__version__ = "0.1.0"
