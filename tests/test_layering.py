"""The package's layers, read from the import statements (nothing is imported or run):
``entropy`` ← ``codecs`` ← ``fit`` ← ``commands``; one codec reaches another only through its
package's public names, and the COOL-CHIC-family blocks live in ``codecs/overfitted``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nlc_jax"
CODECS = ("coolchic", "clric", "noise2latent", "hyperprior", "rvdiff", "glc")


def imports(path: Path) -> set[str]:
    """Every ``nlc_jax…`` module named by an import statement of ``path`` (module level or
    inside functions): ``from a.b import c`` gives ``a.b`` and ``a.b.c``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("nlc_jax")}


def modules_under(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def offending(sub: str, forbidden) -> list[str]:
    return [f"{p.relative_to(PACKAGE.parent)} imports {m}" for p in modules_under(sub)
            for m in sorted(imports(p)) if forbidden(m)]


@pytest.mark.parametrize("sub, above", [
    ("entropy", ("nlc_jax.codecs", "nlc_jax.fit", "nlc_jax.train", "nlc_jax.commands",
                 "nlc_jax.api")),
    ("bitstream", ("nlc_jax.codecs", "nlc_jax.fit", "nlc_jax.train", "nlc_jax.commands")),
    ("codecs", ("nlc_jax.fit", "nlc_jax.train", "nlc_jax.commands", "nlc_jax.api")),
    ("fit", ("nlc_jax.commands", "nlc_jax.api")),
])
def test_lower_layers_do_not_import_higher_ones(sub, above):
    assert offending(sub, lambda m: m.startswith(above)) == []


def test_imports_are_found():
    """The checks below would pass vacuously if ``imports`` missed the statements."""
    assert "nlc_jax.codecs.overfitted.upsampling" in imports(
        PACKAGE / "codecs/noise2latent/generate.py")
    assert "nlc_jax.codecs.coolchic" in imports(PACKAGE / "codecs/clric/codec.py")


@pytest.mark.parametrize("codec", CODECS)
def test_codecs_use_each_other_only_through_package_names(codec):
    def forbidden(m):
        parts = m.split(".")
        if len(parts) < 3 or parts[1] != "codecs" or parts[2] in (codec, "overfitted"):
            return False
        if parts[2] not in CODECS:
            return False
        # nlc_jax.codecs.<other> or one of its __init__ names, never its modules
        return len(parts) > 3 and (PACKAGE / "codecs" / parts[2] / f"{parts[3]}.py").exists()
    assert offending(f"codecs/{codec}", forbidden) == []


def test_overfitted_blocks_import_no_codec():
    assert offending("codecs/overfitted",
                     lambda m: any(m.startswith(f"nlc_jax.codecs.{c}") for c in CODECS)) == []


def test_noise2latent_does_not_reach_into_coolchic():
    assert offending("codecs/noise2latent",
                     lambda m: m.startswith("nlc_jax.codecs.coolchic")) == []
