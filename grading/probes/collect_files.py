"""Collect probe: copy the text of chosen repository files into observations, for
checks parsed on the host with real parsers (YAML, Dockerfile, requirements), and
record the packages the lab image has. Runs no learner code; follows no links.

    python collect_files.py CONFIG.json
CONFIG: {"paths": [...], "globs": [...], "scan": true|false}

Observations: "files" (path -> text, or null when absent or unreadable), "problems"
(path -> why a file that is there could not be read: a FIFO, too large, binary, not
UTF-8), "scanned" (text of every readable file, for the secret scan), "packages".
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

from learner_files import LearnerFileError, read_regular_file, read_text_file

OUT = Path(os.environ.get("GRADER_OUT", "/grader-out")) / "observations.json"
MAX_FILE = 256 * 1024
MAX_TOTAL = 4 * 1024 * 1024
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def _read(path: str, problems: dict[str, str]) -> str | None:
    """Strict UTF-8 text of a regular file; None (and the reason in `problems`) otherwise."""
    try:
        return read_text_file(path, name=path, max_bytes=MAX_FILE)
    except FileNotFoundError:
        return None
    except LearnerFileError as exc:
        problems[path] = str(exc)
    except OSError as exc:
        problems[path] = f"{path} could not be read ({exc.strerror})"
    return None


def _scan_text(path: str) -> str | None:
    """Text to scan for secrets: lenient decoding, binary files skipped."""
    try:
        data = read_regular_file(path, name=path, max_bytes=MAX_FILE)
    except (OSError, LearnerFileError):
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    files: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for path in config.get("paths", []):
        files[path] = _read(path, problems)
    for pattern in config.get("globs", []):
        for match in sorted(Path(".").glob(pattern)):
            if match.as_posix() not in files:
                files[match.as_posix()] = _read(match.as_posix(), problems)
    scanned: dict[str, str] = {}
    if config.get("scan"):
        total = 0
        for root, dirs, names in os.walk(".", followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                path = os.path.normpath(os.path.join(root, name))
                text = _scan_text(path)
                if text is None or total + len(text) > MAX_TOTAL:
                    continue
                total += len(text)
                scanned[path] = text
    packages = {
        (dist.metadata["Name"] or "").lower().replace("_", "-"): dist.version for dist in metadata.distributions()
    }
    OUT.write_text(json.dumps({"files": files, "problems": problems, "scanned": scanned, "packages": packages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
