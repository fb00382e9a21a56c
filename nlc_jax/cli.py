"""What the command-line programs (``nlc-encode``, ``nlc-train``, …) share: a bad flag, config
file, config key or output folder is one ``<program>: error: …`` line and exit status 2, never a
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from absl import app, flags

from nlc_jax.config_files import config_file_argument


def program_name() -> str:
    """The running command's name for error lines: ``nlc-encode``, ``encode.py``, …"""
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "nlc_jax"


_program = "nlc_jax"  # the running command's name in error lines (set by run_command)


def current_program() -> str:
    """The name :func:`run_command` gave the running command (``nlc-encode``, ``encode.py``)."""
    return _program


def run_command(main: Callable[[list[str]], None], module_name: str, doc: str,
                program: str | None = None) -> None:
    """Run an absl command: ``--help`` shows ``doc`` and the flags of ``module_name``, bad flags
    are one line and exit 2; ``program`` names the command in error lines (default: the
    running script's name). Compiled programs are kept between runs
    (:func:`nlc_jax.compilation.use_persistent_cache`)."""
    global _program
    _program = program or program_name()
    show_flags_in_help(module_name, doc)

    def with_cache(argv: list[str]) -> None:
        from nlc_jax.compilation import use_persistent_cache
        use_persistent_cache()  # compiled programs kept between runs (~/.cache/nlc_jax/xla)
        return main(argv)
    app.run(with_cache, flags_parser=flags_parser(_program))


def show_flags_in_help(module_name: str, doc: str) -> None:
    """Make absl's ``--help`` of a console command (whose ``__main__`` is a generated stub)
    print the command module's docstring and flags, as for a script that defines them."""
    main = sys.modules["__main__"]
    if not getattr(main, "__doc__", None):
        main.__doc__ = doc
    for flag in flags.FLAGS.get_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def fail(program: str, message: str, status: int = 2) -> NoReturn:
    """Print ``<program>: error: <message>`` on stderr and exit with ``status`` (2: bad flags or
    config)."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def one_line(text: str) -> str:
    """A multi-line message as one line: its first and last lines (``config_flags`` puts the
    traceback of a config file's exception between the two)."""
    lines = _lines(text) or [""]
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def flags_parser(program: str) -> Callable[[list[str]], list[str]]:
    """A ``flags_parser`` for ``absl.app.run`` that turns flag errors into one line, exit 2:
    bad values, an unknown preset (the config file's ``get_config`` raising) and unknown
    ``--config.<key>`` overrides."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(shipped_configs(argv))
        except flags.Error as e:
            fail(program, one_line(str(e)))
        except OSError as e:  # config_flags: an override of a config file that did not load
            fail(program, _load_error("config", e))
        except (AttributeError, KeyError) as e:  # ml_collections: an override of a missing key
            key = str(e.args[0] if e.args else e).strip("'\"")
            given = [a for a in argv[1:] if a.startswith("--config.") and key in a]
            fail(program, f"unknown config key {key!r}"
                 + (f" in {given[0].partition('=')[0]}" if given else ""))

    return parse


def shipped_configs(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config <value>`` / ``--config=<value>`` that names a shipped
    config (``coolchic:fast``, or a checkout's ``configs/coolchic.py:fast``) turned into that
    file's path inside the package (``nlc_jax.config_files.config_file_argument``)."""
    out, follows = [], False
    for arg in argv:
        if follows:
            arg, follows = config_file_argument(arg), False
        elif arg in ("--config", "-config"):
            follows = True
        elif arg.startswith(("--config=", "-config=")):
            flag, _, value = arg.partition("=")
            arg = f"{flag}={config_file_argument(value)}"
        out.append(arg)
    return out


def config_flag(program: str, name: str = "config") -> Any:
    """The config of ``config_flags`` flag ``--<name>`` (loaded lazily by ``config_flags``);
    one line, exit 2, when its file could not be loaded."""
    config = getattr(flags.FLAGS, name)
    try:
        config.keys()  # a config that failed to load raises on first use
    except OSError as e:
        fail(program, _load_error(name, e))
    return config


def _load_error(name: str, e: OSError) -> str:
    return f"--{name}: cannot load the config file ({(_lines(str(e)) or [type(e).__name__])[-1]})"


def make_folder(program: str, flag: str, path: str) -> Path:
    """Create output folder ``path`` (of flag ``--<flag>``) and its parents; one line, exit 2,
    when it cannot be created (a file in the way, no permission)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(program, f"--{flag} {path}: cannot create the folder ({e.strerror or e})")
    return folder
