"""Pytest probe: run the learner's own test suite with coverage and summarise it.

    python -s -E pytest_probe.py CONFIG.json
CONFIG: {"args": ["-q"], "omit": ["tests/*", ...], "time_s": 240}

This probe runs as root with only the capabilities to switch users and signal
(grading/sandbox.py, `as_grader`); the learner's tests run in a child switched to
uid 1000 with no capabilities, so they cannot signal this process, read or write its
memory, or write /grader-out (root's, mode 0755). The counts and the coverage come
from the grader's own plugin inside that child (shipwright_pytest.py) through a
pipe, never from report files the learner's process could rewrite. The record is
still parsed as hostile input, and anything else written to the pipe spoils it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from learner_files import LearnerFileError, load_json, read_regular_file
from probe_common import as_learner, kill_other_processes, write_observations

OUT_DIR = Path(os.environ.get("GRADER_OUT", "/grader-out"))
TAIL = 6000
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_SOURCE_BYTES = 2 * 1024 * 1024

CHANNEL_TAMPERED = "the test run wrote into the grader's channel, so its results cannot be trusted"
CHANNEL_EMPTY = "the grader's pytest plugin reported nothing (pytest did not start, or stopped before its end)"
COVERAGE_SHAPE = "the coverage record is not what the grader's plugin writes ({problem})"
PLUGIN_DIR = Path(__file__).resolve().parent


class ReportError(Exception):
    """A record that cannot be trusted; str(exc) says why."""


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportError(COVERAGE_SHAPE.format(problem=f"a count is {str(value)[:40]}"))
    return value


def _record(raw: bytes) -> dict:
    """The plugin's one JSON line; ReportError when there is none, or more."""
    if not raw:
        raise ReportError(CHANNEL_EMPTY)
    lines = raw.split(b"\n")
    if len(lines) != 2 or lines[1]:
        raise ReportError(CHANNEL_TAMPERED)
    try:
        record = load_json(lines[0], name="the plugin's record", max_bytes=MAX_REPORT_BYTES)
    except LearnerFileError:
        raise ReportError(CHANNEL_TAMPERED) from None
    if not isinstance(record, dict) or not isinstance(record.get("coverage"), dict):
        raise ReportError(CHANNEL_TAMPERED)
    return record


def _measured(record: dict) -> dict[str, tuple[int, int]]:
    measured = {}
    for name, pair in record["coverage"].items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise ReportError(COVERAGE_SHAPE.format(problem=f"no line counts for {name[:100]}"))
        measured[os.path.normpath(name)] = (_count(pair[0]), _count(pair[1]))
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


def _read_all(fd: int, into: bytearray) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            if len(into) <= MAX_REPORT_BYTES:
                into += chunk


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    omit = config.get("omit", ["tests/*", "test_*.py", "*_test.py", "conftest.py", "*/conftest.py"])
    args = config.get("args", ["-q"])
    read_end, write_end = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(read_end, received), daemon=True)
    reader.start()
    argv = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-p", "shipwright_pytest"]
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(PLUGIN_DIR),
        "SHIPWRIGHT_RESULTS_FD": str(write_end),
        "SHIPWRIGHT_COVERAGE_OMIT": json.dumps(omit),
    }
    observations: dict = {"command": "python -m pytest " + " ".join(args)}
    tests = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(write_end,),
        **as_learner(),
    )
    os.close(write_end)
    try:
        output, _ = tests.communicate(timeout=config.get("time_s", 240))
        observations["exit_code"] = tests.returncode
        observations["output_tail"] = output.decode("utf-8", "replace")[-TAIL:]
    except subprocess.TimeoutExpired:
        tests.kill()
        observations["exit_code"] = None
        observations["timed_out"] = True
    # Every process the tests started, and so every copy of the pipe, goes now.
    kill_other_processes()
    tests.wait()
    reader.join(timeout=10)
    measured: dict[str, tuple[int, int]] = {}
    try:
        record = _record(bytes(received))
        measured = _measured(record)
        for key in ("collected", "failed", "errors", "skipped", "passed"):
            observations[key] = _count(record.get(key, 0))
        observations["failures"] = [str(f)[:700] for f in record.get("failures", [])[:20]]
        if observations.get("exit_code") == 0 and (observations["failed"] or observations["errors"]):
            # The process exited 0 although its tests failed (a conftest calling os._exit(0)).
            observations["exit_code"] = 1
    except ReportError as exc:
        observations["junit_error"] = observations["coverage_error"] = str(exc)
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
