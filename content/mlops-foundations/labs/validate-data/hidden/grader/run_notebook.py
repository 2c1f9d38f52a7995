"""The validate-data lab's two runs of the learner's notebook.

    python /grader/grader/run_notebook.py --keep executed.ipynb submission.ipynb
    python /grader/grader/run_notebook.py submission.ipynb     (cwd: the workspace)

The first (`--keep`, the `run` stage: not grader-owned, only this script mounted, no
hidden data) executes the notebook and saves it, outputs and all, to the workspace
path given: that is the executed notebook the learner sees. It writes no observations.

The second (the grader stage, hidden inputs mounted) runs it again and probes it:

1. Reads and validates the notebook with nbformat (exit 1 only if that fails).
2. Executes its code cells top to bottom in a fresh ``python3`` kernel (nbclient),
   stopping at the first cell that raises or times out, as "Run all" would.
3. In the same kernel, runs probe_kernel.py once per group of functions
   (defines, clean, schema, split) on the hidden inputs in data/probe_cases/ and on
   data/train.csv, each with its own timeout.
4. Writes GRADER_OUT/observations.json (always; a placeholder is written first so a
   stage killed by its time limit still leaves one) and exits 0.
   Its cell outputs are never kept: a cell here can read the hidden inputs. The
   `notebook` observation names the failing cell and, for a built-in exception, its
   type, never the learner-controlled message (the kept run shows the error).

The kept notebook is saved before and after each cell, so a notebook stopped by the
stage's time limit still shows the cells that ran (metadata.shipwright.running_cell
names the one cut off).

No verdict is computed here: the host compares these observations with the
reference notebook's. GRADER_DIR and GRADER_OUT default to /grader and /grader-out
and may be overridden to run this script outside the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

GRADER_DIR = Path(os.environ.get("GRADER_DIR", "/grader"))
GRADER_OUT = Path(os.environ.get("GRADER_OUT", "/grader-out"))

KERNEL = "python3"
CELL_TIMEOUT_S = 60
# The stage has 180 s: notebook cells share this budget, each probe group gets its own.
NOTEBOOK_BUDGET_S = 110
PROBE_TIMEOUT_S = 12
MAX_TEXT = 1500
# Set by --keep: where the learner-facing run saves the executed notebook.
KEEP: Path | None = None

GROUPS = ("defines", "clean", "schema", "split")
KEYS = {
    "defines": ("defines",),
    "clean": (
        "clean_nulls",
        "clean_every_row_has_a_null",
        "clean_duplicates",
        "clean_duplicates_and_nulls",
        "clean_index",
        "clean_train_csv",
        "clean_input_unchanged",
        "clean_returns_new_frame",
    ),
    "schema": (
        "schema_train_csv_fits",
        "schema_missing",
        "schema_mistyped",
        "schema_missing_and_mistyped",
        "schema_empty_frame_fits",
        "schema_train_csv_target_as_float",
    ),
    "split": ("split_defaults", "split_test_size_033_seed_7", "split_other_target"),
}
FUNCTION_OF = {"clean": "clean()", "schema": "schema_errors()", "split": "split()"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _short(text: str, limit: int = MAX_TEXT) -> str:
    """Keep the head line and the tail of long texts: the tail of a traceback matters most."""
    text = ANSI.sub("", text).strip()
    if len(text) <= limit:
        return text
    head, _, rest = text.partition("\n")
    return head[:200] + "\n...\n" + rest[-(limit - len(head[:200]) - 5) :]


def write_observations(obs: dict) -> None:
    GRADER_OUT.mkdir(parents=True, exist_ok=True)
    tmp = GRADER_OUT / "observations.json.tmp"
    tmp.write_text(json.dumps(obs, indent=1, allow_nan=False))
    tmp.replace(GRADER_OUT / "observations.json")


def save_executed(nb, cell_count: int, **state) -> None:
    """The learner's first `cell_count` cells as they stand, with `state` (running_cell,
    failed_cell, finished) in metadata.shipwright; the host strips and renders it."""
    import nbformat

    if KEEP is None:  # the grader's run: its outputs may hold hidden data
        return
    try:
        copy = nbformat.from_dict({**nb, "cells": list(nb.cells[:cell_count])})
        copy.metadata["shipwright"] = state
        KEEP.parent.mkdir(parents=True, exist_ok=True)
        tmp = KEEP.with_name(KEEP.name + ".tmp")
        tmp.write_text(json.dumps(copy, indent=1))
        tmp.replace(KEEP)
    except Exception:  # noqa: BLE001 - the view is for the learner; grading goes on without it
        pass


def placeholder(reason: str) -> dict:
    obs: dict = {"notebook": reason}
    for group in GROUPS:
        for key in KEYS[group]:
            obs[key] = "not run: " + reason
    return obs


def kernel_environment() -> None:
    """The sandbox's root and home are read-only: give Jupyter and IPython a scratch dir."""
    scratch = Path(tempfile.mkdtemp(prefix="shipwright-kernel-"))
    for var, sub in (
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
        ("MPLCONFIGDIR", "matplotlib"),
    ):
        (scratch / sub).mkdir()
        os.environ[var] = str(scratch / sub)
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")


