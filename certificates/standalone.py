"""The offline verifier as one file an employer downloads from the verify page and
runs with any Python 3.11+: a zip application (PEP 441) holding certificates/verifier.py,
the Django-free modules it imports and the pinned JSON-LD contexts. It needs nothing
of ours installed, only the pinned libraries of `requirements()`.

Built from the very modules the site verifies with, so the two cannot drift apart.
No Django imports.
"""

from __future__ import annotations

import io
import zipfile
from functools import cache
from importlib import metadata, resources

FILENAME = "shipwright-verify.pyz"
# The distributions signing.py and verifier.py import (pyld brings lxml and
# frozendict itself); pinned to the versions the site runs.
DISTRIBUTIONS = ("cryptography", "PyLD", "cachetools")
MODULES = ("__init__.py", "verifier.py", "signing.py", "status_list.py")
# A fixed timestamp keeps the archive a pure function of its contents.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)

_MAIN = '''"""Shipwright's offline credential verifier. Usage:

    python {filename} credential.json --did did.json [--status-list FILE_OR_URL] [--suspension-list FILE_OR_URL]
"""

import sys

REQUIREMENTS = {requirements!r}

try:
    import cachetools, cryptography, pyld  # noqa: F401, E401
except ImportError as exc:
    print(f"error: {{exc.name}} is not installed. First run:\\n  python -m pip install " + " ".join(REQUIREMENTS),
          file=sys.stderr)
    sys.exit(2)

from certificates.verifier import main

sys.exit(main(prog="python {filename}"))
'''


@cache
def requirements() -> tuple[str, ...]:
    """pip requirement lines, e.g. "cryptography==48.0.0" (read once per process: the
    installed versions do not change under it, and reading them costs a millisecond)."""
    return tuple(f"{name}=={metadata.version(name)}" for name in DISTRIBUTIONS)


@cache
def verifier_zipapp() -> bytes:
    """The standalone verifier's bytes (the same for the life of the process)."""
    package = resources.files("certificates")
    files: dict[str, bytes] = {
        "__main__.py": _MAIN.format(filename=FILENAME, requirements=list(requirements())).encode(),
        "requirements.txt": ("\n".join(requirements()) + "\n").encode(),
    }
    for module in MODULES:
        files[f"certificates/{module}"] = (package / module).read_bytes()
    for context in sorted((package / "contexts").iterdir(), key=lambda p: p.name):
        files[f"certificates/contexts/{context.name}"] = context.read_bytes()
    buffer = io.BytesIO()
    # As zipapp writes it: an interpreter line, then the archive (zip readers find it from the end).
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
