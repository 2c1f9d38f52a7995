"""The executed notebook of a notebook lab, as the learner may see it.

A notebook lab's learner-facing stage (`executed_notebook:` in lab.yaml: not
grader-owned, run before any grader stage, so no hidden data was mounted) leaves the
executed notebook (the learner's cells and their outputs, saved cell by cell);
`notebook_prepare` turns those bytes into what is stored with
the submission: the notebook without hidden or grader-owned cells (the download),
and its HTML rendered by nbconvert (the `basic` template: no page, no scripts) and
sanitised with an allow-list, so nothing in it can run in a browser: no script, no
event handler, no style, no `javascript:` link, images only as data URLs.

Everything in the file came out of a container running learner code: it is parsed
with bounds and never trusted, only shown back to its owner and the course staff.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import nh3

TEMPLATES = Path(__file__).resolve().parent / "nbconvert_templates"

# Cells a grader or an author marks as not for the learner's eyes: their tags (nbgrader,
# Jupyter Book's remove-cell, ours) or our metadata. They go, source and outputs.
HIDDEN_TAGS = frozenset({"hidden", "hidden-tests", "hidden_tests", "grader", "remove-cell", "remove_cell"})
# nbgrader's hidden test region inside a visible cell: the lines go, and the cell's
# outputs with them (a traceback would quote them).
HIDDEN_REGION = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
HIDDEN_NOTE = "# (hidden tests removed)\n"

# How the grader stage says where the notebook stopped (metadata.shipwright).
FLAG_FAILED = "the notebook stopped here: this cell raised an error or ran out of time"
FLAG_RUNNING = "grading stopped while this cell was running (the stage's time limit)"
FLAG_NOT_RUN = "the notebook's time budget ran out before this cell"
_STATE_FLAGS = {"failed_cell": FLAG_FAILED, "running_cell": FLAG_RUNNING, "stopped_before": FLAG_NOT_RUN}

NOT_A_NOTEBOOK = "the executed notebook could not be read ({problem})"
MAX_CELLS = 2000

_CELL_ANCHOR = re.compile(r"^nb-cell-[0-9]{1,5}$")
_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
_SAFE_HREF = re.compile(r"^(?:https?:|mailto:|#)", re.I)

# What nbconvert's basic template and pandas' tables need; nothing interactive.
_NB_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s",
    "section", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_NB_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "ol": {"start"},
}


class NotebookUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class PreparedNotebook:
    ipynb: str  # the notebook a learner downloads: hidden cells stripped
    html: str  # sanitised
    finished: bool
    flagged_cell: int | None  # 1-based, as the grader's messages count cells
    flag: str


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if attribute == "id":
        # Only the cell anchors we set: an id of the learner's could shadow the page's
        # own (htmx targets, the live region).
        return value if _CELL_ANCHOR.match(value) else None
    if element == "img" and attribute == "src":
        return value if _DATA_IMAGE.match(value) else None
    if element == "a" and attribute == "href":
        return value if _SAFE_HREF.match(value.strip()) else None
    return value


def sanitize_notebook_html(html: str) -> str:
    """Allow-list HTML: scripts, styles, SVG and their content go; handlers and unsafe
    URLs go; images survive only as raster data URLs."""
    return nh3.clean(
        html,
        tags=_NB_TAGS,
        clean_content_tags={"script", "style", "svg", "math", "template", "iframe", "object"},
        attributes=_NB_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
    )


def _is_hidden(cell: Any) -> bool:
    metadata = cell.get("metadata") or {}
    tags = metadata.get("tags") or []
    if isinstance(tags, list) and any(isinstance(tag, str) and tag.lower() in HIDDEN_TAGS for tag in tags):
        return True
    ours = metadata.get("shipwright")
    if isinstance(ours, dict) and (ours.get("grader") or ours.get("hidden")):
        return True
    nbgrader = metadata.get("nbgrader")
    return isinstance(nbgrader, dict) and bool(nbgrader.get("hidden"))


def _state(metadata: Any) -> tuple[bool, int | None, str]:
    """(finished, index of the flagged cell, flag) from the grader stage's record."""
    state = metadata.get("shipwright") if isinstance(metadata, dict) else None
    if not isinstance(state, dict):
        return False, None, ""
    for key, flag in _STATE_FLAGS.items():
        index = state.get(key)
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            return False, index, flag
    return state.get("finished") is True, None, ""


