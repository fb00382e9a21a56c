"""``notebooks/*.ipynb``: static checks in the default suite (valid nbformat 4, no stored outputs,
every code cell compiles with IPython ``!``/``%`` lines stripped, every ``nlc_jax`` name they
import exists) and, marked ``ci`` (``make test-ci``: minutes of XLA compilation), every notebook
executed top to bottom with nbclient in its smoke setting (``NLC_NOTEBOOK_SMOKE=1``); a failing
cell fails the test.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(book: dict) -> list[str]:
    """Source of each code cell with IPython magics / shell lines removed."""
    return ["\n".join(line for line in "".join(cell["source"]).splitlines()
                      if not line.lstrip().startswith(("!", "%")))
            for cell in book["cells"] if cell["cell_type"] == "code"]


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "autoencoders.ipynb",
                                           "batch_encode.ipynb"}


@pytest.mark.ci
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch):
    import nbclient  # the dev extra: nbclient, ipykernel
    import nbformat

    monkeypatch.setenv("NLC_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "nlc_jax 0.1.0 from" in text  # the setup cell found the package


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbformat_structure(path: Path):
    book = _load(path)
    assert book["nbformat"] == 4 and isinstance(book["nbformat_minor"], int)
    assert isinstance(book["metadata"], dict) and book["cells"]
    for cell in book["cells"]:
        assert cell["cell_type"] in ("code", "markdown"), cell["cell_type"]
        assert isinstance(cell["source"], list) and all(isinstance(s, str) for s in cell["source"])
        assert isinstance(cell["metadata"], dict)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_compile(path: Path):
    for i, source in enumerate(_code_cells(_load(path))):
        compile(source, f"{path.name}[code cell {i}]", "exec")


def _nlc_imports(source: str) -> list[tuple[str, str | None]]:
    """``(module, name)`` of every ``from nlc_jax... import name`` / ``import nlc_jax...``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nlc_jax":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "nlc_jax"]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nlc_jax_names_exist(path: Path):
    imports = [imp for source in _code_cells(_load(path)) for imp in _nlc_imports(source)]
    assert imports, f"{path.name} imports nothing from nlc_jax"
    missing = []
    for module_name, name in imports:
        module = importlib.import_module(module_name)
        if name is not None and not hasattr(module, name):
            try:  # ``from package import submodule``
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{path.name} imports names that do not exist: {missing}"


def test_name_check_catches_drift():
    """The import scan sees ``from nlc_jax.x import y`` and a missing name is reported."""
    assert _nlc_imports("from nlc_jax.fit import encode_images, no_such\nimport os") == [
        ("nlc_jax.fit", "encode_images"), ("nlc_jax.fit", "no_such")]
    assert not hasattr(importlib.import_module("nlc_jax.fit"), "no_such")


def test_quickstart_config_fields_exist():
    """The quickstart's preset, config fields and eval flags exist (API drift check)."""
    from nlc_jax import load_config
    from nlc_jax.eval import parse_args

    recipe = load_config("coolchic", "fast").recipe
    assert {"n_itr", "warmup_steps", "final_steps"} <= set(recipe.keys())
    args = parse_args(["--originals", "o", "--decoded", "d", "--classic", "jpeg", "--lpips",
                       "none", "--output", "x"])
    assert args.lpips == "none" and args.classic == "jpeg"
