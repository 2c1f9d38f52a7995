"""The grader's pytest plugin, loaded with `-p shipwright_pytest` into the learner's
test run by pytest_probe.py (which runs as another uid and only reads a pipe).

Why not pytest-cov's JSON and JUnit files: they are written by the learner's own
process at its exit, into a folder that process can write, so a conftest could
rewrite them after the tests (an atexit handler, a late hook). Here the measurement
starts when this module is imported, before any conftest or learner module, and the
result leaves the process through an inherited pipe at the first
`pytest_sessionfinish` hook, before any learner hook of that name, learner
`pytest_unconfigure` or atexit handler runs; the pipe is then closed. Whatever is
written to the pipe after (or before) that one record spoils it: the probe treats
two records, or one it cannot parse, as tampering.

Learner code shares this process, so code written against this very plugin could
still interfere; that is the residue docs/grading.md describes.
"""

from __future__ import annotations

import json
import os

import coverage
import pytest

_FD_ENV = "SHIPWRIGHT_RESULTS_FD"
_OMIT_ENV = "SHIPWRIGHT_COVERAGE_OMIT"

_fd: int | None = int(os.environ.pop(_FD_ENV)) if _FD_ENV in os.environ else None
if _fd is not None:
    os.set_inheritable(_fd, False)  # processes the tests start do not get it
_root = os.getcwd()
_omit = json.loads(os.environ.pop(_OMIT_ENV, "[]"))
_cov = coverage.Coverage(data_file=None, source=[_root], omit=_omit, config_file=False)
_cov.start()
_counts: dict[str, int] = {"collected": 0, "failed": 0, "errors": 0, "skipped": 0, "passed": 0}
_failures: list[str] = []


def _failure(name: str, longrepr: object) -> None:
    if len(_failures) < 20:
        text = str(longrepr).strip().splitlines()
        _failures.append(f"{name[:300]}: {(text[-1] if text else '')[:300]}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _counts["errors"] += 1
        _failure(report.nodeid or "collection", report.longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "setup":
        _counts["collected"] += 1
    if report.failed:
        key = "failed" if report.when == "call" else "errors"
        _counts[key] += 1
        _failure(report.nodeid, report.longrepr)
    elif report.skipped and report.when in ("setup", "call"):
        _counts["skipped"] += 1
    elif report.passed and report.when == "call":
        _counts["passed"] += 1


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _fd
    _cov.stop()
    measured = {}
    for filename in _cov.get_data().measured_files():
        try:
            _, statements, _, missing, _ = _cov.analysis2(filename)
        except Exception:  # a file coverage cannot parse counts as not measured
            continue
        measured[os.path.relpath(filename, _root)] = [len(statements) - len(missing), len(statements)]
    record = {**_counts, "failures": _failures, "exitstatus": int(exitstatus), "coverage": measured}
    if _fd is not None:
        data = (json.dumps(record) + "\n").encode()
        while data:
            data = data[os.write(_fd, data) :]
        os.close(_fd)
        _fd = None
