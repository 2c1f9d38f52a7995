"""The site's and worker's dependencies: declared, pinned, and locked with hashes."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not pinned"
        pins[re.sub(r"[-_.]+", "-", requirement.name).lower()] = spec.version
    return pins


def test_the_lock_file_pins_every_declared_requirement_at_its_version() -> None:
    declared = _pins(REPO / "requirements.txt")
    locked = _pins(REPO / "requirements.lock")
    stale = {name: (version, locked.get(name)) for name, version in declared.items() if locked.get(name) != version}
    assert not stale, f"requirements.lock is stale (declared, locked): {stale}; regenerate it as its header says"


def test_every_locked_package_carries_hashes() -> None:
    text = (REPO / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9][^\s=]*)==\S+((?:\s+\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.M)
    assert len(entries) == len(_pins(REPO / "requirements.lock"))
