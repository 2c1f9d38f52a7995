"""Judges of the learner's repository, on the host, with real parsers over the files a collect
stage read (YAML for GitHub Actions workflows, dockerfile-parse for Dockerfiles,
packaging for requirements, detect-secrets for the secret scan), and the learner
test-suite summary of a pytest stage. Never regular expressions over structure."""

from __future__ import annotations

import io
import re
import shlex

import yaml
from detect_secrets.core.scan import _process_line_based_plugins  # no public per-line API; the package is pinned
from detect_secrets.settings import transient_settings
from dockerfile_parse import DockerfileParser
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from labs.lab_spec import DockerfileCheck, PytestCheck, RequirementsCheck, SecretsCheck, WorkflowCheck

from .base import Evidence, Fail

SECRET_PLUGINS = {
    "plugins_used": [
        {"name": "AWSKeyDetector"},
        {"name": "PrivateKeyDetector"},
        {"name": "GitHubTokenDetector"},
        {"name": "SlackDetector"},
        {"name": "StripeDetector"},
        {"name": "JwtTokenDetector"},
        # Random-looking base64 tokens; hex digests (model and data hashes) are common
        # in ML repositories and are not flagged.
        {"name": "Base64HighEntropyString", "limit": 5.0},
    ]
}
SECRET_SKIP_SUFFIXES = (".csv", ".ipynb", ".lock", ".svg")
MAX_SCAN_LINE = 1000

NO_DOCKERFILE = "no {path} at the repository root (or it is not a regular file)"
UNREADABLE_REQUIREMENTS = "{problem}: the grader cannot check what it needs"
YAML_TOO_DEEP = "nested too deeply to be a workflow"


def _files(evidence: Evidence, stage: str) -> dict:
    return evidence.observation_set(stage).get("files", {})


def _problem(evidence: Evidence, stage: str, path: str) -> str | None:
    """Why the collect probe could not read a file that is there (a FIFO, too large,
    binary, not UTF-8), in words naming the file; None when it is simply absent."""
    return evidence.observation_set(stage).get("problems", {}).get(path)


def judge_dockerfile(check: DockerfileCheck, evidence: Evidence) -> str:
    text = _files(evidence, check.stage).get(check.path)
    if text is None:
        raise Fail(_problem(evidence, check.stage, check.path) or NO_DOCKERFILE.format(path=check.path))
    data = text.encode("utf-8", "replace")
    instructions = DockerfileParser(fileobj=io.BytesIO(data), env_replace=False).structure
    problems = []
    froms = [i for i, item in enumerate(instructions) if item["instruction"] == "FROM"]
    if not froms:
        problems.append("no FROM")
        last_stage = instructions
    else:
        last_stage = instructions[froms[-1] :]
    users = [item["value"].strip() for item in last_stage if item["instruction"] == "USER"]
    if not users:
        problems.append("no USER after the last FROM: the container would run as root")
    else:
        user = users[-1].split(":", 1)[0].strip().strip("'\"")
        if user in ("", "root", "0"):
            problems.append(f"the last USER is {users[-1]!r}, which is root")
    exposed = set()
    for item in instructions:
        if item["instruction"] == "EXPOSE":
            for port in item["value"].split():
                exposed.add(port.split("/", 1)[0])
    for port in check.expose:
        if str(port) not in exposed:
            problems.append(f"no EXPOSE {port}")
    if not any(item["instruction"] in ("CMD", "ENTRYPOINT") for item in instructions):
        problems.append("no CMD or ENTRYPOINT")
    if problems:
        raise Fail("; ".join(problems))
    return (
        "FROM, a non-root USER"
        + (f", EXPOSE {', '.join(map(str, check.expose))}" if check.expose else "")
        + " and CMD found"
    )