def describe_cell(nb, index: int) -> str:
    first = next((ln.strip() for ln in nb.cells[index].source.splitlines() if ln.strip()), "")
    if len(first) > 60:
        first = first[:57] + "..."
    return f"cell {index + 1} ({first})" if first else f"cell {index + 1}"


def run_notebook(client, nb) -> str | bool:
    """Execute every code cell; True, or the text of the first failure."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    cells = len(nb.cells)
    deadline = time.monotonic() + NOTEBOOK_BUDGET_S
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        remaining = deadline - time.monotonic()
        if remaining < 1:
            save_executed(nb, cells, finished=False, stopped_before=index)
            return (
                f"the notebook did not finish within {NOTEBOOK_BUDGET_S} s (stopped before {describe_cell(nb, index)})"
            )
        limit = int(min(CELL_TIMEOUT_S, remaining))
        client.timeout = limit
        save_executed(nb, cells, finished=False, running_cell=index)
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as exc:
            save_executed(nb, cells, finished=False, failed_cell=index)
            if exc.ename == "ShipwrightTimeout":
                return f"{describe_cell(nb, index)} did not finish within {limit} s"
            if KEEP is not None:
                return _short(f"{describe_cell(nb, index)} raised {exc.ename}: {exc.evalue}\n{_traceback(cell)}")
            return f"{describe_cell(nb, index)} raised {_safe_ename(exc.ename)}: {SEE_EXECUTED}"
        except CellTimeoutError:
            save_executed(nb, cells, finished=False, failed_cell=index)
            return f"{describe_cell(nb, index)} did not finish within {limit} s"
        except DeadKernelError:
            save_executed(nb, cells, finished=False, failed_cell=index)
            return f"the kernel died while running {describe_cell(nb, index)} (out of memory, or the code exited the process)"
    save_executed(nb, cells, finished=True)
    return True


SEE_EXECUTED = "your executed notebook shows the error"


def _safe_ename(ename: str) -> str:
    """The exception's type if it is a built-in one; the name of a class of the
    learner's own could carry hidden data out."""
    import builtins

    found = getattr(builtins, ename, None) if isinstance(ename, str) and ename.isidentifier() else None
    if isinstance(found, type) and issubclass(found, BaseException):
        return ename
    return "an exception"


