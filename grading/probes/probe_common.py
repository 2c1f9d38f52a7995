"""Shared by the platform probes (copied beside them into /grader/_shipwright)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

LEARNER_UID = 1000


def as_learner() -> dict:
    """Popen arguments that start a learner process as uid/gid 1000 with no
    supplementary groups. A probe running as the grader (root in the container with
    only SETUID, SETGID and KILL; grading/sandbox.py) keeps learner code out of its
    uid: the kernel then refuses the learner's signals, /proc/<probe>/mem and writes
    to /grader-out. Switching from root to a non-zero uid drops every capability the
    child had. A probe already running as 1000 (no grader uid) just starts it."""
    if os.getuid() != 0:
        return {}
    return {"user": LEARNER_UID, "group": LEARNER_UID, "extra_groups": []}


def kill_other_processes() -> None:
    """Stop every other process of the sandbox: learner code (a server, a test
    suite, anything it left running). kill(-1) reaches every process we may signal
    (all of them as the grader, with CAP_KILL; those of our own uid otherwise) except
    ourselves and PID 1."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def write_observations(path: Path, observations: dict) -> None:
    """Write the observations last, once no learner process is left to rewrite them,
    into a directory emptied of whatever learner code may have put there (a planted
    file, a link, a read-only mode, a full disk)."""
    kill_other_processes()
    folder = path.parent
    try:
        os.chmod(folder, 0o755)  # undo a mode learner code may have set
    except PermissionError:
        pass  # a sticky directory we do not own: our own files can still be removed
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(observations))
