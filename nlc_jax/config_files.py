"""The one config loader: presets shipped in :mod:`nlc_jax.configs` or a user's own file.

A config is named by ``"<name>[:<preset>]"`` (``"coolchic:fast"``), by a path to an ml_collections
config file with ``get_config(preset)`` (``"my_configs/coolchic_big.py:fast"``), or by the
spelling of a checkout before the configs moved into the package (``"configs/coolchic.py:fast"``,
which is the shipped ``coolchic`` when no such file exists). The CLIs (``config_flags``) get the
same resolution through :func:`config_file_argument`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from ml_collections import config_dict

import nlc_jax.configs

CONFIG_DIR = Path(nlc_jax.configs.__file__).resolve().parent
#: config files that hold no preset (shared blocks)
_NOT_PRESETS = {"__init__", "common"}
_LEGACY = re.compile(r"^(?:\./)?(?:configs/)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\.py)?$")


def names() -> list[str]:
    """Config names shipped with the package (``coolchic``, ``clric``, …)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in _NOT_PRESETS)


def _split(spec: str) -> tuple[str, str | None]:
    path, sep, preset = str(spec).partition(":")
    return path, (preset if sep else None)


def shipped_name(path: str) -> str | None:
    """The shipped config that ``path`` names (``coolchic``, ``coolchic.py``,
    ``configs/coolchic.py``) when no file of that name exists; else ``None``."""
    match = _LEGACY.match(path)
    if Path(path).is_file() or match is None or match["name"] not in names():
        return None
    return match["name"]


def config_module(name_or_path: str) -> ModuleType:
    """The config module of a shipped config name or of a file path.

    Raises:
      ValueError: neither a shipped config nor a readable file.
    """
    name = shipped_name(name_or_path)
    if name is not None:
        return importlib.import_module(f"nlc_jax.configs.{name}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"no config {name_or_path!r}: not a file, and the shipped configs are "
                         f"{', '.join(names())}")
    spec = importlib.util.spec_from_file_location(f"nlc_jax_user_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(name_or_path: str, preset: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> config_dict.ConfigDict:
    """A fresh, mutable config: ``get_config(preset)`` of a shipped config or a file.

    Args:
      name_or_path: ``"coolchic"``, ``"coolchic:fast"``, ``"path/to/file.py[:preset]"`` (or the
        older ``"configs/coolchic.py:fast"``).
      preset: the preset; overrides one given after ``:``; neither: the file's default.
      overrides: ``key.sub=value`` items (see :func:`apply_overrides`).

    Raises:
      ValueError: unknown config, preset or override key.
    """
    path, given = _split(name_or_path)
    preset = preset if preset is not None else given
    module = config_module(path)
    config = module.get_config() if preset is None else module.get_config(preset)
    return apply_overrides(config, list(overrides))


def config_file_argument(value: str) -> str:
    """The ``--config`` value for ``config_flags``: a shipped config's name (or its older
    ``configs/<name>.py`` path) becomes that file's path inside the package; anything else is
    returned unchanged (``config_flags`` reports a missing file)."""
    path, preset = _split(value)
    name = shipped_name(path)
    if name is None:
        return value
    return str(CONFIG_DIR / f"{name}.py") + ("" if preset is None else f":{preset}")


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
