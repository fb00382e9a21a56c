"""Load the ml_collections config files in the repository's ``configs/`` folder from code.

The CLIs read them with ``config_flags`` (``--config configs/coolchic.py:fast``); the demo,
benchmarks, notebooks and tests call :func:`load_config` instead.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from types import ModuleType

from ml_collections import config_dict

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@functools.cache
def config_module(name: str) -> ModuleType:
    """The module ``configs/<name>.py``.

    Raises:
      ValueError: no such config file.
    """
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.py")))
        raise ValueError(f"no config file {path}; known: {known}")
    spec = importlib.util.spec_from_file_location(f"nlc_jax_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(name: str, preset: str) -> config_dict.ConfigDict:
    """``configs/<name>.py``'s ``get_config(preset)`` (a fresh, mutable copy each call)."""
    return config_module(name).get_config(preset)


def apply_overrides(config: config_dict.ConfigDict, items: list[str]) -> config_dict.ConfigDict:
    """Set ``key.sub=value`` items on ``config`` in place (what ``--config.key.sub=value`` does
    on the CLIs); values are Python literals (``2000``, ``(0.9, 0.99)``, ``True``) or strings.

    Raises:
      ValueError: a malformed item or an unknown key.
    """
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"config override {item!r} is not key=value")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        *parents, leaf = key.split(".")
        node = config
        for name in parents:
            node = node.get(name)
            if not isinstance(node, config_dict.ConfigDict):
                raise ValueError(f"unknown config key {key!r}")
        if leaf not in node:
            raise ValueError(f"unknown config key {key!r}")
        node[leaf] = value
    return config
