"""Grades the learner's alerts.yml with promtool: `promtool check rules`, then the
lab's hidden unit tests (`promtool test rules`), one file per case, each naming the
learner's file as its rule file.

Runs in a grader-owned stage of shipwright-lab-prod:py311 as `python -I`, before any
learner code has run: alerts.yml is data. It is opened without following a link,
must be a regular file of at most MAX_RULES_BYTES, and is copied with the tests into
a folder of the grader's own, so promtool reads exactly those bytes and nothing a
link could point at. Every promtool run has a time limit.

The tests query ALERTS{alertname=..., alertstate="firing", severity="page"} rather
than listing the expected alerts: promtool compares expected alerts with every label
and rendered annotation, which would dictate the learner's wording.

Writes one observation per check: True, or a sentence saying what is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

PROMTOOL = "/usr/local/bin/promtool"
MAX_RULES_BYTES = 256 * 1024
TIMEOUT_S = 20
MAX_SHOWN = 600
ALERTS = {"error_alert": "HighErrorRate", "latency_alert": "HighLatencyP95"}
# Test file -> what the case checks, as the learner reads it when it fails.
CASES = {
    "error_alert": (
        (
            "error_fires.yml",
            'HighErrorRate (severity="page") must be firing after 25 minutes of 10% 5xx answers on /predict',
        ),
        ("error_waits.yml", "HighErrorRate must not fire within 5 minutes of the errors starting (for: 10m)"),
        ("error_quiet_ratio.yml", "HighErrorRate must stay quiet at 0.5% 5xx with heavy traffic and many 4xx"),
        ("error_quiet_low_traffic.yml", "HighErrorRate must stay quiet at 3 requests a minute, one of them a 5xx"),
        ("error_other_route.yml", "HighErrorRate must stay quiet when only /model fails"),
    ),
    "latency_alert": (
        (
            "latency_fires.yml",
            'HighLatencyP95 (severity="page") must be firing after 25 minutes with 10% of '
            "/predict requests between 0.5 and 1 s",
        ),
        ("latency_waits.yml", "HighLatencyP95 must not fire within 5 minutes of the slowness starting (for: 10m)"),
        (
            "latency_quiet.yml",
            "HighLatencyP95 must stay quiet when 2.5% of /predict requests are slow and /model is slow",
        ),
    ),
}


class Unreadable(Exception):
    pass


def read_rules(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Unreadable(f"no {path.name} at the top of your repository") from None
    except OSError as exc:
        raise Unreadable(f"{path.name} cannot be opened as a file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{path.name} is not a regular file")
        data = handle.read(MAX_RULES_BYTES + 1)
    if len(data) > MAX_RULES_BYTES:
        raise Unreadable(f"{path.name} is larger than {MAX_RULES_BYTES // 1024} kB")
    return data


def promtool_env(cwd: Path) -> dict[str, str]:
    # One Go scheduler thread each: a handful of promtool runs side by side stay far
    # below the stage's process limit (threads count) on a host with many cores.
    return {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GOMAXPROCS": "1"}


def promtool(*argvs: list[str], cwd: Path) -> list[int | None]:
    """Runs the promtool commands side by side, all within TIMEOUT_S: each one's exit
    code, or None if it had not finished by then."""
    runs = [
        subprocess.Popen(
            [PROMTOOL, *argv],
            cwd=cwd,
            env=promtool_env(cwd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for argv in argvs
    ]
    deadline = time.monotonic() + TIMEOUT_S
    codes: list[int | None] = []
    for run in runs:
        try:
            codes.append(run.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
            codes.append(None)
    return codes


def check_rules(cwd: Path) -> str | None:
    """None if promtool accepts alerts.yml, else why not (its own words)."""
    try:
        done = subprocess.run(
            [PROMTOOL, "check", "rules", "alerts.yml"],
            cwd=cwd,
            capture_output=True,
            timeout=TIMEOUT_S,
            env=promtool_env(cwd),
        )
    except subprocess.TimeoutExpired:
        return f"promtool check rules did not finish within {TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
    return "promtool check rules failed:\n" + output[:MAX_SHOWN]


def alert_names(data: bytes) -> set[str] | None:
    """The alert names of a rules file promtool has accepted, or None if PyYAML reads
    it otherwise than promtool's Go parser did (the tests still run)."""
    try:
        document = yaml.safe_load(data)
        return {
            rule["alert"]
            for group in document.get("groups") or []
            for rule in group.get("rules") or []
            if isinstance(rule, dict) and isinstance(rule.get("alert"), str)
        }
    except Exception:
        return None


def grade(rules: Path, tests: Path, work: Path) -> dict:
    try:
        data = read_rules(rules)
    except Unreadable as exc:
        return dict.fromkeys(("rules_valid", *CASES), str(exc))
    (work / "alerts.yml").write_bytes(data)
    why = check_rules(work)
    if why is not None:
        return {"rules_valid": why, **dict.fromkeys(CASES, "alerts.yml did not pass promtool check rules")}
    observations: dict = {"rules_valid": True}
    names = alert_names(data)
    for test in tests.glob("*.yml"):
        shutil.copyfile(test, work / test.name)
    runs = [
        (key, meaning, file)
        for key, cases in CASES.items()
        for file, meaning in cases
        if names is None or ALERTS[key] in names
    ]
    codes = promtool(*(["test", "rules", file] for _, _, file in runs), cwd=work)
    failed: dict[str, list[str]] = {key: [] for key in CASES}
    for (key, meaning, _), code in zip(runs, codes, strict=True):
        if code is None:
            failed[key].append(f"{meaning} (promtool test rules did not finish within {TIMEOUT_S} s)")
        elif code != 0:
            failed[key].append(meaning)
    for key in CASES:
        if names is not None and ALERTS[key] not in names:
            observations[key] = f"alerts.yml has no alert named {ALERTS[key]}"
        else:
            observations[key] = "\n".join(failed[key]) or True
    return observations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=Path, required=True)
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alerts-") as work:
        observations = grade(args.rules, args.tests, Path(work))
    args.out.write_text(json.dumps(observations))


if __name__ == "__main__":
    main()