def strip_hidden(nb: Any) -> tuple[Any, bool, int | None, str]:
    """The notebook without hidden cells, hidden test regions or our bookkeeping; each
    kept cell remembers its number in the original (the grader's "cell N")."""
    finished, flagged_index, flag = _state(nb.get("metadata"))
    kept = []
    for index, cell in enumerate(nb.cells):
        if _is_hidden(cell):
            continue
        source = cell.get("source", "")
        if isinstance(source, str) and HIDDEN_REGION.search(source):
            cell["source"] = HIDDEN_REGION.sub(HIDDEN_NOTE, source)
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
        cell.pop("attachments", None)
        metadata = {key: value for key, value in (cell.get("metadata") or {}).items() if key in ("tags",)}
        cell["metadata"] = metadata
        cell["_number"] = index + 1
        kept.append(cell)
    nb.cells = kept
    nb.metadata = {key: nb.metadata[key] for key in ("kernelspec", "language_info") if key in nb.metadata}
    if flagged_index is not None and not any(cell["_number"] == flagged_index + 1 for cell in kept):
        flagged_index, flag = None, ""
    return nb, finished, (flagged_index + 1 if flagged_index is not None else None), flag


@functools.cache
def _exporter():
    # Building one loads and compiles the templates: once per process.
    from nbconvert import HTMLExporter

    return HTMLExporter(
        extra_template_basedirs=[str(TEMPLATES)],
        template_name="shipwright",
        exclude_anchor_links=True,
    )


def _render(nb: Any, flagged: int | None, flag: str) -> str:
    view = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in view.cells:
        number = cell.pop("_number")
        cell.metadata["shipwright_view"] = {"number": number, "flag": flag if number == flagged else ""}
    with warnings.catch_warnings():
        # "IPython3 lexer unavailable": Pygments' Python lexer is used instead, as intended.
        warnings.simplefilter("ignore", UserWarning)
        body, _ = _exporter().from_notebook_node(view)
    return sanitize_notebook_html(body)


def notebook_prepare(raw: bytes) -> PreparedNotebook:
    """Parse, strip and render an executed notebook; raises NotebookUnreadable."""
    try:
        document = json.loads(raw.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        nb = nbformat.reads(json.dumps(document), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any malformed file is the same note
        raise NotebookUnreadable(NOT_A_NOTEBOOK.format(problem=type(exc).__name__)) from exc
    if not isinstance(nb.get("cells"), list) or len(nb.cells) > MAX_CELLS:
        raise NotebookUnreadable(NOT_A_NOTEBOOK.format(problem=f"no cells, or more than {MAX_CELLS}"))
    try:
        nb, finished, flagged, flag = strip_hidden(nb)
        download = nbformat.from_dict(json.loads(json.dumps(nb)))
        for cell in download.cells:
            cell.pop("_number", None)
        ipynb = json.dumps(download, indent=1, ensure_ascii=False) + "\n"
        html = _render(nb, flagged, flag)
    except Exception as exc:  # noqa: BLE001 - whatever a hostile file breaks, the page shows a note
        raise NotebookUnreadable(NOT_A_NOTEBOOK.format(problem=f"{type(exc).__name__}: {exc}"[:200])) from exc
    return PreparedNotebook(ipynb=ipynb, html=html, finished=finished, flagged_cell=flagged, flag=flag)


_CELL_MENTION = re.compile(r"\bcell (\d{1,5})\b")


def cell_anchor_for(output: str, *, cells: set[int], flagged: int | None) -> int | None:
    """The cell a failing check's feedback should link to: the one it names ("cell 3
    (...) raised ..."), else the cell where the notebook stopped."""
    for match in _CELL_MENTION.finditer(output or ""):
        number = int(match.group(1))
        if number in cells:
            return number
    return flagged


_RENDERED_CELL = re.compile(r'<section class="nb-cell[^"]*" id="nb-cell-([0-9]{1,5})"')


def rendered_cell_numbers(html: str) -> list[str]:
    """The cell numbers a stored rendering has anchors for."""
    return _RENDERED_CELL.findall(html)
