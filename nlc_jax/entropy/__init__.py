"""Entropy primitives: quantization proxies, discretized distributions, entropy models, causal
contexts and deterministic range coding with ``constriction`` (see ``docs/entropy.md``).

Import the submodules directly (``from nlc_jax.entropy import coding``); this package imports no
codec.
"""
