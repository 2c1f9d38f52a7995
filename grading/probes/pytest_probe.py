"""Pytest probe: run the learner's own test suite with coverage and summarise it.

    python pytest_probe.py CONFIG.json
CONFIG: {"args": ["-q"], "omit": ["tests/*", ...], "time_s": 240}

The learner's tests run in a child process; this process only reads the JUnit and
coverage reports it asked for. (A test suite could rewrite those reports: it is
the learner's own suite, so that only fools the learner.)
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from probe_common import kill_other_processes, write_observations

OUT_DIR = Path(os.environ.get("GRADER_OUT", "/grader-out"))
TAIL = 6000


def _junit(path: Path) -> dict:
    counts = {"collected": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        for case in suite.iter("testcase"):
            counts["collected"] += 1
            for tag, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
                found = case.find(tag)
                if found is not None:
                    counts[key] += 1
                    if key != "skipped" and len(counts["failures"]) < 20:
                        name = f"{case.get('classname', '')}::{case.get('name', '')}"
                        counts["failures"].append(f"{name}: {(found.get('message') or '')[:300]}")
    counts["passed"] = counts["collected"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


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
    except (OSError, ET.ParseError) as exc:
        observations["junit_error"] = f"no test report: {type(exc).__name__}"
    measured: dict[str, tuple[int, int]] = {}
    try:
        report = json.loads(coverage.read_text())
        for path, data in report.get("files", {}).items():
            summary = data.get("summary", {})
            measured[os.path.normpath(path)] = (summary.get("covered_lines", 0), summary.get("num_statements", 0))
    except (OSError, ValueError) as exc:
        observations["coverage_error"] = f"no coverage report: {type(exc).__name__}"
    # Files no test imports count as 0% covered: measure every Python file outside the omitted ones.
    covered = total = 0
    per_file = {}
    for path in _python_files(omit):
        hit, statements = measured.get(path, (0, None))
        if statements is None:
            statements = sum(
                1
                for line in Path(path).read_text(errors="replace").splitlines()
                if line.strip() and not line.strip().startswith("#")
            )
        covered += hit
        total += statements
        per_file[path] = round(100.0 * hit / statements, 1) if statements else 100.0
    observations["coverage_percent"] = round(100.0 * covered / total, 2) if total else 0.0
    observations["coverage_files"] = per_file
    write_observations(OUT_DIR / "observations.json", observations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
