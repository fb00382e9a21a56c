"""Test-session settings.

The default suite's time is mostly XLA compilation of small programs, not their run time, so the
tests ask XLA's CPU backend to optimise less (about half the compile time). Set before anything
imports jax; subprocesses started by tests inherit it. Benchmarks do not use these flags.
"""

import os

_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()
# the command-line programs' persistent compilation cache stays off (tests are hermetic;
# tests/test_compile_cache.py turns it on in a folder of its own)
os.environ["NLC_JAX_CACHE_DIR"] = "off"
