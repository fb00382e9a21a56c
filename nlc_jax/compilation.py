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

The command-line programs and the demo also keep compiled programs between runs
(:func:`use_persistent_cache`: JAX's persistent compilation cache in ``~/.cache/nlc_jax/xla``,
``NLC_JAX_CACHE_DIR`` to move it, ``off`` to disable it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
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


#: environment variable naming the folder of compiled programs kept between runs ("off": none)
CACHE_ENV = "NLC_JAX_CACHE_DIR"


def cache_dir() -> Path | None:
    """The folder where the command-line programs keep compiled XLA programs between runs:
    ``$NLC_JAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nlc_jax/xla`` (``~/.cache/nlc_jax/xla``);
    ``None`` when ``NLC_JAX_CACHE_DIR`` is empty or ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nlc_jax" / "xla"


def use_persistent_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache in :func:`cache_dir` for this process, so a
    program compiled by an earlier run (same shapes, options, jax and jaxlib) is loaded instead
    of compiled: most of a short encode's time on CPU. Left as it is when JAX already has a
    cache folder (``JAX_COMPILATION_CACHE_DIR``). Returns the folder in use, ``None`` when off
    or when the folder cannot be created (the run then compiles as usual)."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
