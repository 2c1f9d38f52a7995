"""Pytest probe: run the learner's own test suite with coverage and summarise it.

    python pytest_probe.py CONFIG.json
CONFIG: {"args": ["-q"], "omit": ["tests/*", ...], "time_s": 240}

The learner's tests run in a child process; this process only reads the JUnit and
coverage reports it asked for. (A test suite could rewrite those reports: it is
the learner's own suite, so that only fools the learner.) Because it can, every
report is parsed as hostile input: a bad report is recorded as `junit_error` or
`coverage_error`, never a crash that would leave no observations at all.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from learner_files import LearnerFileError, load_json, read_regular_file
from probe_common import kill_other_processes, write_observations

OUT_DIR = Path(os.environ.get("GRADER_OUT", "/grader-out"))
TAIL = 6000
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_XML_DEPTH = 100
MAX_SOURCE_BYTES = 2 * 1024 * 1024

JUNIT_DTD = "the test report declares a DTD or entities, which pytest never writes"
JUNIT_TOO_DEEP = f"the test report nests elements more than {MAX_XML_DEPTH} levels deep"
JUNIT_NOT_XML = "the test report is not well-formed XML ({problem})"
COVERAGE_SHAPE = "the coverage report is not what pytest-cov writes ({problem})"


class ReportError(Exception):
    """A report that cannot be read; str(exc) says why."""


def _junit(path: Path) -> dict:
    """Counts from pytest's JUnit XML, streamed: no DTD (so no entity expansion, the
    "billion laughs"), bounded size and depth, and only the parts we read are kept."""
    data = read_regular_file(path, name="the test report", max_bytes=MAX_REPORT_BYTES)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ReportError(JUNIT_DTD)
    counts: dict[str, Any] = {"collected": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    parser: ET.XMLPullParser = ET.XMLPullParser(events=("start", "end"))
    depth = 0
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    try:
        for index in range(len(chunks) + 1):
            # Chunk by chunk, so a depth bomb stops early instead of being built whole.
            if index < len(chunks):
                parser.feed(chunks[index])
            else:
                parser.close()
            depth = _tally(parser, counts, depth)
    except ET.ParseError as exc:
        raise ReportError(JUNIT_NOT_XML.format(problem=exc)) from None
    counts["passed"] = counts["collected"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def _tally(parser: ET.XMLPullParser, counts: dict, depth: int) -> int:
    for event, element in cast("Iterator[tuple[str, Any]]", parser.read_events()):
        if event == "start":
            depth += 1
            if depth > MAX_XML_DEPTH:
                raise ReportError(JUNIT_TOO_DEEP)
            continue
        depth -= 1
        if not isinstance(element, ET.Element) or element.tag != "testcase":
            continue
        counts["collected"] += 1
        for tag, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            found = element.find(tag)
            if found is not None:
                counts[key] += 1
                if key != "skipped" and len(counts["failures"]) < 20:
                    name = f"{element.get('classname', '')}::{element.get('name', '')}"[:300]
                    counts["failures"].append(f"{name}: {(found.get('message') or '')[:300]}")
        element.clear()
    return depth


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(COVERAGE_SHAPE.format(problem=f"a line count is {str(value)[:40]}"))
    return value


def _coverage(path: Path) -> dict[str, tuple[int, int]]:
    """(covered lines, statements) per file from coverage.py's JSON report."""
    raw = read_regular_file(path, name="the coverage report", max_bytes=MAX_REPORT_BYTES)
    report = load_json(raw, name="the coverage report")
    files = report.get("files") if isinstance(report, dict) else None
    if not isinstance(files, dict):
        raise ReportError(COVERAGE_SHAPE.format(problem='no "files" object'))
    measured = {}
    for name, data in files.items():
        summary = data.get("summary") if isinstance(data, dict) else None
        if not isinstance(summary, dict):
            raise ReportError(COVERAGE_SHAPE.format(problem=f'no "summary" for {name[:100]}'))
        measured[os.path.normpath(name)] = (
            _count(summary.get("covered_lines", 0)),
            _count(summary.get("num_statements", 0)),
        )
    return measured


def _statements(path: str) -> int:
    """Non-blank, non-comment lines of a file no test imported (0 when it is not a
    readable regular file: a FIFO named x.py would block a plain open forever)."""
    try:
        data = read_regular_file(path, name=path, max_bytes=MAX_SOURCE_BYTES)
    except (OSError, LearnerFileError):
        return 0
    lines = data.decode("utf-8", "replace").splitlines()
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def _python_files(omit: list[str]) -> list[str]:
    found = []
    for root, dirs, names in os.walk(".", followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in {"__pycache__", "venv"}]
        for name in names:
            if name.endswith(".py"):
                path = os.path.normpath(os.path.join(root, name))
                if not any(fnmatch.fnmatch(path, pattern) for pattern in omit):
                    found.append(path)
    return sorted(found)


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    omit = config.get("omit", ["tests/*", "test_*.py", "*_test.py", "conftest.py", "*/conftest.py"])
    work = Path(tempfile.mkdtemp(prefix="pytest-probe-"))
    junit, coverage = work / "junit.xml", work / "coverage.json"
    rc = work / "coveragerc"
    rc.write_text("[run]\nsource = .\nomit =\n" + "".join(f"    {p}\n" for p in omit))
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *config.get("args", ["-q"]),
        "-p",
        "no:cacheprovider",
        "--cov=.",
        f"--cov-config={rc}",
        f"--cov-report=json:{coverage}",
        f"--junitxml={junit}",
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COVERAGE_FILE": str(work / ".coverage")}
    observations: dict = {"command": "python -m pytest " + " ".join(config.get("args", ["-q"]))}
    try:
        run = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=config.get("time_s", 240),
        )
        observations["exit_code"] = run.returncode
        output = run.stdout + run.stderr
        observations["output_tail"] = output[-TAIL:]
    except subprocess.TimeoutExpired:
        observations["exit_code"] = None
        observations["timed_out"] = True
    # Nothing the tests started may touch the reports while they are read.
    kill_other_processes()
    try:
        observations.update(_junit(junit))
    except OSError as exc:
        observations["junit_error"] = f"no test report: {type(exc).__name__}"
    except (LearnerFileError, ReportError) as exc:
        observations["junit_error"] = str(exc)
    measured: dict[str, tuple[int, int]] = {}
    try:
        measured = _coverage(coverage)
    except OSError as exc:
        observations["coverage_error"] = f"no coverage report: {type(exc).__name__}"
    except (LearnerFileError, ReportError) as exc:
        observations["coverage_error"] = str(exc)
    # Files no test imports count as 0% covered: measure every Python file outside the omitted ones.
    covered = total = 0
    per_file = {}
    for path in _python_files(omit):
        hit, statements = measured.get(path, (0, None))
        if statements is None:
            statements = _statements(path)
        covered += hit
        total += statements
        per_file[path] = round(100.0 * hit / statements, 1) if statements else 100.0
    observations["coverage_percent"] = round(100.0 * covered / total, 2) if total else 0.0
    observations["coverage_files"] = per_file
    write_observations(OUT_DIR / "observations.json", observations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
