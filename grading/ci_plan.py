"""Plan a run of the learner's GitHub Actions test job (docs/ci.md).

On the host, from the workflow files the collect stage read before any learner code
ran (so no earlier stage can rewrite what is executed): choose the workflow and job,
expand the matrix, drop the entries the image cannot serve (with the reason), and
list every construct the grader cannot run faithfully, by name. The plan is JSON,
handed to the CI probe (grading/probes/ci_probe.py), which runs the steps.
"""

from __future__ import annotations

import datetime
import itertools
import re
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .judges.repository import _load_yaml, _runs_pytest, _triggers
from .probes import ci_expressions as expr

SUPPORTED_ACTIONS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/cache": "cache",
    "actions/cache/restore": "cache",
    "actions/cache/save": "cache",
    "actions/upload-artifact": "upload-artifact",
}
SHELLS = {
    None: ["bash", "-e", "{0}"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
    "python": ["python", "{0}"],
}
STEP_KEYS = {
    "name",
    "id",
    "if",
    "run",
    "uses",
    "with",
    "env",
    "shell",
    "working-directory",
    "continue-on-error",
    "timeout-minutes",
}
JOB_KEYS_IGNORED = {
    "name",
    "runs-on",
    "steps",
    "env",
    "defaults",
    "strategy",
    "if",
    "timeout-minutes",
    "continue-on-error",
    "permissions",
    "concurrency",
    "outputs",
    "needs",
    "environment",
}
JOB_KEYS_UNSUPPORTED = {"container", "services", "uses"}
MAX_STEPS = 50
MAX_MATRIX = 256
GITHUB_CONTEXT = {
    "event_name": "push",
    "ref": "refs/heads/main",
    "ref_name": "main",
    "ref_type": "branch",
    "workspace": "/workspace",
    "repository": "learner/submission",
    "repository_owner": "learner",
    "actor": "learner",
    "server_url": "https://github.com",
    "run_id": "1",
    "run_number": "1",
    "run_attempt": "1",
    "workflow": "",
    "job": "",
    "sha": "",
    "event": {},
}
RUNNER_CONTEXT = {
    "os": "Linux",
    "arch": "X64",
    "name": "shipwright",
    "temp": "/tmp/_runner/temp",
    "tool_cache": "/tmp/_runner/tool",
}


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _scalars(raw: Any, what: str, problems: list[str]) -> dict[str, Any]:
    """A mapping of names to scalars (`with:`, `env:`). Anything else is reported: a
    YAML alias can make a nested value of billions of items for a few bytes."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{what} that is not a mapping")
        return {}
    result = {}
    for key, value in raw.items():
        if isinstance(value, datetime.date):
            value = value.isoformat()  # an unquoted date: GitHub reads the text
        if _scalar(value):
            result[str(key)] = value
        else:
            problems.append(f"{what} `{str(key)[:40]}` is not a string or number")
    return result


NO_SUCH_JOB = "no job `{job}` in {workflows}, the workflows run on push or pull_request"


class PlanError(Exception):
    """No job can be run; str() says why, in words for the learner."""


def python_supported(spec: Any, available: list[str]) -> bool:
    """Whether a setup-python `python-version` names a Python the image has."""
    text = expr.to_string(spec).strip()
    if not text:
        return True
    for version in available:
        plain = text.removesuffix(".x").removesuffix(".*")
        if plain in (version, version.split(".")[0]) or plain.startswith(version + "."):
            return True
        if re.search(r"[<>=~!,]", text):
            try:
                if SpecifierSet(text).contains(version + ".0"):
                    return True
            except InvalidSpecifier:
                pass
    return False


def _matrix(strategy: Any, problems: list[str]) -> list[dict[str, Any]]:
    if not isinstance(strategy, dict) or "matrix" not in strategy:
        return [{}]
    matrix = strategy["matrix"]
    if not isinstance(matrix, dict):
        problems.append("a `strategy.matrix` that is not a mapping (an expression such as fromJSON(...))")
        return [{}]
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for name, values in axes.items():
        if not isinstance(values, list):
            problems.append(f"matrix axis `{name}` is not a list")
            return [{}]
        if not all(_scalar(value) for value in values):
            problems.append(f"matrix axis `{name}` has values that are not strings or numbers")
            return [{}]
    size = 1
    for values in axes.values():
        size *= max(len(values), 1)
    if size > MAX_MATRIX:
        problems.append(f"a matrix of {size} entries (more than {MAX_MATRIX})")
        return [{}]
    combos: list[dict[str, Any]] = (
        [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    )
    excludes = matrix.get("exclude")
    includes = matrix.get("include")
    for rule in excludes if isinstance(excludes, list) else []:
        if isinstance(rule, dict):
            combos = [c for c in combos if not all(expr._equal(c.get(k), v) for k, v in rule.items())]
    for extra in includes if isinstance(includes, list) else []:
        if not isinstance(extra, dict) or not all(_scalar(v) for v in extra.values()):
            problems.append("a matrix `include` entry that is not a mapping of strings or numbers")
            continue
        matched = False
        for combo in combos:
            if all(k not in axes or expr._equal(combo.get(k), v) for k, v in extra.items()):
                combo.update({k: v for k, v in extra.items() if k not in axes})
                matched = True
        if not matched:
            combos.append(dict(extra))
    return combos or [{}]


def _step_plan(index: int, step: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(step, dict):
        return {"index": index, "name": f"step {index}", "unsupported": "a step that is not a mapping"}
    run, uses = step.get("run"), step.get("uses")
    name = step.get("name")
    label = (
        expr.to_string(name)
        if name is not None
        else (
            f"Run {str(run).strip().splitlines()[0][:60]}"
            if isinstance(run, str) and run.strip()
            else f"Run {uses}"
            if isinstance(uses, str)
            else f"step {index}"
        )
    )
    step_problems: list[str] = []
    plan: dict[str, Any] = {
        "index": index,
        "name": label[:200],
        "id": str(step["id"]) if _scalar(step.get("id")) and "id" in step else None,
        "if": step.get("if") if _scalar(step.get("if")) else None,
        "env": _scalars(step.get("env"), "env", step_problems),
        "working_directory": step.get("working-directory") if _scalar(step.get("working-directory")) else None,
        "continue_on_error": step.get("continue-on-error", False) if _scalar(step.get("continue-on-error")) else False,
        "timeout_s": _minutes(step.get("timeout-minutes")),
        "runs_pytest": False,
        "unsupported": None,
    }
    for key in ("if", "working-directory", "continue-on-error", "id", "shell"):
        if not _scalar(step.get(key)):
            step_problems.append(f"`{key}:` that is not a string")
    unknown = sorted(str(k) for k in step if k not in STEP_KEYS)
    if unknown:
        plan["unsupported"] = f"step key(s) {', '.join(unknown)}"
    if isinstance(run, str) and uses is None:
        plan["kind"] = "run"
        plan["run"] = run
        plan["runs_pytest"] = _runs_pytest(run)
        shell = step.get("shell") if isinstance(step.get("shell"), str) else None
        if shell is not None and shell not in SHELLS:
            if isinstance(shell, str) and "{0}" in shell and shell.split()[0] in ("bash", "sh", "python", "python3"):
                plan["shell"] = shell.split()
            else:
                plan["unsupported"] = f"shell: {expr.to_string(shell)[:60]}"
        else:
            plan["shell"] = shell
    elif isinstance(uses, str) and run is None:
        plan["kind"] = "uses"
        plan["uses"] = uses
        action = uses.split("@", 1)[0].strip().lower()
        plan["action"] = SUPPORTED_ACTIONS.get(action)
        plan["with"] = _scalars(step.get("with"), "with:", step_problems)
        if plan["action"] is None:
            plan["unsupported"] = (
                f"uses: {uses} (the grader emulates only {', '.join(sorted(set(SUPPORTED_ACTIONS) - {'actions/cache/restore', 'actions/cache/save'}))})"
            )
        elif plan["action"] == "checkout" and ({"repository", "path"} & set(plan["with"])):
            plan["unsupported"] = (
                f"uses: {uses} with repository or path (only your own commit, at the root, is checked out)"
            )
        elif (
            plan["action"] == "setup-python"
            and "python-version-file" in plan["with"]
            and "python-version" not in plan["with"]
        ):
            plan["unsupported"] = f"uses: {uses} with python-version-file (name python-version instead)"
    else:
        plan["kind"] = "invalid"
        plan["unsupported"] = "a step needs exactly one of `run:` (text) or `uses:`"
    if step_problems and not plan["unsupported"]:
        plan["unsupported"] = "; ".join(step_problems)
    return plan


def _minutes(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) * 60
    return None


def _env(raw: Any, context: expr.Context, where: str, problems: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    if not isinstance(raw, dict):
        return result
    for key, value in raw.items():
        try:
            result[str(key)] = expr.substitute(expr.to_string(value), context)
        except expr.Unsupported as exc:
            problems.append(f"{where} env {key}: {exc}")
    return result


def choose_job(workflows: dict[str, str], job_id: str | None = None) -> tuple[str, dict, str, dict]:
    """(path, document, job id, job) of the job to run: the job named `job_id` in the
    first workflow run on push or pull_request that has one, or without a name, the
    job that tests the code (the first with a step running pytest)."""
    seen_triggered = []
    for path, text in sorted(workflows.items()):
        if not isinstance(text, str):
            continue
        try:
            document = _load_yaml(text)
        except (yaml.YAMLError, ValueError):
            continue
        if not isinstance(document, dict) or not (_triggers(document) & {"push", "pull_request"}):
            continue
        seen_triggered.append(path)
        jobs = document.get("jobs")
        if not isinstance(jobs, dict):
            continue
        if job_id is not None:
            if isinstance(jobs.get(job_id), dict):
                return path, document, job_id, jobs[job_id]
            continue
        for found_id, job in jobs.items():
            steps = job.get("steps") if isinstance(job, dict) else None
            if isinstance(steps, list) and any(
                isinstance(s, dict) and isinstance(s.get("run"), str) and _runs_pytest(s["run"]) for s in steps
            ):
                return path, document, str(found_id), job
    if not seen_triggered:
        raise PlanError("no valid workflow runs on push or pull_request, so no CI would run on this commit")
    if job_id is not None:
        raise PlanError(NO_SUCH_JOB.format(job=job_id, workflows=", ".join(seen_triggered)))
    raise PlanError(f"no job in {', '.join(seen_triggered)} has a step that runs pytest")


def plan(
    workflows: dict[str, str], *, python_versions: list[str], sha: str = "", job_id: str | None = None
) -> dict[str, Any]:
    """The plan of one job run (the job named `job_id`, else the one that runs pytest), or
    PlanError. Unsupported constructs are listed in plan["unsupported"] (job level:
    nothing runs) or on their step."""
    named = job_id is not None
    path, document, job_id, job = choose_job(workflows, job_id)
    problems: list[str] = []
    for key in sorted(str(k) for k in job if k in JOB_KEYS_UNSUPPORTED):
        problems.append(f"job `{key}:` (the grader runs steps directly in the lab image)")
    for key in sorted(str(k) for k in job if k not in JOB_KEYS_UNSUPPORTED | JOB_KEYS_IGNORED):
        problems.append(f"job key `{key}:`")
    steps_raw = job.get("steps") or []
    if len(steps_raw) > MAX_STEPS:
        problems.append(f"more than {MAX_STEPS} steps")
        steps_raw = steps_raw[:MAX_STEPS]
    steps = [_step_plan(i, s, problems) for i, s in enumerate(steps_raw, 1)]
    name = document.get("name")
    github = {
        **GITHUB_CONTEXT,
        "workflow": str(name)[:200] if _scalar(name) and name else path,
        "job": job_id,
        "sha": sha,
    }
    notes = []
    needs = job.get("needs")
    if needs:
        listed = [str(n) for n in (needs if isinstance(needs, list) else [needs]) if _scalar(n)][:10]
        notes.append(f"job {job_id} needs {', '.join(listed)}: only this job is run")
    combos = _matrix(job.get("strategy"), problems)
    runnable: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for combo in combos:
        context = expr.Context(
            {
                "github": github,
                "runner": RUNNER_CONTEXT,
                "matrix": combo,
                "env": {},
                "secrets": {},
                "vars": {},
                "inputs": {},
            }
        )
        reason = ""
        try:
            runs_on = job.get("runs-on", "ubuntu-latest")
            labels = runs_on if isinstance(runs_on, list) else [runs_on]
            if not all(_scalar(label) for label in labels):
                raise expr.Unsupported("a runs-on that is not a string or a list of strings")
            labels = [expr.substitute(expr.to_string(label), context) for label in labels]
            if not any(re.match(r"(ubuntu|linux|self-hosted)", label, re.I) for label in labels):
                reason = f"runs-on {', '.join(labels)}: the grader runs Linux (ubuntu) jobs only"
            for step in steps:
                if step.get("action") == "setup-python" and not reason:
                    wanted = step["with"].get("python-version")
                    if isinstance(wanted, list):
                        wanted = wanted[-1] if wanted else None
                    version = expr.substitute(expr.to_string(wanted), context) if wanted is not None else ""
                    if not python_supported(version, python_versions):
                        reason = f"python-version {version}: the lab image has Python {', '.join(python_versions)} only"
        except expr.Unsupported as exc:
            reason = f"cannot evaluate runs-on or python-version: {exc}"
        (skipped if reason else runnable).append({"matrix": combo, "reason": reason})
    if not runnable:
        problems.append(
            "no matrix entry the lab image can run: "
            + "; ".join(f"{_describe(s['matrix'])} skipped ({s['reason']})" for s in skipped)
        )
        chosen: dict[str, Any] = {}
    else:
        chosen = runnable[0]["matrix"]
        for other in runnable[1:]:
            skipped.append(
                {"matrix": other["matrix"], "reason": f"same image and Python as {_describe(chosen)}, which is run"}
            )
    context = expr.Context(
        {
            "github": github,
            "runner": RUNNER_CONTEXT,
            "matrix": chosen,
            "env": {},
            "secrets": {},
            "vars": {},
            "inputs": {},
        }
    )
    env = _env(document.get("env"), context, "workflow", problems)
    context.values["env"] = dict(env)
    env.update(_env(job.get("env"), context, "job", problems))
    job_if = job.get("if")
    if job_if is not None:
        try:
            if not expr.condition(job_if, context):
                problems.append(f"the job's `if: {expr.to_string(job_if)[:80]}` is false on a push")
        except expr.Unsupported as exc:
            problems.append(f"the job's `if:`: {exc}")
    defaults: dict[str, Any] = {}
    for source in (document.get("defaults"), job.get("defaults")):
        if isinstance(source, dict) and isinstance(source.get("run"), dict):
            for key in ("shell", "working-directory"):
                if key in source["run"] and isinstance(source["run"][key], str):
                    defaults[key] = source["run"][key]
    for step in steps:
        if step.get("kind") == "run":
            shell = step.get("shell") if step.get("shell") is not None else defaults.get("shell")
            if (
                shell is not None
                and not isinstance(shell, list)
                and (not isinstance(shell, str) or shell not in SHELLS)
            ):
                step["unsupported"] = step["unsupported"] or f"shell: {expr.to_string(shell)[:60]}"
            step["shell"] = (
                shell
                if isinstance(shell, list)
                else SHELLS.get(shell if isinstance(shell, str) else None, SHELLS[None])
            )
            if step["working_directory"] is None:
                step["working_directory"] = defaults.get("working-directory")
    return {
        "workflow": path,
        "job": job_id,
        # A job the lab names (a pipeline's train job) need not run pytest.
        "named": named,
        "job_name": str(job["name"])[:200] if _scalar(job.get("name")) and job.get("name") else job_id,
        "matrix": chosen,
        "skipped_matrix": skipped,
        "env": env,
        "contexts": {"github": github, "runner": RUNNER_CONTEXT, "matrix": chosen},
        "timeout_s": _minutes(job.get("timeout-minutes")),
        "continue_on_error": job.get("continue-on-error", False) is True,
        "steps": steps,
        "unsupported": problems,
        "notes": notes,
        "python_versions": python_versions,
    }


def _describe(matrix: dict[str, Any]) -> str:
    if not matrix:
        return "the job"
    return "matrix " + ", ".join(f"{k}={expr.to_string(v)}" for k, v in matrix.items())
