"""CI probe: run the steps of the learner's GitHub Actions job, as GitHub would.

    python -s -E ci_probe.py PLAN.json

PLAN comes from grading/ci_plan.py (the host parsed the workflow before any learner
code ran). This probe runs as the grader (root with SETUID, SETGID and KILL only);
each `run:` step is a child started as uid 1000 in the same workspace, like the
steps of one job on one runner: files, /tmp and background processes carry over
from step to step, and $GITHUB_ENV, $GITHUB_PATH and $GITHUB_OUTPUT work. Learner
processes cannot signal this probe, read its memory or write /grader-out. Every
verdict is the host's, from the exit codes recorded here.
"""

from __future__ import annotations

import glob
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import ci_expressions as expr
from learner_files import LearnerFileError, read_regular_file
from probe_common import as_learner, kill_other_processes, write_observations

OUT_DIR = Path(os.environ.get("GRADER_OUT", "/grader-out"))
WORKSPACE = "/workspace"
RUNNER_DIR = Path("/tmp/_runner")
STEP_OUTPUT_CAP = 48 * 1024
MAX_FILE_COMMAND = 256 * 1024
PIP_NOTE = "the sandbox has no network: pip sees only the packages of the lab image"


class _Output:
    """A step's output, capped: head and tail kept."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def add(self, chunk: bytes) -> None:
        half = STEP_OUTPUT_CAP // 2
        if len(self.head) < half:
            take = chunk[: half - len(self.head)]
            self.head += take
            chunk = chunk[len(take) :]
        self.tail += chunk
        if len(self.tail) > half:
            self.cut += len(self.tail) - half
            del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        middle = f"\n… ({self.cut} bytes cut) …\n" if self.cut else ""
        return bytes(self.head).decode("utf-8", "replace") + middle + bytes(self.tail).decode("utf-8", "replace")


def _file_command(path: Path) -> list[tuple[str, str]]:
    """NAME=value lines and NAME<<DELIM heredocs of $GITHUB_ENV / $GITHUB_OUTPUT."""
    try:
        data = read_regular_file(path, name=path.name, max_bytes=MAX_FILE_COMMAND)
    except (OSError, LearnerFileError):
        return []
    pairs, lines = [], data.decode("utf-8", "replace").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            pairs.append((name.strip(), "\n".join(body)))
        elif "=" in line:
            name, value = line.split("=", 1)
            pairs.append((name.strip(), value))
    return [(n, v) for n, v in pairs if n]


def _fresh_file(path: Path) -> None:
    """An empty file the step may write, in a folder only the grader can change
    (so no learner process can swap it for a link between steps)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    # The grader holds no CAP_CHOWN: the file stays root's, writable by everyone.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        os.fchmod(fd, 0o666)
    finally:
        os.close(fd)


