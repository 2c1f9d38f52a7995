"""A validate-data notebook that defines every function, prints, hides a cell and then
fails in its last cell: shared by the grading and the browser tests."""

from __future__ import annotations

from pathlib import Path

import nbformat

REFERENCE = (
    Path(__file__).resolve().parents[2] / "content/mlops-foundations/labs/validate-data/hidden/reference/solution.ipynb"
)
PRINTED = "rows after cleaning: 455"
HIDDEN_MARK = "SECRET-HIDDEN-CELL"
FAILING_CELL = 11  # 1-based, as the grader counts cells


def failing_notebook(folder: Path) -> Path:
    nb = nbformat.read(REFERENCE, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("## Checks <script>alert('md')</script>"))
    nb.cells.append(
        nbformat.v4.new_code_cell(
            'print("rows after cleaning:", len(clean(df)))\nprint("<img src=x onerror=alert(1)>")'
        )
    )
    nb.cells.append(nbformat.v4.new_code_cell(f'print("{HIDDEN_MARK}")', metadata={"tags": ["hidden"]}))
    nb.cells.append(nbformat.v4.new_code_cell('raise ValueError("the last cell fails on purpose")'))
    assert len(nb.cells) == FAILING_CELL and nb.cells[FAILING_CELL - 1].source.startswith("raise")
    path = folder / "failing.ipynb"
    nbformat.write(nb, path)
    return path
