"""Write the executed notebook docs/walkthrough.ipynb from its source, docs/walkthrough.py:

    python docs/make_walkthrough.py

converts the source (jupytext's percent format) to a notebook, runs every cell in a fresh
kernel with docs/ as its working directory (nbclient), and writes the notebook with its outputs
and figures and, in its metadata, the SHA-256 of the source's bytes and of the package's
sources (``minirnnsearch/**/*.py``) it ran with. tests/test_walkthrough.py runs the same
functions (loaded from this file's path: docs/ is not a package) and fails when the committed
notebook is not this command's output for the current source and package. Needs the test
extra (jupytext, nbclient, nbformat, ipykernel): ``pip install -e ".[test]"``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from minirnnsearch.oserrors import write_atomic

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "walkthrough.py"
NOTEBOOK = ROOT / "docs" / "walkthrough.ipynb"
KEY = "minirnnsearch"          # the notebook metadata's entry for the hashes
COMMAND = "python docs/make_walkthrough.py"


def hashes() -> dict[str, str]:
    """The SHA-256 of the source's bytes, and of the package's .py files (each one's path
    relative to the repository and its bytes, in the order of the paths)."""
    package = hashlib.sha256()
    for path in sorted((ROOT / "minirnnsearch").rglob("*.py")):
        package.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        package.update(path.read_bytes() + b"\0")
    return {"source_sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
            "package_sha256": package.hexdigest()}


def notebook() -> nbformat.NotebookNode:
    """The source as a notebook, without outputs."""
    return jupytext.reads(SOURCE.read_text(encoding="utf-8"), fmt="py:percent")


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Each cell's type and source: what must agree between the source and the notebook."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run every cell in order in a fresh python3 kernel in docs/, outputs stored in ``nb``;
    ``nbclient.exceptions.CellExecutionError`` names the first cell that fails."""
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(SOURCE.parent)}}).execute()
    return nb


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=__doc__.split("\n\n")[0].rstrip(":"))


def main(argv: list[str] | None = None) -> None:
    build_parser().parse_args(argv)
    record = hashes()
    nb = execute(notebook())
    nb.metadata[KEY] = record
    write_atomic(NOTEBOOK, nbformat.writes(nb).encode("utf-8"))  # whole or not at all
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}: {record}")


if __name__ == "__main__":
    main()
