"""The notebooks in notebooks/ run top to bottom (CI budget) and their two forms agree.

Each notebook is a jupytext pair: the percent-format ``.py`` is the source, the ``.ipynb``
keeps the outputs of a full run so that plots show on a code host. The executed copy here is
built from the ``.py`` and run with ``PLIANT_NOTEBOOK_BUDGET=ci`` and a per-cell timeout; the
stored ``.ipynb`` is never rewritten.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
CELL_TIMEOUT_S = 120

jupytext = pytest.importorskip("jupytext", reason="needs pip install pliant[notebooks]")
nbclient = pytest.importorskip("nbclient", reason="needs pip install pliant[notebooks]")
nbformat = pytest.importorskip("nbformat", reason="needs pip install pliant[notebooks]")


def _cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_every_notebook_is_a_pair():
    assert SOURCES, f"no notebooks found in {NOTEBOOKS}"
    names = {p.stem for p in SOURCES}
    assert names == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}, (
        "each notebooks/*.py needs its .ipynb (python -m jupytext --sync notebooks/*.py) "
        "and each .ipynb its .py"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_py_and_ipynb_in_sync(source: Path):
    from_py = jupytext.read(source)
    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert _cells(from_py) == _cells(stored), (
        f"{source.name} and its .ipynb differ; the .py is the source: re-run it "
        f"(python -m jupytext --to ipynb --update {source}) and execute the notebook"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(source: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLIANT_NOTEBOOK_BUDGET", "ci")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    notebook = jupytext.read(source)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError naming the cell and its traceback
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, errors
