"""Running the learner's CI: expressions, `if:`, env, matrix and the plan (host side),
and the judge's reading of the steps. The runs through the real sandbox are the
ci-workflow lab's lab_check cases (reference, ci-matrix, ci-test-fails,
ci-unsupported-action, ci-continue-on-error)."""

from __future__ import annotations

import pytest

from grading import ci_plan
from grading.judges.base import Evidence, Fail, StageOutcome
from grading.judges.ci import judge_ci
from grading.probes import ci_expressions as expr
from labs.lab_spec import CiCheck, Limits, StageSpec


def ctx(status="success", **values):
    return expr.Context(values, status=status)


def test_expressions_follow_github_rules():
    context = ctx(matrix={"python-version": "3.11"}, env={"MODE": "fast"}, steps={"t": {"outcome": "failure"}})
    assert expr.substitute("py${{ matrix.python-version }}-${{ env.MODE }}", context) == "py3.11-fast"
    assert expr.evaluate("matrix['python-version'] == '3.11' && env.mode", context) == "fast"
    assert expr.evaluate("'ABC' == 'abc'", context) is True  # strings compare ignoring case
    assert expr.evaluate("'1' == 1", context) is True
    assert expr.evaluate("contains(fromJSON('[\"a\",\"b\"]'), 'B')", context) is True
    assert expr.evaluate("format('{0}-{1}', 'x', 2)", context) == "x-2"
    assert expr.evaluate("steps.t.outcome", context) == "failure"
    assert expr.evaluate("env.MISSING", context) is None


@pytest.mark.parametrize(
    "text, named",
    [("hashFiles('x')", "hashFiles()"), ("nope.x", "`nope`"), ("a.*.b", "object filters"), ("1 +", "syntax")],
)
def test_unsupported_expressions_are_named(text, named):
    with pytest.raises(expr.Unsupported) as exc:
        expr.evaluate(text, ctx(a={}))
    assert named in str(exc.value)


def test_if_conditions_and_job_status():
    assert expr.condition(None, ctx()) is True
    assert expr.condition(None, ctx("failure")) is False
    assert expr.condition("failure()", ctx("failure")) is True
    assert expr.condition("${{ always() }}", ctx("failure")) is True
    assert expr.condition("cancelled()", ctx("failure")) is False
    # Without a status function GitHub adds success() &&.
    assert expr.condition("github.event_name == 'push'", ctx("failure", github={"event_name": "push"})) is False
    assert expr.condition("github.event_name == 'push'", ctx(github={"event_name": "push"})) is True


WORKFLOW = """
name: ci
on: [push]
env:
  LEVEL: "1"
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: ruff check .
  test:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
        python-version: ["3.10", "3.11"]
        exclude:
          - os: windows-latest
            python-version: "3.10"
    env:
      TAG: py${{ matrix.python-version }}
    defaults:
      run:
        working-directory: src
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - run: python -m pytest -q
        shell: bash
      - uses: codecov/codecov-action@v4
"""


def test_plan_picks_the_test_job_and_the_matrix_entry_the_image_has():
    plan = ci_plan.plan({".github/workflows/ci.yml": WORKFLOW}, python_versions=["3.11"])
    assert plan["job"] == "test"
    assert plan["matrix"] == {"os": "ubuntu-latest", "python-version": "3.11"}
    reasons = {str(s["matrix"]): s["reason"] for s in plan["skipped_matrix"]}
    assert "the lab image has Python 3.11 only" in reasons[str({"os": "ubuntu-latest", "python-version": "3.10"})]
    assert "Linux (ubuntu) jobs only" in reasons[str({"os": "windows-latest", "python-version": "3.11"})]
    assert plan["env"] == {"LEVEL": "1", "TAG": "py3.11"}
    test_step = plan["steps"][2]
    assert test_step["runs_pytest"] and test_step["working_directory"] == "src"
    assert test_step["shell"][:2] == ["bash", "--noprofile"]
    assert "codecov/codecov-action@v4" in plan["steps"][3]["unsupported"]


def test_plan_reports_job_level_constructs_by_name():
    text = WORKFLOW.replace("    defaults:", "    services:\n      db:\n        image: postgres\n    defaults:")
    plan = ci_plan.plan({".github/workflows/ci.yml": text}, python_versions=["3.11"])
    assert any("services" in problem for problem in plan["unsupported"])
    with pytest.raises(ci_plan.PlanError, match="push or pull_request"):
        ci_plan.plan({".github/workflows/ci.yml": "on: schedule\njobs: {}\n"}, python_versions=["3.11"])
    only_old = WORKFLOW.replace('["3.10", "3.11"]', '["3.9"]')
    plan = ci_plan.plan({".github/workflows/ci.yml": only_old}, python_versions=["3.11"])
    assert any("no matrix entry" in problem for problem in plan["unsupported"])


