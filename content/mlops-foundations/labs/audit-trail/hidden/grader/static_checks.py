"""Host-side static checks on a submitted repository snapshot (no learner code runs).

Used for: the Dockerfile check (serve-model, capstone), the secret scan
(audit-trail, capstone) and the workflow checks (ci-workflow, capstone).
Links are never followed; each function returns plain data for judges.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_SCAN_BYTES = 5_000_000
AWS_KEY_ID = re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])")
PRIVATE_KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# A step "invokes pytest" when one of the commands of its `run` starts with pytest,
# py.test, python[3[.x]] -m pytest or coverage run ... -m pytest (after VAR=value
# assignments). `pip install pytest` does not count.
PYTEST_COMMAND = re.compile(
    r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
    r"(?:pytest|py\.test|python[0-9.]*\s+-m\s+pytest|coverage\s+run\s+(?:\S+\s+)*?-m\s+pytest)"
    r"(?![\w.-])"
)
COMMAND_SPLIT = re.compile(r"\n|&&|\|\||;|\|")


def _regular_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def dockerfile_facts(repo: Path) -> dict:
    """Instructions of ./Dockerfile: FROM, the effective USER, EXPOSEd ports, CMD/ENTRYPOINT."""
    path = repo / "Dockerfile"
    if not _regular_file(path):
        return {"exists": False}
    text = path.read_text(encoding="utf-8", errors="replace")
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending.strip():
        logical.append(pending)
    facts: dict = {"exists": True, "from": False, "users": [], "exposed": [], "cmd": False}
    for instruction in logical:
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            facts["from"] = True
            facts["users"] = []  # each build stage starts as root again
        elif keyword == "USER":
            facts["users"].append(rest)
        elif keyword == "EXPOSE":
            facts["exposed"] += [port.split("/")[0] for port in rest.split()]
        elif keyword in ("CMD", "ENTRYPOINT"):
            facts["cmd"] = True
    return facts


def is_root_user(value: str) -> bool:
    user = value.split(":", 1)[0].strip().strip('"').strip("'")
    return user in ("", "root", "0")


def secret_findings(repo: Path) -> list[str]:
    """Files (relative paths) holding an AWS-style access key id or a private key block."""
    findings = []
    for path in sorted(repo.rglob("*")):
        relative = path.relative_to(repo)
        if relative.parts and relative.parts[0] == ".git":
            continue
        if not _regular_file(path) or path.stat().st_size > MAX_SCAN_BYTES:
            continue
        data = path.read_bytes()
        if AWS_KEY_ID.search(data):
            findings.append(f"{relative}: AWS-style access key id")
        if PRIVATE_KEY_BLOCK.search(data):
            findings.append(f"{relative}: private key block")
    return findings


def _triggers(document: dict) -> list[str]:
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    value = document.get("on", document.get(True))
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return [str(key) for key in value]
    return []


def _steps(document: dict) -> list[dict]:
    steps = []
    jobs = document.get("jobs")
    if isinstance(jobs, dict):
        for job in jobs.values():
            if isinstance(job, dict) and isinstance(job.get("steps"), list):
                steps += [step for step in job["steps"] if isinstance(step, dict)]
    return steps


def invokes_pytest(run: str) -> bool:
    return any(PYTEST_COMMAND.match(command.strip()) for command in COMMAND_SPLIT.split(run))


def workflow_facts(repo: Path) -> list[dict]:
    """One entry per .github/workflows/*.yml|*.yaml regular file."""
    folder = repo / ".github" / "workflows"
    if not folder.is_dir() or folder.is_symlink():
        return []
    facts = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yml", ".yaml") or not _regular_file(path):
            continue
        entry: dict = {"path": str(path.relative_to(repo)), "valid": False}
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            entry["error"] = str(exc).splitlines()[0][:200]
            facts.append(entry)
            continue
        if not isinstance(document, dict):
            entry["error"] = "the file is not a YAML mapping"
            facts.append(entry)
            continue
        steps = _steps(document)
        entry.update(
            valid=True,
            triggers=_triggers(document),
            checkout=any(str(step.get("uses", "")).startswith("actions/checkout") for step in steps),
            pytest=any(invokes_pytest(str(step.get("run", ""))) for step in steps if "run" in step),
        )
        facts.append(entry)
    return facts