def _load_yaml(text: str) -> object:
    """yaml.safe_load, with every way learner YAML can break it as a YAMLError-like
    message. safe_load builds no objects, but its composer recurses once per nesting
    level (RecursionError), and constructing scalars can raise ValueError (a date
    such as 2001-02-30, an integer past the interpreter's digit limit)."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ValueError(YAML_TOO_DEEP) from None


def _workflows(evidence: Evidence, stage: str) -> list[dict]:
    found = []
    problems = evidence.observation_set(stage).get("problems", {})
    for path, text in sorted(_files(evidence, stage).items()):
        if not path.startswith(".github/workflows/") or not path.endswith((".yml", ".yaml")):
            continue
        entry: dict = {"path": path, "valid": False}
        if text is None:
            entry["error"] = problems.get(path) or "not a regular text file"
        else:
            try:
                document = _load_yaml(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                entry["error"] = (
                    f"invalid YAML{f' at line {mark.line + 1}' if mark else ''}: {getattr(exc, 'problem', exc)}"
                )
            except ValueError as exc:
                entry["error"] = f"invalid YAML: {exc}"
            else:
                if isinstance(document, dict):
                    entry.update(valid=True, document=document)
                else:
                    entry["error"] = "not a mapping at the top level"
        found.append(entry)
    return found


def _triggers(document: dict) -> set[str]:
    # YAML 1.1 reads a bare `on:` key as the boolean True. Only strings name events:
    # str() of anything else could expand an alias bomb (`on: [*a]`, 9**9 items).
    value = document.get("on", document.get(True))
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | dict):
        return {item for item in value if isinstance(item, str)}
    return set()


def _steps(document: dict) -> list[dict]:
    # Each step once: YAML aliases can repeat one step (with a 200 KB `run`) tens of
    # thousands of times for a few bytes each, and each would be shell-split again.
    steps, seen = [], set()
    jobs = document.get("jobs")
    if isinstance(jobs, dict):
        for job in jobs.values():
            if isinstance(job, dict) and isinstance(job.get("steps"), list):
                for step in job["steps"]:
                    if isinstance(step, dict) and id(step) not in seen:
                        seen.add(id(step))
                        steps.append(step)
    return steps


_COMMAND_SPLIT = re.compile(r"\n|&&|\|\||;|\|")


def _runs_pytest(command: str) -> bool:
    """True when one of the shell commands is pytest or python -m pytest (possibly
    behind VAR=value assignments or `coverage run -m`). `pip install pytest` is not."""
    for part in _COMMAND_SPLIT.split(command):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if not words:
            continue
        if words[0] in ("pytest", "py.test"):
            return True
        if re.fullmatch(r"python[0-9.]*", words[0]) and words[1:3] == ["-m", "pytest"]:
            return True
        if (
            words[0] == "coverage"
            and "-m" in words
            and words[words.index("-m") + 1 : words.index("-m") + 2] == ["pytest"]
        ):
            return True
    return False


def judge_workflow(check: WorkflowCheck, evidence: Evidence) -> str:
    workflows = _workflows(evidence, check.stage)
    if not workflows:
        raise Fail("no .github/workflows/*.yml or *.yaml file")
    valid = [w for w in workflows if w["valid"]]
    if check.rule == "valid":
        if not valid:
            raise Fail("; ".join(f"{w['path']}: {w['error']}" for w in workflows))
        return ", ".join(w["path"] for w in valid) + " parse as YAML"
    if not valid:
        raise Fail("no valid workflow file")
    if check.rule == "triggers":
        for workflow in valid:
            if _triggers(workflow["document"]) & set(check.triggers):
                return f"{workflow['path']} runs on {', '.join(sorted(_triggers(workflow['document'])))}"
        seen = sorted({t for w in valid for t in _triggers(w["document"])})
        raise Fail(f"no workflow runs `on` {' or '.join(check.triggers)} (found: {', '.join(seen) or 'none'})")
    if check.rule == "needs":
        return _judge_needs(check, valid)
    if check.rule == "checkout":
        for workflow in valid:
            for step in _steps(workflow["document"]):
                uses = step.get("uses")
                if isinstance(uses, str) and uses.split("@", 1)[0].strip().lower() == "actions/checkout":
                    return f"{workflow['path']} uses {uses}"
        raise Fail("no step `uses: actions/checkout@…`")
    for workflow in valid:
        for step in _steps(workflow["document"]):
            run = step.get("run")
            if isinstance(run, str) and _runs_pytest(run):
                return f"{workflow['path']} runs: {run.strip().splitlines()[0][:80]}"
    raise Fail("no step whose `run` invokes pytest or python -m pytest")


def _judge_needs(check: WorkflowCheck, valid: list[dict]) -> str:
    """The job `check.job`, in a workflow run on `check.triggers`, waits for every job
    of `check.needs`, and each of those is a job of that workflow (GitHub refuses a
    workflow whose `needs` names a job it lacks)."""
    assert check.job is not None
    seen = []
    for workflow in valid:
        jobs = workflow["document"].get("jobs")
        if not (_triggers(workflow["document"]) & set(check.triggers)) or not isinstance(jobs, dict):
            continue
        job = jobs.get(check.job)
        if not isinstance(job, dict):
            seen.append(f"{workflow['path']} has no job `{check.job}`")
            continue
        raw = job.get("needs")
        needs = (
            [raw] if isinstance(raw, str) else [n for n in raw if isinstance(n, str)] if isinstance(raw, list) else []
        )
        missing = [n for n in check.needs if n not in needs]
        if missing:
            seen.append(
                f"{workflow['path']}: job `{check.job}` does not wait for {', '.join(f'`{m}`' for m in missing)}"
                f" (add `needs: {check.needs[0] if len(check.needs) == 1 else check.needs}`)"
            )
            continue
        absent = [n for n in check.needs if not isinstance(jobs.get(n), dict)]
        if absent:
            seen.append(f"{workflow['path']}: job `{check.job}` needs {', '.join(absent)}, which is not a job there")
            continue
        return f"{workflow['path']}: job `{check.job}` runs after {', '.join(check.needs)}"
    if not seen:
        raise Fail(f"no workflow runs `on` {' or '.join(check.triggers)} with jobs")
    raise Fail("; ".join(seen))


def judge_requirements(check: RequirementsCheck, evidence: Evidence) -> str:
    observations = evidence.observation_set(check.stage)
    text = observations.get("files", {}).get(check.path)
    if text is None:
        problem = _problem(evidence, check.stage, check.path)
        if problem:
            raise Fail(UNREADABLE_REQUIREMENTS.format(problem=problem))
        return f"no {check.path}: nothing to check"
    packages = {canonicalize_name(name) for name in observations.get("packages", {})}
    missing, invalid = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(("-", "--")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            invalid.append(f"line {number}: {line!r}")
            continue
        if canonicalize_name(requirement.name) not in packages:
            missing.append(requirement.name)
    problems = []
    if missing:
        problems.append(
            f"{check.path} names {', '.join(missing)}, which the lab image does not have "
            "(the sandbox has no network, so nothing can be installed)"
        )
    if invalid:
        problems.append(f"{check.path} has lines that are not requirements: {'; '.join(invalid)}")
    if problems:
        raise Fail("\n".join(problems))
    return f"every package in {check.path} is in the lab image"


def judge_secrets(check: SecretsCheck, evidence: Evidence) -> str:
    scanned = evidence.observation_set(check.stage).get("scanned", {})
    findings = find_secrets(scanned)
    if findings:
        raise Fail(f"possible secrets committed to the repository:\n{shown_findings(findings)}")
    return f"no secrets found in {len(scanned)} file(s)"


def shown_findings(findings: list[str], most: int = 10) -> str:
    """The first `most` findings, one a line, and how many more there are."""
    more = len(findings) - most
    return "\n".join(findings[:most]) + (f"\n… and {more} more" if more > 0 else "")


def find_secrets(scanned: dict[str, str]) -> list[str]:
    """ "PATH:LINE: kinds" for each line of the texts (by path) where detect-secrets
    finds a secret of SECRET_PLUGINS."""
    findings = []
    # detect-secrets' public scan_line() searches eagerly (every word is a candidate
    # and entropy limits are not applied); the line-based scanner its CLI uses is not.
    with transient_settings(SECRET_PLUGINS):
        for path, text in sorted(scanned.items()):
            if path.endswith(SECRET_SKIP_SUFFIXES):
                continue
            lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if len(line) <= MAX_SCAN_LINE]
            found: dict[int, set[str]] = {}
            for secret in _process_line_based_plugins(lines, path):
                found.setdefault(secret.line_number, set()).add(secret.type)
            findings += [f"{path}:{number}: {', '.join(sorted(kinds))}" for number, kinds in sorted(found.items())]
    return findings


def judge_pytest(check: PytestCheck, evidence: Evidence) -> str:
    observations = evidence.observation_set(check.stage)
    tail = (observations.get("output_tail") or "")[-2500:]
    command = observations.get("command", "python -m pytest")
    if check.rule == "passes":
        if observations.get("timed_out"):
            raise Fail(f"{command} did not finish in time")
        if observations.get("junit_error"):
            # No trustworthy record of the run, whatever the exit code says.
            raise Fail(f"{command}: {observations['junit_error']}\n\n{tail}".strip())
        code = observations.get("exit_code")
        if code == 0:
            return f"{command} passed ({observations.get('passed', '?')} tests)"
        if code == 5:
            raise Fail(f"{command} collected no tests")
        failures = "\n".join(observations.get("failures", [])[:10])
        raise Fail(f"{command} exited with code {code}\n{failures}\n\n{tail}".strip())
    if check.rule == "collected":
        count = observations.get("collected")
        if count is None:
            raise Fail(f"pytest reported no tests ({observations.get('junit_error', 'no report')})\n{tail}")
        feedback = f"{count} test(s) collected; needs ≥ {check.min_tests}"
        if count < check.min_tests:
            raise Fail(feedback)
        return feedback
    percent = observations.get("coverage_percent")
    if percent is None or "coverage_error" in observations:
        raise Fail(f"no coverage report ({observations.get('coverage_error', 'did pytest run?')})")
    files = observations.get("coverage_files", {})
    detail = ", ".join(f"{path} {value:g}%" for path, value in sorted(files.items())[:12])
    feedback = (
        f"line coverage of Python files outside tests: {percent:.1f}% (needs ≥ {check.min_coverage:g}%): {detail}"
    )
    if percent < check.min_coverage:
        raise Fail(feedback)
    return feedback