@pytest.mark.parametrize(
    "spec, ok",
    [("3.11", True), ("3.x", True), ("3.11.4", True), (">=3.10", True), ("3.12", False), ("pypy3.10", False)],
)
def test_python_versions(spec, ok):
    assert ci_plan.python_supported(spec, ["3.11"]) is ok


def _evidence(steps, job_status="success"):
    stage = StageSpec(name="ci", run=["x"])
    outcome = StageOutcome(spec=stage, limits=Limits(), status="ran", exit_code=0)
    outcome.observations = {
        "plan": {"workflow": ".github/workflows/ci.yml", "job": "test", "matrix": {}, "skipped_matrix": []},
        "steps": steps,
        "job_status": job_status,
    }
    return Evidence(outcomes={"ci": outcome})


CHECK = CiCheck(name="ci passes", kind="ci", stage="ci", points=1)


def step(index, **fields):
    return {
        "index": index,
        "name": f"s{index}",
        "status": "success",
        "exit_code": 0,
        "outcome": "success",
        "conclusion": "success",
        "runs_pytest": False,
        "output": "",
        **fields,
    }


def test_judge_names_the_failing_step_and_its_output():
    steps = [
        step(1),
        step(
            2,
            status="failure",
            exit_code=1,
            outcome="failure",
            conclusion="failure",
            runs_pytest=True,
            output="E assert 0.97 >= 0.999",
        ),
    ]
    with pytest.raises(Fail) as exc:
        judge_ci(CHECK, _evidence(steps, "failure"))
    assert "step 2 “s2” exited with code 1" in str(exc.value) and "0.999" in str(exc.value)


def test_continue_on_error_does_not_hide_failing_tests():
    steps = [
        step(
            1,
            status="failure",
            exit_code=1,
            outcome="failure",
            conclusion="success",
            continue_on_error=True,
            runs_pytest=True,
        )
    ]
    with pytest.raises(Fail, match="continue-on-error only hides"):
        judge_ci(CHECK, _evidence(steps))
    assert "passes on this commit" in judge_ci(CHECK, _evidence([step(1, runs_pytest=True)]))


def test_unsupported_step_fails_by_name():
    steps = [
        step(1, runs_pytest=True),
        step(
            2,
            status="unsupported",
            exit_code=None,
            outcome="failure",
            conclusion="failure",
            note="the grader cannot run uses: x/y@v1",
        ),
    ]
    with pytest.raises(Fail, match="uses: x/y@v1"):
        judge_ci(CHECK, _evidence(steps, "failure"))


# --- through the real sandbox ------------------------------------------------------

ONE_RUNNER = """
name: ci
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Start a server and leave things for later steps
        run: |
          (python -m http.server 8765 --bind 127.0.0.1 >/tmp/server.log 2>&1 &)
          echo "FROM_ENV_FILE=carried" >> "$GITHUB_ENV"
          echo hello > /tmp/shared.txt
      - name: Tamper with the grader
        continue-on-error: true
        run: |
          echo forged > /grader-out/observations.json || true
          rm -f "$GITHUB_ENV" || true
          kill -9 1 || true
          exit 3
      - name: Tests
        run: |
          test "$FROM_ENV_FILE" = carried
          test "$(cat /tmp/shared.txt)" = hello
          for i in $(seq 50); do python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/')" && break; sleep 0.2; done
          python -m pytest -q
      - name: Only after a failure
        if: failure()
        run: exit 9
"""


@pytest.mark.docker
def test_steps_share_one_runner_and_cannot_touch_the_grader(sample_course, tmp_path):
    import shutil

    from tests.conftest import CONTENT
    from tests.grading.test_grade_command import by_name, grade

    repo = tmp_path / "repo"
    shutil.copytree(CONTENT / "mlops-foundations/labs/ci-workflow/hidden/reference", repo)
    (repo / ".github/workflows/ci.yml").write_text(ONE_RUNNER)
    code, document, err = grade("mlops-foundations/ci-workflow", str(repo), "--json")
    assert document is not None, err
    check = by_name(document)["your CI passes on this commit"]
    assert check["status"] == "passed", check["output"]
    stages = {stage["name"]: stage for stage in document["stages"]}
    assert stages["ci_step3"]["exit_code"] == 3  # failed, and continue-on-error let the job go on
    assert stages["ci_step4"]["exit_code"] == 0 and "passed" in stages["ci_step4"]["output"]
    assert stages["ci_step5"]["exit_code"] is None and "is false" in stages["ci_step5"]["output"]
    assert "already holds the commit" in stages["ci_step1"]["output"]


