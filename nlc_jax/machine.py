"""What a benchmark ran on, recorded in its result JSON: CPU model, cores, load, JAX and its
devices (``machine_facts``), instead of a pointer to a document."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description() -> str:
    """e.g. ``"cpu x4"`` or ``"NVIDIA H100 80GB HBM3 x1"`` (this process's devices)."""
    import jax

    devices = jax.local_devices()
    return f"{devices[0].device_kind} x{len(devices)}"


def machine_facts() -> dict[str, Any]:
    """``{"cpu", "cores", "usable_cores", "load_average", "python", "jax", "jaxlib",
    "devices"}`` of this process, at the time of the call (call it at the end of a run: the
    load average covers the last 1 / 5 / 15 minutes)."""
    import jax
    import jaxlib

    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "load_average": list(os.getloadavg()), "python": platform.python_version(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "devices": device_description()}
