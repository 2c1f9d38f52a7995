"""Collect probe: copy the text of chosen repository files into observations, for
checks parsed on the host with real parsers (YAML, Dockerfile, requirements), and
record the packages the lab image has. Runs no learner code; follows no links.

    python collect_files.py CONFIG.json
CONFIG: {"paths": [...], "globs": [...], "scan": true|false}
"""

from __future__ import annotations

import json
import os
import stat
import sys
from importlib import metadata
from pathlib import Path

OUT = Path(os.environ.get("GRADER_OUT", "/grader-out")) / "observations.json"
MAX_FILE = 256 * 1024
MAX_TOTAL = 4 * 1024 * 1024
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def _read(path: str) -> str | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_FILE)
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    files: dict[str, str | None] = {}
    for path in config.get("paths", []):
        files[path] = _read(path)
    for pattern in config.get("globs", []):
        for match in sorted(Path(".").glob(pattern)):
            files.setdefault(match.as_posix(), _read(match.as_posix()))
    scanned: dict[str, str] = {}
    if config.get("scan"):
        total = 0
        for root, dirs, names in os.walk(".", followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                path = os.path.normpath(os.path.join(root, name))
                text = _read(path)
                if text is None or total + len(text) > MAX_TOTAL:
                    continue
                total += len(text)
                scanned[path] = text
    packages = {
        (dist.metadata["Name"] or "").lower().replace("_", "-"): dist.version for dist in metadata.distributions()
    }
    OUT.write_text(json.dumps({"files": files, "scanned": scanned, "packages": packages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