def _traceback(cell) -> str:
    """The learner's own frame of the error: the last "Cell In[n], line k" block, not library internals."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            lines = ANSI.sub("", "\n".join(output.get("traceback", []))).splitlines()
            starts = [i for i, line in enumerate(lines) if line.startswith("Cell In[")]
            if not starts:
                return "\n".join(lines[-12:])
            block = []
            for line in lines[starts[-1] :]:
                if line.startswith("File ") or not line.strip():
                    break
                block.append(line)
            return "\n".join(block)
    return ""


def run_probe(client, group: str, workspace: Path) -> dict:
    """Run probe_kernel.py for one group in the learner's kernel; its observations, or error texts."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    marker = f"@@shipwright-observations-{secrets.token_hex(8)}@@"
    source = (GRADER_DIR / "grader" / "probe_kernel.py").read_text()
    env = {
        "GROUP": group,
        "CASES_PATH": str(GRADER_DIR / "data" / "probe_cases" / "frames.json"),
        "TRAIN_PATH": str(workspace / "data" / "train.csv"),
        "MARKER": marker,
    }
    code = (
        f"exec(compile({source!r}, 'shipwright-probe', 'exec'), "
        f"{{'__name__': 'shipwright_probe', 'NS': globals(), **{env!r}}})"
    )
    cell = nbformat.v4.new_code_cell(code)
    who = FUNCTION_OF.get(group, "the probe")

    def failed(text: str) -> dict:
        return {key: text for key in KEYS[group]}

    # nbclient stores the executed cell back at its index: give it a slot of its own.
    client.nb.cells.append(cell)
    client.timeout = PROBE_TIMEOUT_S
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    except CellExecutionError as exc:
        if exc.ename == "ShipwrightTimeout":
            return failed(f"{who} did not return within {PROBE_TIMEOUT_S} s")
        return failed(_short(f"probing {who} failed: {exc.ename}: {exc.evalue}", 600))
    except CellTimeoutError:
        return failed(f"{who} did not return within {PROBE_TIMEOUT_S} s")
    except DeadKernelError:
        return failed(f"the kernel died while calling {who} (out of memory, or the code exited the process)")
    text = "".join(
        o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )
    for line in reversed(text.splitlines()):
        if line.startswith(marker):
            try:
                obs = json.loads(line[len(marker) :])
            except (ValueError, RecursionError):
                break
            if not isinstance(obs, dict):
                break
            return {key: obs.get(key, f"{who} produced no observation {key}") for key in KEYS[group]}
    return failed(f"calling {who} produced no result (did the notebook replace sys.stdout?)")


def keep_run(client, nb) -> int:
    """The learner-facing run: execute, keep the notebook, say how it went."""
    with client.setup_kernel():
        result = run_notebook(client, nb)
    print("notebook: ran top to bottom" if result is True else f"notebook: {result}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    global KEEP
    workspace = Path.cwd()
    if len(argv) == 4 and argv[1] == "--keep":
        KEEP = workspace / argv[2]
        argv = [argv[0], argv[3]]
    if len(argv) != 2:
        print("usage: run_notebook.py [--keep EXECUTED.ipynb] NOTEBOOK.ipynb", file=sys.stderr)
        return 2
    path = workspace / argv[1]
    if KEEP is None:
        write_observations(placeholder("grading stopped before the notebook finished (stage time limit?)"))

    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is the same failure
        reason = _short(f"could not read {argv[1]} as a Jupyter notebook: {exc}", 600)
        if KEEP is not None:
            print(reason, flush=True)
            return 0  # the grader stage reports it
        write_observations(placeholder(reason))
        return 1

    kernel_environment()
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        allow_errors=False,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "ShipwrightTimeout", "evalue": "timed out"},
        record_timing=False,
        extra_arguments=["--HistoryManager.enabled=False"],
        resources={"metadata": {"path": str(workspace)}},
    )
    if KEEP is not None:
        return keep_run(client, nb)
    obs: dict = {}
    try:
        with client.setup_kernel():
            obs["notebook"] = run_notebook(client, nb)
            print(f"notebook: {'ok' if obs['notebook'] is True else 'failed'}", flush=True)
            for group in GROUPS:
                if client.km is None or not run_sync(client.km.is_alive)():
                    obs.update({k: "not run: the kernel is no longer running" for k in KEYS[group]})
                    continue
                obs.update(run_probe(client, group, workspace))
                print(f"probe {group}: done", flush=True)
    except Exception as exc:  # noqa: BLE001 - kernel start-up or shutdown trouble
        reason = _short(f"the notebook could not be run: {type(exc).__name__}: {exc}", 600)
        merged = placeholder(reason)
        merged.update(obs)
        write_observations(merged)
        # A kernel that never started is the platform's failure, not the learner's.
        return 0 if "notebook" in obs else 1
    write_observations(obs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
