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


PROBE_CASES = REFERENCE.parents[1] / "data/probe_cases/frames.json"
READS_GRADER = "READS-GRADER"  # printed by the hostile cell, so the test sees it ran


def hostile_notebook(folder: Path) -> Path:
    """The reference solution plus cells that print every file under /grader and raise
    an exception carrying them (in its message and in its class name)."""
    nb = nbformat.read(REFERENCE, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import os\n"
            "leak = []\n"
            "for root, dirs, files in sorted(os.walk('/grader'), key=lambda w: 'probe_cases' in w[0]):\n"
            "    for name in files:\n"
            "        path = os.path.join(root, name)\n"
            "        try:\n"
            "            text = open(path, errors='replace').read()\n"
            "        except OSError as exc:\n"
            "            text = repr(exc)\n"
            "        leak.append((path, text))\n"
            "        print('==', path)\n"
            "        print(text)\n"
            f"print('{READS_GRADER}', len(leak), 'files')\n"
        )
    )
    # The probe cases go last (the tail of a long message is what feedback keeps) and
    # into the exception's class name, squeezed onto one line.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "probe = ' '.join(' '.join(t for p, t in leak if 'probe_cases' in p).split())\n"
            "secret = '\\n'.join(t for p, t in leak)\n"
            "raise type((probe or 'NothingMounted')[:300], (Exception,), {})(secret[-20000:])"
        )
    )
    path = folder / "hostile.ipynb"
    nbformat.write(nb, path)
    return path


def probe_case_markers() -> list[str]:
    """Pieces of the hidden probe cases that appear nowhere a learner may look (the
    runner script, which the learner-facing run mounts, names none of them)."""
    text = PROBE_CASES.read_text()
    # Quote-free, so HTML and JSON escaping cannot hide a leak from the test.
    rows = [line.strip().rstrip(",") for line in text.splitlines() if line.strip().startswith("[") and '"' not in line]
    return ["Hand-made probe inputs", *rows[:6]]