def _run_process(argv: list[str], *, env: dict, cwd: str, timeout: float) -> tuple[int | None, str, int, bool]:
    """(exit code or None on timeout, output, bytes cut, timed out). Waits for the
    step's process, not for the end of its output: a background server started
    with `&` keeps the pipe open, as it may on GitHub."""
    output = _Output()
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **as_learner(),
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout
    timed_out, eof = False, False
    while True:
        if not eof:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if chunk:
                    output.add(chunk)
                else:
                    eof = True
        else:
            time.sleep(0.05)
        if process.poll() is not None:
            break
        if time.monotonic() > deadline:
            timed_out = True
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.kill()
            process.wait()
            break
    # What is already in the pipe, without waiting for processes left behind.
    end = time.monotonic() + 0.5
    while not eof and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        output.add(chunk)
    process.stdout.close()
    return (None if timed_out else process.returncode), output.text(), output.cut, timed_out


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text())
    budget = float(plan.get("time_s", 240))
    if plan.get("timeout_s"):
        budget = min(budget, float(plan["timeout_s"]))
    started = time.monotonic()
    # /tmp/_runner is the grader's (made before any learner code runs): "files" and
    # "scripts" stay root's, so learner code cannot plant links the probe would follow;
    # "temp" and "tool" are the learner's ($RUNNER_TEMP, $RUNNER_TOOL_CACHE).
    for sub in ("temp", "tool", "files", "scripts"):
        (RUNNER_DIR / sub).mkdir(parents=True, exist_ok=True)
        (RUNNER_DIR / sub).chmod(0o1777 if sub in ("temp", "tool") else 0o755)
    files = RUNNER_DIR / "files"
    extra_path: list[str] = []
    file_env: dict[str, str] = {}
    contexts = plan["contexts"]
    steps_context: dict[str, dict] = {}
    status = "success"
    results = []
    artifacts: list[dict] = []
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": WORKSPACE,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": contexts["github"]["ref"],
        "GITHUB_SHA": contexts["github"]["sha"],
        "GITHUB_JOB": plan["job"],
        "GITHUB_REPOSITORY": contexts["github"]["repository"],
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(RUNNER_DIR / "temp"),
        "RUNNER_TOOL_CACHE": str(RUNNER_DIR / "tool"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        # No network here: fail at once instead of retrying a package index.
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for step in plan["steps"]:
        result: dict = {
            "index": step["index"],
            "name": step["name"],
            "kind": step.get("kind"),
            "runs_pytest": step.get("runs_pytest", False),
            "exit_code": None,
            "output": "",
            "output_truncated_bytes": 0,
            "duration_s": 0.0,
            "note": "",
        }
        if step.get("kind") == "run":
            result["command"] = step["run"].strip()[:500]
        elif step.get("kind") == "uses":
            result["command"] = f"uses: {step['uses']}"[:500]
        env_context = {**plan["env"], **file_env}
        context = expr.Context(
            {
                **contexts,
                "env": env_context,
                "steps": steps_context,
                "job": {"status": status},
                "secrets": {},
                "vars": {},
                "inputs": {},
            },
            status=status,
        )
        step_started = time.monotonic()
        try:
            runs = expr.condition(step.get("if"), context)
        except expr.Unsupported as exc:
            runs = None
            result.update(
                status="unsupported",
                outcome="failure",
                conclusion="failure",
                note=f"the grader cannot evaluate this step's `if:`: {exc}",
            )
        if runs is False:
            result.update(
                status="skipped",
                outcome="skipped",
                conclusion="skipped",
                note=f"skipped: `if: {expr.to_string(step.get('if'))[:80]}` is false"
                if step.get("if") is not None
                else "skipped: an earlier step failed",
            )
        elif runs and step.get("unsupported"):
            result.update(
                status="unsupported",
                outcome="failure",
                conclusion="failure",
                note=f"the grader cannot run {step['unsupported']}",
            )
        elif runs:
            remaining = budget - (time.monotonic() - started)
            try:
                step_env = dict(env_context)
                context.values["env"] = step_env
                for key, value in (step.get("env") or {}).items():
                    step_env[key] = expr.substitute(expr.to_string(value), context)
                result.update(_run_step(step, context, step_env, base_env, extra_path, files, remaining, artifacts))
            except expr.Unsupported as exc:
                result.update(status="unsupported", exit_code=None, note=f"the grader cannot evaluate: {exc}")
            outcome = "success" if result["status"] == "success" else "failure"
            continue_on_error = step.get("continue_on_error")
            if isinstance(continue_on_error, str):
                try:
                    continue_on_error = expr.condition(
                        "always() && (" + continue_on_error.strip().removeprefix("${{").removesuffix("}}") + ")",
                        context,
                    )
                except expr.Unsupported:
                    continue_on_error = False
            result["outcome"] = outcome
            result["continue_on_error"] = bool(continue_on_error)
            result["conclusion"] = "success" if outcome == "success" or continue_on_error is True else "failure"
            # $GITHUB_ENV / $GITHUB_PATH / $GITHUB_OUTPUT of this step, for the next ones.
            for name, value in _file_command(files / "env"):
                file_env[name] = value
            try:
                path_lines = read_regular_file(files / "path", name="path", max_bytes=MAX_FILE_COMMAND)
                extra_path[:0] = [p for p in path_lines.decode("utf-8", "replace").splitlines() if p.strip()][::-1]
            except (OSError, LearnerFileError):
                pass
            if step.get("id"):
                steps_context[step["id"]] = {
                    "outcome": outcome,
                    "conclusion": result["conclusion"],
                    "outputs": dict(_file_command(files / "output")),
                }
            if result["status"] == "timed_out":
                status = "cancelled" if budget - (time.monotonic() - started) <= 0 else status
        if result.get("conclusion") == "failure" and status == "success":
            status = "failure"
        elif step.get("id") and runs is False:
            steps_context[step["id"]] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
        result["duration_s"] = round(time.monotonic() - step_started, 3)
        results.append(result)
        if budget - (time.monotonic() - started) <= 0 and status != "cancelled":
            status = "cancelled"
    kill_other_processes()
    write_observations(
        OUT_DIR / "observations.json",
        {
            "steps": results,
            "job_status": status,
            "artifacts": artifacts,
        },
    )
    return 0


def _run_step(step, context, step_env, base_env, extra_path, files, remaining, artifacts) -> dict:
    cwd = WORKSPACE
    if step.get("working_directory"):
        relative = expr.substitute(expr.to_string(step["working_directory"]), context)
        cwd = os.path.normpath(os.path.join(WORKSPACE, relative))
        if not os.path.isdir(cwd):
            return {
                "status": "failure",
                "exit_code": None,
                "note": f"working-directory {relative} does not exist in the workspace",
            }
    timeout = max(1.0, min(remaining, step.get("timeout_s") or remaining))
    if step["kind"] == "uses":
        return _action(step, context, timeout, artifacts)
    script = expr.substitute(step["run"], context)
    for name in ("env", "path", "output", "summary"):
        _fresh_file(files / name)
    script_path = RUNNER_DIR / "scripts" / f"step-{step['index']}.sh"
    script_path.write_text(script)
    script_path.chmod(0o644)
    argv = [part.replace("{0}", str(script_path)) for part in step["shell"]]
    env = {
        **base_env,
        **step_env,
        "GITHUB_ENV": str(files / "env"),
        "GITHUB_PATH": str(files / "path"),
        "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "GITHUB_WORKSPACE": WORKSPACE,
    }
    env["PATH"] = ":".join([*extra_path, step_env.get("PATH") or base_env["PATH"]])
    code, output, cut, timed_out = _run_process(argv, env=env, cwd=cwd, timeout=timeout)
    note = ""
    if timed_out:
        note = f"stopped after {timeout:.0f} s (the time left for the job or the step's timeout-minutes)"
    elif code and "pip" in script and ("No matching distribution" in output or "Could not find a version" in output):
        note = PIP_NOTE
    return {
        "command": script.strip()[:500],  # as run, after ${{ }} substitution (GitHub logs it so)
        "status": "timed_out" if timed_out else ("success" if code == 0 else "failure"),
        "exit_code": code,
        "output": output,
        "output_truncated_bytes": cut,
        "note": note,
    }


def _action(step, context, timeout, artifacts) -> dict:
    action, uses = step["action"], step["uses"]
    if action == "checkout":
        return {
            "status": "success",
            "exit_code": 0,
            "output": "The workspace already holds the commit you submitted (emulated actions/checkout).\n",
        }
    if action == "setup-python":
        version = sys.version.split()[0]
        return {
            "status": "success",
            "exit_code": 0,
            "output": f"Using the lab image's Python {version} (emulated {uses}; "
            "pip caching is not needed: nothing is downloaded).\n",
        }
    if action == "cache":
        return {
            "status": "success",
            "exit_code": 0,
            "output": f"{uses}: nothing is cached between grading runs (emulated as a no-op; cache-hit is false).\n",
        }
    # upload-artifact: the paths must exist; they are recorded, not uploaded.
    raw = expr.substitute(expr.to_string(step["with"].get("path", "")), context)
    patterns = [p.strip() for p in raw.splitlines() if p.strip() and not p.strip().startswith("!")]
    found = []
    for pattern in patterns:
        full = os.path.join(WORKSPACE, pattern)
        matches = glob.glob(full, recursive=True)
        found += [os.path.relpath(m, WORKSPACE) for m in matches]
    name = expr.substitute(expr.to_string(step["with"].get("name", "artifact")), context)
    mode = expr.substitute(expr.to_string(step["with"].get("if-no-files-found", "warn")), context).lower()
    if found:
        artifacts.append({"name": name, "paths": sorted(found)[:50]})
        return {
            "status": "success",
            "exit_code": 0,
            "output": f"Artifact {name}: {len(found)} path(s) found and recorded (not uploaded): "
            + ", ".join(sorted(found)[:10])
            + "\n",
        }
    message = f"No files were found with the provided path: {raw.strip() or '(none)'}."
    if mode == "error":
        return {"status": "failure", "exit_code": 1, "output": message + " No artifacts will be uploaded.\n"}
    return {
        "status": "success",
        "exit_code": 0,
        "output": message + (" No artifacts will be uploaded (warning).\n" if mode == "warn" else "\n"),
    }


if __name__ == "__main__":
    sys.exit(main())
