"""HOSTILE on purpose: the tests cover little, so this conftest forges the evidence.

- At exit (after pytest and pytest-cov wrote their reports), rewrite any coverage
  JSON and JUnit report named on the command line to claim every line covered.
- Write a perfect-looking record into every pipe this process inherited besides its
  standard streams, in case the grader listens on one.
"""

import atexit
import json
import os
import stat
import sys

PERFECT = {"collected": 9, "failed": 0, "errors": 0, "skipped": 0, "passed": 9, "failures": [], "exitstatus": 0}


def _python_files():
    for root, dirs, names in os.walk("."):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.endswith(".py"):
                yield os.path.normpath(os.path.join(root, name))


def _everything_covered():
    files = {}
    for path in _python_files():
        with open(path) as handle:
            n = sum(1 for line in handle if line.strip() and not line.strip().startswith("#"))
        files[path] = {"summary": {"covered_lines": n, "num_statements": n}}
    return files


def _rewrite_reports():
    for arg in sys.argv:
        if arg.startswith("--cov-report=json:"):
            with open(arg.split(":", 1)[1], "w") as handle:
                json.dump({"files": _everything_covered()}, handle)
        if arg.startswith("--junitxml="):
            with open(arg.split("=", 1)[1], "w") as handle:
                handle.write('<testsuite>' + '<testcase classname="t" name="ok"/>' * 9 + "</testsuite>")


atexit.register(_rewrite_reports)

forged = {**PERFECT, "coverage": {p: [v["summary"]["num_statements"]] * 2 for p, v in _everything_covered().items()}}
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, (json.dumps(forged) + "\n").encode())
    except OSError:
        pass
