"""Without apache-beam (CI does not install it, so tests/test_beam_runner.py skips there): every
name the Beam runner imports from nlc_jax exists, so a refactor cannot break the runner unseen,
and its command line says in one line that Beam is missing."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "nlc_jax" / "fit" / "beam_runner.py"


def test_every_nlc_jax_name_the_runner_imports_exists():
    imports = [node for node in ast.walk(ast.parse(RUNNER.read_text()))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nlc_jax")]
    assert imports
    for node in imports:
        module = importlib.import_module(node.module)
        for alias in node.names:
            name = f"{node.module}.{alias.name}"
            assert hasattr(module, alias.name) or importlib.util.find_spec(name), name


@pytest.mark.skipif(importlib.util.find_spec("apache_beam") is not None,
                    reason="apache-beam is installed")
def test_command_without_beam_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "nlc_jax.fit.beam_runner", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("beam_runner: error: apache-beam is not installed "
                                   "(pip install 'nlc_jax[beam]')")
