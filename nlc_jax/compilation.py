"""XLA compiler options for the library's fitting and coding programs, and a ``jax.jit`` that
applies them.

On the CPU backend XLA's defaults spend most of a short encode compiling: the batched engine's
chunk of a COOL-CHIC fit is ≈ 2k small fusions, each compiled by LLVM at ``-O3`` with the new
fusion emitters. Measured on this project's 2-core CI machine (``benchmarks/coolchic_compile_time.py``,
the ``fast`` main-phase chunk of 3 fits), XLA's classic emitters at backend optimisation level 2
compile the same chunk in less than half the CPU time with the same step time, so :func:`jit`
uses them on CPU (:data:`CPU_OPTIONS`). Other backends get XLA's defaults.

An option also set in ``XLA_FLAGS`` (e.g. ``--xla_backend_optimization_level=0``, what the test
suite uses) is left to that flag; ``NLC_JAX_XLA_DEFAULTS=1`` in the environment keeps XLA's
defaults on CPU altogether (e.g. to compare). A jaxlib that does not know an option
(``INVALID_ARGUMENT: No such compile option``) gets none.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: what :func:`jit` asks of XLA on the CPU backend
CPU_OPTIONS: dict[str, Any] = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_backend_optimization_level": 2,
}


@functools.cache
def _accepted(platform: str, xla_flags: str, defaults: str) -> dict[str, Any]:
    if platform != "cpu" or defaults not in ("", "0"):
        return {}
    options = {k: v for k, v in CPU_OPTIONS.items() if f"--{k}=" not in xla_flags}
    if not options:
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(
            jnp.zeros((), jnp.float32)).compile()
    except jax.errors.JaxRuntimeError:
        return {}
    return options


def compiler_options(platform: str | None = None) -> dict[str, Any]:
    """The options :func:`jit` passes to XLA on ``platform`` (default: JAX's default backend);
    ``{}`` means XLA's own defaults."""
    return dict(_accepted(platform or jax.default_backend(), os.environ.get("XLA_FLAGS", ""),
                          os.environ.get("NLC_JAX_XLA_DEFAULTS", "")))


def jit(fn: Callable, **kwargs: Any) -> Callable:
    """``jax.jit(fn, **kwargs)`` with :func:`compiler_options` for the default backend."""
    options = compiler_options()
    return jax.jit(fn, compiler_options=options or None, **kwargs)