@pytest.mark.docker
def test_a_step_that_fails_here_is_named_with_its_output(sample_course):
    from tests.conftest import CONTENT
    from tests.grading.test_grade_command import by_name, grade

    variant = CONTENT / "mlops-foundations/labs/ci-workflow/hidden/variants/ci-unsupported-action"
    reference = CONTENT / "mlops-foundations/labs/ci-workflow/hidden/reference"
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        repo = shutil.copytree(reference, f"{folder}/repo")
        shutil.copytree(variant, repo, dirs_exist_ok=True)
        code, document, err = grade("mlops-foundations/ci-workflow", str(repo), "--json")
    assert document is not None, err
    output = by_name(document)["your CI passes on this commit"]["output"]
    assert "codecov/codecov-action@v4" in output and "step 5" in output


def test_a_ci_stage_must_read_workflows_from_an_earlier_collect_stage():
    from pydantic import ValidationError

    from labs.lab_spec import LabSpec

    base = {"slug": "x", "title": "x", "module": "m", "kind": "repo", "instructions": "i.md", "pass_mark": 50}
    with pytest.raises(ValidationError, match="not an earlier collect stage"):
        LabSpec.model_validate(
            {**base, "stages": [{"name": "run", "run": ["true"]}, {"name": "ci", "ci": {"workflows_from": "run"}}]}
        )
    spec = LabSpec.model_validate(
        {
            **base,
            "stages": [
                {"name": "repo", "collect": {"globs": [".github/workflows/*.yml"]}},
                {"name": "ci", "ci": {"workflows_from": "repo"}},
            ],
            "checks": [{"name": "ci", "kind": "ci", "stage": "ci", "points": 1}],
        }
    )
    assert spec.stage("ci").probe == "ci"


HOSTILE_SHAPES = [
    # An alias bomb under `with:`, `env:` and a matrix axis: reported, never expanded.
    'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    "on: push\njobs:\n  t:\n    strategy:\n      matrix:\n        v: [*c]\n    steps:\n"
    "      - uses: actions/setup-python@v5\n        with: {python-version: *c}\n"
    "      - run: pytest\n        env: {X: *c}\n        shell: {a: 1}\n        if: [1]\n",
    "on: push\njobs:\n  t:\n    defaults: {run: {shell: [1], working-directory: {a: 1}}}\n"
    "    runs-on: {a: 1}\n    name: [1]\n    steps:\n      - run: pytest\n        continue-on-error: {a: 1}\n",
    "on: push\njobs:\n  t:\n    steps:\n      - run: pytest\n        env: {D: 2024-01-01}\n      - uses: actions/cache@v4\n        with: 3\n",
]


@pytest.mark.parametrize("text", HOSTILE_SHAPES)
def test_odd_workflow_shapes_are_reported_not_crashed_on(text):
    import json

    plan = ci_plan.plan({".github/workflows/ci.yml": text}, python_versions=["3.11"])
    assert len(json.dumps(plan, default=str)) < 20_000
    assert plan["unsupported"] or any(step["unsupported"] for step in plan["steps"])
    assert "2024-01-01" in json.dumps(plan) or "D:" not in text


PIPELINE = """
on: [push]
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - run: python train.py
  test:
    runs-on: ubuntu-latest
    steps:
      - run: python -m pytest -q
  deploy:
    needs: train
    runs-on: ubuntu-latest
    steps:
      - run: kubectl apply -f k8s/
"""


def test_a_lab_can_name_the_job_to_run_and_it_need_not_run_pytest():
    plan = ci_plan.plan({".github/workflows/pipeline.yml": PIPELINE}, python_versions=["3.11"], job_id="train")
    assert (plan["job"], plan["named"], [s["run"] for s in plan["steps"]]) == ("train", True, ["python train.py"])
    assert ci_plan.plan({".github/workflows/pipeline.yml": PIPELINE}, python_versions=["3.11"])["job"] == "test"


def test_a_named_job_the_workflows_lack_is_a_plan_error_naming_it():
    with pytest.raises(ci_plan.PlanError) as exc:
        ci_plan.plan({".github/workflows/pipeline.yml": PIPELINE}, python_versions=["3.11"], job_id="build")
    assert str(exc.value) == ci_plan.NO_SUCH_JOB.format(job="build", workflows=".github/workflows/pipeline.yml")
