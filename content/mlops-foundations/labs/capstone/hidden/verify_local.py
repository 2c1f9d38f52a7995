"""Local verification of the five repo labs (serve-model, ci-workflow, drift-monitor,
audit-trail, capstone): runs every reference, wrong variant and starter on the host
the way hidden/GRADING.md says the grader will, and checks the verdicts.

    python content/mlops-foundations/labs/capstone/hidden/verify_local.py
    python .../verify_local.py --lab serve-model --lab drift-monitor -v
    python .../verify_local.py --lab capstone --repo path/to/a/learner/repo   # grade one repo

No Docker and no network: each repo is copied to a temp dir with data/train.csv
(generated from sklearn as CONTRACTS.md section 2 says) and run with this Python;
services listen on 127.0.0.1 at a free port. Probes and judges are the grader files
in hidden/grader/ (copied into each lab that needs them; this script checks the copies
are identical). It also checks that each lab's committed hidden/data matches a fresh
run of hidden/make_hidden.py. Exit status 0 when every expectation holds.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

sys.dont_write_bytecode = True  # never leave __pycache__ inside content/
HIDDEN = Path(__file__).resolve().parent
LABS = HIDDEN.parent.parent
GRADER = HIDDEN / "grader"
sys.path.insert(0, str(GRADER))

import judges  # noqa: E402
import static_checks  # noqa: E402

STAGE_TIMEOUT_S = 300
ALL_LABS = ["serve-model", "ci-workflow", "drift-monitor", "audit-trail", "capstone"]
GRADER_FILES = {
    "serve-model": ["probe_api.py", "judges.py", "static_checks.py", "train_if_missing.py"],
    "audit-trail": ["probe_api.py", "judges.py", "static_checks.py", "train_if_missing.py"],
    "drift-monitor": ["probe_monitor.py", "judges.py", "static_checks.py"],
    "ci-workflow": ["judges.py", "static_checks.py", "coveragerc"],
}
PASS_MARK = {"serve-model": 70, "ci-workflow": 70, "drift-monitor": 70, "audit-trail": 70,
             "capstone": 80}

# Check names of a variant that must fail; lab.yaml cannot list them until the checks
# exist there (the spec rejects unknown names), so they live here and in GRADING.md.
INTENDED_FAILING = {
    "serve-model": {
        "server-error-on-bad-input": ["malformed requests get a 4xx, never a 5xx"],
        "constant-class": ["holdout accuracy through the API >= 0.90"],
        "root-container": ["Dockerfile has FROM, a non-root USER, EXPOSE 8000 and CMD"],
    },
    "ci-workflow": {
        "no-pytest-step": ["a workflow step runs pytest"],
        "low-coverage": ["coverage of Python files outside tests/ >= 60%"],
        "schedule-only": ["the workflow runs on push or pull_request"],
    },
    "drift-monitor": {
        "no-clipping": ["psi matches the reference on shifted data",
                        "psi stays finite when bins are empty"],
        "bins-from-actual": ["psi matches the reference on shifted data"],
        "report-includes-target": ["drift_report covers every shared numeric column except target"],
        "right-closed-bins": ["psi handles ties and values on bin edges"],
    },
    "audit-trail": {
        "logs-email": ["no email key or value in the audit log"],
        "hashes-parsed-json": ["input_sha256 is the SHA-256 of the raw request body"],
        "logs-health": ["GET /health is not logged"],
    },
    "capstone": {
        "drift-missing": ["monitor.py imports and defines psi and drift_report"],
        "tests-fail": ["python -m pytest -q passes"],
        "logs-email": ["no email key or value in the audit log"],
    },
}


# --- running things -----------------------------------------------------------------

@dataclass
class Stage:
    exit_code: int | None
    output: str
    timed_out: bool = False
    duration_s: float = 0.0


def run(argv: list[str], cwd: Path, timeout: float = STAGE_TIMEOUT_S, env: dict | None = None) -> Stage:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        return Stage(None, out.decode() if isinstance(out, bytes) else out, True,
                     time.monotonic() - started)
    return Stage(done.returncode, (done.stdout + done.stderr)[-4000:], False,
                 time.monotonic() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Workspace:
    lab: str
    repo: Path
    out: Path
    data: Path  # temp dir with train.csv, holdout.csv
    cache: dict = field(default_factory=dict)

    def once(self, key: str, compute: Callable):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @property
    def hidden(self) -> Path:
        return LABS / self.lab / "hidden"

    def labels(self) -> list[int]:
        prefix = {"serve-model": "serve", "audit-trail": "audit", "capstone": "capstone"}[self.lab]
        return json.loads((self.hidden / "data" / f"{prefix}_holdout_labels.json").read_text())

    def features(self) -> Path:
        prefix = {"serve-model": "serve", "audit-trail": "audit", "capstone": "capstone"}[self.lab]
        return self.hidden / "data" / f"{prefix}_holdout_features.csv"

    def probe(self, script: str, name: str, *args: str) -> dict:
        out = self.out / f"{name}.json"
        stage = run([sys.executable, str(self.hidden / "grader" / script), "--repo", str(self.repo),
                     "--out", str(out), *args], cwd=self.repo)
        if not out.exists():
            return {"probe_failed": stage.output[-1500:]}
        return json.loads(out.read_text())

    # stages ------------------------------------------------------------------------
    def train_if_missing(self) -> Stage:
        return self.once("train_if_missing", lambda: run(
            [sys.executable, str(self.hidden / "grader" / "train_if_missing.py")], cwd=self.repo))

    def serve_obs(self) -> dict:
        def compute():
            self.train_if_missing()
            return self.probe("probe_api.py", "serve", "--features", str(self.features()),
                              "--port", str(free_port()), "--mode", "serve")
        return self.once("serve", compute)

    def audit_obs(self) -> dict:
        def compute():
            self.train_if_missing()
            return self.probe("probe_api.py", "audit", "--features", str(self.features()),
                              "--port", str(free_port()), "--mode", "audit",
                              "--audit-log", str(self.out / "audit.jsonl"))
        return self.once("audit", compute)

    def drift_obs(self) -> dict:
        return self.once("drift", lambda: self.probe(
            "probe_monitor.py", "drift", "--data", str(self.hidden / "data")))

    def drift_expected(self) -> dict:
        def compute():
            ref_repo = self.out / "reference-monitor"
            ref_repo.mkdir(exist_ok=True)
            shutil.copy(self.hidden / "reference_monitor.py", ref_repo / "monitor.py")
            out = self.out / "drift-expected.json"
            stage = run([sys.executable, str(self.hidden / "grader" / "probe_monitor.py"),
                         "--repo", str(ref_repo), "--data", str(self.hidden / "data"),
                         "--out", str(out)], cwd=ref_repo)
            assert out.exists(), stage.output
            return json.loads(out.read_text())
        return self.once("drift_expected", compute)

    def pytest(self) -> dict:
        def compute():
            cov, junit = self.out / "coverage.json", self.out / "junit.xml"
            stage = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "--cov=.", f"--cov-config={self.hidden / 'grader' / 'coveragerc'}",
                         f"--cov-report=json:{cov}", f"--junitxml={junit}"], cwd=self.repo)
            return {
                "stage": stage,
                "coverage": json.loads(cov.read_text()) if cov.exists() else None,
                "collected": judges.junit_counts(junit),
            }
        return self.once("pytest", compute)

    def train_runs(self) -> tuple[Stage, dict, Stage, dict]:
        def compute():
            first = run([sys.executable, "train.py"], cwd=self.repo)
            obs1 = self.probe("probe_train.py", "train1", "--features", str(self.features()))
            second = run([sys.executable, "train.py"], cwd=self.repo)
            obs2 = self.probe("probe_train.py", "train2", "--features", str(self.features()))
            return first, obs1, second, obs2
        return self.once("train", compute)


def stage_ok(stage: Stage, what: str) -> tuple[bool, str]:
    if stage.timed_out:
        return False, f"{what} was stopped after {STAGE_TIMEOUT_S} s"
    if stage.exit_code != 0:
        return False, f"{what} exited with status {stage.exit_code}: {stage.output[-300:]}"
    return True, f"{what} exited 0 in {stage.duration_s:.1f} s"


# --- check tables (names, points, required: see each lab's hidden/GRADING.md) --------

Check = tuple[str, float, bool, Callable[[Workspace], tuple[bool, str]]]
DRIFT_PSI_KEYS = ["psi_columns", "psi_series", "psi_default_bins", "psi_pair_identical",
                  "psi_pair_mild", "psi_pair_mild_bins_4", "psi_pair_mild_bins_20"]
DRIFT_EMPTY_KEYS = ["psi_pair_empty_bins"]
DRIFT_TIE_KEYS = ["psi_pair_ties", "psi_pair_values_on_edges", "psi_pair_tied_minimum"]


def serve_checks(p: dict) -> list[Check]:
    return [
        ("GET /health returns {\"status\": \"ok\"} within 20 s", p["health"], True,
         lambda w: judges.health(w.serve_obs())),
        ("POST /predict returns one 0/1 prediction per row", p["predict"], True,
         lambda w: judges.predict_shape(w.serve_obs(), len(w.labels()))),
        ("holdout accuracy through the API >= 0.90", p["accuracy"], p.get("accuracy_required", True),
         lambda w: judges.api_accuracy(w.serve_obs(), w.labels())),
        ("malformed requests get a 4xx, never a 5xx", p["malformed"], p.get("malformed_required", True),
         lambda w: judges.malformed(w.serve_obs())),
    ]


def latency_check(points: float) -> Check:
    return ("p95 latency of 50 single-row predictions <= 100 ms", points, False,
            lambda w: judges.latency(w.serve_obs()))


def dockerfile_check(points: float, required: bool) -> Check:
    return ("Dockerfile has FROM, a non-root USER, EXPOSE 8000 and CMD", points, required,
            lambda w: judges.dockerfile(static_checks.dockerfile_facts(w.repo)))


def audit_checks(p: dict, required: bool) -> list[Check]:
    return [
        ("each POST /predict appends one JSON line to AUDIT_LOG", p["lines"], required,
         lambda w: judges.audit_one_line_per_call(w.audit_obs())),
        ("audit lines carry ts (UTC), a unique request_id and the predictions", p["fields"], required,
         lambda w: judges.audit_fields(w.audit_obs())),
        ("input_sha256 is the SHA-256 of the raw request body", p["sha"], required,
         lambda w: judges.audit_sha256(w.audit_obs())),
        ("no email key or value in the audit log", p["email"], True,
         lambda w: judges.audit_no_email(w.audit_obs())),
        ("GET /health is not logged", p["health"], required,
         lambda w: judges.audit_health_not_logged(w.audit_obs())),
        ("the repository holds no secrets", p["secrets"], required,
         lambda w: judges.no_secrets(static_checks.secret_findings(w.repo))),
    ]


def drift_checks(p: dict, required: bool) -> list[Check]:
    def ref(keys):
        return lambda w: judges.reference(w.drift_obs(), w.drift_expected(), keys)
    return [
        ("monitor.py imports and defines psi and drift_report", p["imports"], required,
         lambda w: judges.imports(w.drift_obs())),
        ("psi matches the reference on shifted data", p["psi"], required, ref(DRIFT_PSI_KEYS)),
        ("psi stays finite when bins are empty", p["empty"], False, ref(DRIFT_EMPTY_KEYS)),
        ("psi handles ties and values on bin edges", p["ties"], False, ref(DRIFT_TIE_KEYS)),
        ("drift_report covers every shared numeric column except target", p["columns"], required,
         ref(["report_columns"])),
        ("drift_report psi values and drift flags match the reference", p["report"], False,
         ref(["report", "report_threshold_0_5"])),
    ]


def ci_checks(p: dict, required: bool) -> list[Check]:
    facts = lambda w: w.once("workflows", lambda: static_checks.workflow_facts(w.repo))  # noqa: E731
    return [
        ("a workflow file is valid YAML", p["valid"], required, lambda w: judges.workflow_valid(facts(w))),
        ("the workflow runs on push or pull_request", p["trigger"], required,
         lambda w: judges.workflow_triggers(facts(w))),
        ("the workflow checks out the repository", p["checkout"], False,
         lambda w: judges.workflow_checkout(facts(w))),
        ("a workflow step runs pytest", p["pytest"], required, lambda w: judges.workflow_pytest(facts(w))),
        ("python -m pytest -q passes", p["pass"], True,
         lambda w: judges.tests_pass(w.pytest()["stage"].exit_code)),
        ("at least 3 tests are collected", p["count"], False,
         lambda w: judges.tests_collected(w.pytest()["collected"])),
        ("coverage of Python files outside tests/ >= 60%", p["coverage"], required,
         lambda w: judges.coverage(w.pytest()["coverage"])),
    ]


def train_checks() -> list[Check]:
    return [
        ("train.py exits 0 within 300 s", 3, False,
         lambda w: stage_ok(w.train_runs()[0], "python train.py")),
        ("model.pkl and metrics.json exist and load", 3, False,
         lambda w: judges.train_files(w.train_runs()[1])),
        ("holdout accuracy of model.pkl >= 0.90", 6, True,
         lambda w: judges.model_accuracy(w.train_runs()[1], w.labels())),
        ("reported accuracy is within 0.05 of holdout accuracy", 3, False,
         lambda w: judges.honest_metrics(w.train_runs()[1], w.labels())),
        ("a second run of train.py gives the same predictions on >= 99% of rows", 3, False,
         lambda w: judges.reproducible(w.train_runs()[1], w.train_runs()[3])),
    ]


CHECKS: dict[str, list[Check]] = {
    "serve-model": [
        *serve_checks({"health": 20, "predict": 15, "accuracy": 20, "malformed": 20}),
        latency_check(10),
        dockerfile_check(15, True),
    ],
    "ci-workflow": ci_checks({"valid": 10, "trigger": 15, "checkout": 5, "pytest": 15, "pass": 20,
                              "count": 10, "coverage": 25}, required=True),
    "drift-monitor": drift_checks({"imports": 10, "psi": 30, "empty": 15, "ties": 15, "columns": 15,
                                   "report": 15}, required=True),
    "audit-trail": [
        *serve_checks({"health": 10, "predict": 10, "accuracy": 10, "malformed": 10,
                       "accuracy_required": False, "malformed_required": False}),
        *audit_checks({"lines": 10, "fields": 10, "sha": 15, "email": 15, "health": 5, "secrets": 5},
                      required=True),
    ],
    "capstone": [
        *ci_checks({"valid": 1, "trigger": 2, "checkout": 1, "pytest": 2, "pass": 5, "count": 2,
                    "coverage": 4}, required=False),
        *train_checks(),
        *serve_checks({"health": 5, "predict": 5, "accuracy": 3, "malformed": 4,
                       "accuracy_required": False, "malformed_required": False}),
        latency_check(2),
        dockerfile_check(3, False),
        *audit_checks({"lines": 4, "fields": 4, "sha": 4, "email": 5, "health": 2, "secrets": 1},
                      required=False),
        *drift_checks({"imports": 3, "psi": 8, "empty": 3, "ties": 3, "columns": 3, "report": 3},
                      required=False),
    ],
}


# --- grading one repository ---------------------------------------------------------

@dataclass
class Result:
    repo: str
    verdict: str
    score: float
    max_score: float
    tests: list[tuple[str, bool, bool, float, str]]  # name, passed, required, points, feedback

    @property
    def failed(self) -> list[str]:
        return [name for name, ok, *_ in self.tests if not ok]


def prepare(repo: Path, dest: Path, data: Path) -> Path:
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    target = dest / "data" / "train.csv"
    target.parent.mkdir(exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copy(data / "train.csv", target)
    target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return dest


def grade(lab: str, repo: Path, tmp: Path, data: Path) -> Result:
    name = repo.name
    root = Path(tempfile.mkdtemp(prefix=f"{lab}-{name}-", dir=tmp))
    work = Workspace(lab, prepare(repo, root / "repo", data), root / "out", data)
    work.out.mkdir()
    if lab == "capstone":
        work.train_runs()  # the grader's stage order: train, train again, then tests, serve, ...
    tests = []
    for check_name, points, required, judge in CHECKS[lab]:
        try:
            ok, feedback = judge(work)
        except Exception as exc:  # a harness bug must show, not pass
            ok, feedback = False, f"HARNESS ERROR {type(exc).__name__}: {exc}"
        tests.append((check_name, bool(ok), required, points, feedback))
    score = sum(points for _, ok, _, points, _ in tests if ok)
    max_score = sum(points for *_, points, _ in tests)
    passed = all(ok for _, ok, required, *_ in tests if required) and \
        100 * score / max_score >= PASS_MARK[lab]
    return Result(name, "passed" if passed else "failed", score, max_score, tests)


# --- consistency of committed files -------------------------------------------------

def consistency_problems(labs: list[str], tmp: Path) -> list[str]:
    problems = []
    for lab, files in GRADER_FILES.items():
        if lab not in labs:
            continue
        for name in files:
            copy = LABS / lab / "hidden" / "grader" / name
            if not copy.exists() or not filecmp.cmp(copy, GRADER / name, shallow=False):
                problems.append(f"{lab}/hidden/grader/{name} differs from capstone/hidden/grader/{name}")
    drift_ref = LABS / "drift-monitor" / "hidden" / "reference_monitor.py"
    if not filecmp.cmp(drift_ref, HIDDEN / "reference_monitor.py", shallow=False):
        problems.append("capstone/hidden/reference_monitor.py differs from drift-monitor's")
    for lab in labs:
        script = LABS / lab / "hidden" / "make_hidden.py"
        if not script.exists():
            continue
        fresh = tmp / "fresh" / lab / "hidden"
        fresh.mkdir(parents=True)
        shutil.copy(script, fresh / "make_hidden.py")
        stage = run([sys.executable, str(fresh / "make_hidden.py")], cwd=fresh)
        if stage.exit_code != 0:
            problems.append(f"{lab}/hidden/make_hidden.py failed: {stage.output[-300:]}")
            continue
        for path in sorted((fresh / "data").iterdir()):
            committed = LABS / lab / "hidden" / "data" / path.name
            if not committed.exists() or not filecmp.cmp(committed, path, shallow=False):
                problems.append(f"{lab}/hidden/data/{path.name} is stale: rerun hidden/make_hidden.py")
    for lab in labs:
        spec = yaml.safe_load((LABS / lab / "lab.yaml").read_text())
        if spec.get("pass_mark") != PASS_MARK[lab]:
            problems.append(f"{lab}/lab.yaml pass_mark {spec.get('pass_mark')} != {PASS_MARK[lab]}")
        listed = {Path(v["path"]).name: v for v in spec.get("variants", [])}
        on_disk = {p.name for p in (LABS / lab / "hidden" / "variants").iterdir() if p.is_dir()}
        if set(listed) != on_disk or set(listed) != set(INTENDED_FAILING[lab]):
            problems.append(f"{lab}: variants in lab.yaml {sorted(listed)}, on disk {sorted(on_disk)}, "
                            f"in this script {sorted(INTENDED_FAILING[lab])}")
        names = {name for name, *_ in CHECKS[lab]}
        for variant, failing in INTENDED_FAILING[lab].items():
            for name in failing:
                if name not in names:
                    problems.append(f"{lab}/{variant}: unknown check {name!r}")
        grading_md = LABS / lab / "hidden" / "GRADING.md"
        grading = grading_md.read_text() if grading_md.exists() else ""
        for name, points, required, _ in CHECKS[lab]:
            row = f"| {name} | {points:g} | {'yes' if required else 'no'} |"
            if row not in grading:
                problems.append(f"{lab}/hidden/GRADING.md lacks the row {row!r}")
    return problems


def make_data(tmp: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_hidden", HIDDEN / "make_hidden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, holdout = module.split()
    data = tmp / "data"
    data.mkdir()
    train.to_csv(data / "train.csv", index=False)
    holdout.to_csv(data / "holdout.csv", index=False)
    assert train.shape == (455, 31) and holdout.shape == (114, 31)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="append", choices=ALL_LABS)
    parser.add_argument("--repo", type=Path, help="grade this one repository (needs one --lab)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check's feedback")
    parser.add_argument("--sync", action="store_true",
                        help="copy capstone/hidden/grader files into the other labs and exit")
    args = parser.parse_args()
    if args.sync:
        for lab, files in GRADER_FILES.items():
            for name in files:
                shutil.copy(GRADER / name, LABS / lab / "hidden" / "grader" / name)
        shutil.copy(LABS / "drift-monitor" / "hidden" / "reference_monitor.py",
                    HIDDEN / "reference_monitor.py")
        print("synced")
        return 0
    labs = args.lab or ALL_LABS
    tmp = Path(tempfile.mkdtemp(prefix="verify-repo-labs-"))
    data = make_data(tmp)
    failures: list[str] = []
    rows: list[tuple[str, str, str, str, str, str]] = []
    try:
        if args.repo:
            if len(labs) != 1:
                parser.error("--repo needs exactly one --lab")
            result = grade(labs[0], args.repo.resolve(), tmp, data)
            print_result(labs[0], result, verbose=True)
            return 0
        failures += consistency_problems(labs, tmp)
        for lab in labs:
            spec = yaml.safe_load((LABS / lab / "lab.yaml").read_text())
            cases = [("reference", LABS / lab / spec["reference"], "passed", None)]
            cases += [(f"variant {Path(v['path']).name}", LABS / lab / v["path"], v["expect"],
                       INTENDED_FAILING[lab].get(Path(v["path"]).name, []))
                      for v in spec.get("variants", [])]
            cases.append(("starter", LABS / lab / spec["starter"], "failed", None))
            for label, path, expect, failing in cases:
                started = time.monotonic()
                result = grade(lab, path, tmp, data)
                problems = []
                if label == "reference" and result.failed:
                    problems.append(f"reference fails {result.failed}")
                if result.verdict != expect:
                    problems.append(f"verdict {result.verdict}, expected {expect}")
                if failing is not None:
                    missed = [name for name in failing if name not in result.failed]
                    if missed:
                        problems.append(f"should fail {missed}")
                failures += [f"{lab} {label}: {p}" for p in problems]
                rows.append((lab, label, f"{result.verdict} (expect {expect})",
                             f"{result.score:g}/{result.max_score:g}",
                             ", ".join(result.failed) or "-", "OK" if not problems else "MISMATCH"))
                if args.verbose or problems:
                    print_result(lab, result, verbose=True, title=f"{label} ({time.monotonic() - started:.0f} s)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n| lab | repo | verdict | score | failed checks | |\n|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if failures:
        print("\nPROBLEMS:\n- " + "\n- ".join(failures))
        return 1
    print("\nall expectations hold")
    return 0


def print_result(lab: str, result: Result, verbose: bool, title: str = "") -> None:
    print(f"\n== {lab} {title or result.repo}: {result.verdict} {result.score:g}/{result.max_score:g}")
    for name, ok, required, points, feedback in result.tests:
        mark = "PASS" if ok else "FAIL"
        print(f"  {mark} [{points:g}{' req' if required else ''}] {name}: {feedback}"[:400])


if __name__ == "__main__":
    sys.exit(main())
