"""The walkthrough (docs/walkthrough.py) runs, and docs/walkthrough.ipynb is its executed copy
for the current source and package.

The notebook is made by ``python docs/make_walkthrough.py``, whose functions these tests load
from its path (docs/ is not a package): the source converted by jupytext, executed by
nbclient, the hashes of the source and of ``minirnnsearch/**/*.py`` stored in its metadata.
So any change to the walkthrough or to the package's sources asks for that command again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_walkthrough",
                                               ROOT / "docs" / "make_walkthrough.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

STALE = (f"{make.NOTEBOOK.relative_to(ROOT)} is not the executed {make.SOURCE.relative_to(ROOT)}"
         f" of this package: regenerate it with `{make.COMMAND}` and commit it")


def test_the_walkthrough_runs_from_its_source():
    """Every cell of docs/walkthrough.py runs (each checks what it computes): an error or a
    failed assert in any cell raises CellExecutionError, naming the cell."""
    nb = make.execute(make.notebook())
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


def test_the_committed_notebook_is_the_source_executed():
    """The same cells as the source, each code cell executed, no error stored, and the hashes
    of the source and of the package it ran with equal to today's."""
    nb = nbformat.read(make.NOTEBOOK, as_version=4)
    assert make.cells(nb) == make.cells(make.notebook()), f"cells differ: {STALE}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), STALE
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], STALE
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), STALE
    assert nb.metadata.get(make.KEY) == make.hashes(), f"hashes differ: {STALE}"


def test_the_hashes_change_with_the_source_and_the_package(tmp_path, monkeypatch):
    """One byte more in the walkthrough or in any module of the package changes its hash."""
    for name in ("docs/walkthrough.py", "minirnnsearch/nn/gru.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.setattr(make, "ROOT", tmp_path)
    monkeypatch.setattr(make, "SOURCE", tmp_path / "docs" / "walkthrough.py")
    before = make.hashes()
    with open(tmp_path / "minirnnsearch" / "nn" / "gru.py", "a") as f:
        f.write("\n")
    after_package = make.hashes()
    assert after_package["package_sha256"] != before["package_sha256"]
    assert after_package["source_sha256"] == before["source_sha256"]
    with open(tmp_path / "docs" / "walkthrough.py", "a") as f:
        f.write("\n")
    assert make.hashes()["source_sha256"] != before["source_sha256"]
