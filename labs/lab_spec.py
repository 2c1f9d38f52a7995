"""The typed spec of a lab (`lab.yaml`), validated on import and read by the grader.

docs/authoring.md documents every field; keep the two in step.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from courses.course_spec import SLUG

STAGE_NAME = r"^[a-z][a-z0-9_]*$"
# `lesson:` of a check: MODULE/LESSON, optionally #SECTION (a heading's anchor in the lesson).
LESSON_REF = r"^[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*(?:#[A-Za-z0-9_-]+)?$"
MAX_HINTS = 5
# The base images a lab's build stage may allow, and the local image that stands for
# each, made offline by `make images` (docker/learner/base.Dockerfile).
BUILD_BASES = {"python:3.11-slim": "shipwright-learner-base:py311"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    time_s: float = Field(300, gt=0, le=3600)
    memory_mb: int = Field(1024, ge=64, le=16384)
    cpus: float = Field(1.0, gt=0, le=8)
    pids: int = Field(128, ge=16, le=4096)
    workspace_mb: int = Field(512, ge=16, le=8192)
    tmp_mb: int = Field(64, ge=8, le=4096)
    output_kb: int = Field(1024, ge=16, le=16384)


class FileSpec(_Strict):
    from_: str = Field(alias="from")
    to: str

    @field_validator("to")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or not value:
            raise ValueError("must be a relative path inside the workspace, without '..'")
        return value


class ServiceSpec(_Strict):
    """Start the learner's server in the stage and send it the lab's requests, then
    run the lab's traffic driver, if any: with `start`, that command in the lab image;
    with `image_from` (a `build` stage), the learner's built image as it declares
    itself (USER, WORKDIR, ENV, CMD)."""

    start: list[str] = []
    image_from: str | None = Field(None, pattern=STAGE_NAME)
    port: int = Field(8000, ge=1024, le=65535)
    ready_path: str = "/health"
    ready_timeout_s: float = Field(20, gt=0, le=300)
    requests: str | None = None  # a JSON file under hidden/: a list of requests and an optional latency spec
    # A Python file under hidden/, also in the stage's assets: its `drive(client)` runs in
    # the probe (the grader's uid) after the requests, while the server is up, and what it
    # returns joins the observations (traffic made up per run, a scrape of /metrics).
    driver: str | None = None
    # The server's environment (with image_from: added to the image's ENV, winning on a clash).
    env: dict[str, str] = {}
    # Files read after the requests (e.g. the audit log). With image_from, under /tmp:
    # the rest of the built image's filesystem is read-only.
    capture: list[str] = []

    @model_validator(mode="after")
    def _something_to_send(self) -> ServiceSpec:
        if self.requests is None and self.driver is None:
            raise ValueError("a service stage needs requests, a driver, or both")
        return self

    @model_validator(mode="after")
    def _one_server(self) -> ServiceSpec:
        if bool(self.start) == bool(self.image_from):
            raise ValueError("a service needs exactly one of start (a command) or image_from (a build stage)")
        if self.image_from:
            outside = [path for path in self.capture if not _file_under_tmp(path)]
            if outside:
                raise ValueError(
                    "with image_from, capture names files under /tmp (the only writable place in the "
                    f"container of the built image): not {', '.join(outside)}"
                )
        return self


def _file_under_tmp(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return len(parts) > 2 and parts[:2] == ("/", "tmp") and ".." not in parts


class BuildSpec(_Strict):
    """Build the learner's Dockerfile (grading/image_build.py, docs/grading.md)."""

    dockerfile: str = "Dockerfile"
    # The base images its FROM may name; each is provided locally (BUILD_BASES).
    bases: list[str] = Field(["python:3.11-slim"], min_length=1)
    context_mb: int = Field(50, ge=1, le=1024)

    @field_validator("bases")
    @classmethod
    def _known_bases(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in BUILD_BASES]
        if unknown:
            raise ValueError(f"no local image stands for {', '.join(unknown)} (known: {', '.join(BUILD_BASES)})")
        return value


class CollectSpec(_Strict):
    """Read repository files for checks parsed on the host (no learner code runs)."""

    paths: list[str] = []
    globs: list[str] = []
    scan: bool = False  # every text file, for the secret scan


class PytestSpec(_Strict):
    """Run the learner's own test suite with coverage."""

    args: list[str] = ["-q"]
    omit: list[str] = ["tests/*", "test_*.py", "*_test.py", "conftest.py", "*/conftest.py"]


class CiSpec(_Strict):
    """Run the learner's GitHub Actions job that tests the code (docs/ci.md)."""

    # The collect stage that read .github/workflows/* before any learner code ran:
    # the job run is planned from those files, never from the workspace later.
    workflows_from: str = Field(pattern=STAGE_NAME)
    python_versions: list[str] = Field(["3.11"], min_length=1)
    # The job to run, by its id (a pipeline's `train` job); by default the first job
    # with a step that runs pytest.
    job: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


class StageSpec(_Strict):
    name: str = Field(pattern=STAGE_NAME)
    run: list[str] = []
    service: ServiceSpec | None = None
    collect: CollectSpec | None = None
    pytest: PytestSpec | None = None
    ci: CiSpec | None = None
    build: BuildSpec | None = None
    needs: list[str] = []
    assets: list[str] = []
    grader: bool = False
    # A notebook lab's learner-facing run: the workspace path where this stage leaves
    # the executed notebook shown on the submission page. Only a stage that is not
    # grader-owned and runs before every grader-owned stage may keep one, so what
    # the learner sees never ran with hidden tests or data mounted.
    executed_notebook: str | None = Field(None, min_length=1, max_length=200)
    time_s: float | None = Field(None, gt=0, le=3600)
    memory_mb: int | None = Field(None, ge=64, le=16384)
    cpus: float | None = Field(None, gt=0, le=8)
    pids: int | None = Field(None, ge=16, le=4096)
    output_kb: int | None = Field(None, ge=16, le=16384)

    @field_validator("assets")
    @classmethod
    def _asset_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if path.startswith("/") or ".." in path.split("/") or not path.strip("/"):
                raise ValueError(f"asset {path!r} must be a relative path under hidden/")
        return value

    @field_validator("executed_notebook")
    @classmethod
    def _executed_notebook_path(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/") or not value.endswith(".ipynb")):
            raise ValueError(f"executed_notebook {value!r} must be a relative .ipynb path in the workspace")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> StageSpec:
        given = [name for name in ("run", "service", "collect", "pytest", "ci", "build") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("a stage needs exactly one of run, service, collect, pytest, ci or build")
        if self.service is not None and self.service.driver is not None and self.service.driver not in self.assets:
            raise ValueError(
                f"service.driver {self.service.driver!r} must also be listed in assets (mounted under /grader)"
            )
        if self.build is not None and (self.grader or self.assets):
            raise ValueError("a build stage takes no assets and is never grader-owned: it runs only the Dockerfile")
        return self

    @property
    def probe(self) -> str | None:
        """The platform probe that runs this stage, if any ("build": the host builds)."""
        for name in ("service", "collect", "pytest", "ci", "build"):
            if getattr(self, name) is not None:
                return name
        return None

    @property
    def grader_owned(self) -> bool:
        # A build's output is the learner's own Dockerfile at work: shown like a stage's.
        return self.grader or (self.probe is not None and self.probe != "build")

    def limits(self, defaults: Limits) -> Limits:
        overrides = {
            key: getattr(self, key)
            for key in ("time_s", "memory_mb", "cpus", "pids", "output_kb")
            if getattr(self, key) is not None
        }
        return defaults.model_copy(update=overrides)


class _CheckBase(_Strict):
    """A check kind declares what its judge needs (grading/judges reads only that):
    the probe its stage must run (`probe`), the stages it reads (`stages_read`), the
    workspace files read back after a stage (`files_read_back`), and whether it
    compares with the reference solution's observations (`uses_reference`)."""

    name: str = Field(min_length=1, max_length=200)
    points: float = Field(ge=0)
    required: bool = False
    hint: str = ""
    # More specific hints for later attempts: a learner's Nth failing attempt shows the
    # first N of them (after `hint`). The importer checks `lesson` against the course.
    hints: list[Annotated[str, Field(min_length=1)]] = Field(default=[], max_length=MAX_HINTS)
    lesson: str | None = Field(None, pattern=LESSON_REF)

    probe: ClassVar[str | None] = None  # "service", "collect" or "pytest"
    uses_reference: ClassVar[bool] = False

    def stages_read(self) -> list[str]:
        # Every kind but `agreement` reads one `stage`; the base class declares no such field.
        return [getattr(self, "stage")]  # noqa: B009

    def probe_stages(self) -> list[str]:
        """The stages that must run this kind's `probe`."""
        return self.stages_read()

    def files_read_back(self) -> dict[str, list[str]]:
        """Workspace files to read right after a stage (a later one could change them), by stage."""
        return {}


class ExitCodeCheck(_CheckBase):
    kind: Literal["exit_code"]
    stage: str


class FilesCheck(_CheckBase):
    kind: Literal["files"]
    stage: str
    paths: list[str] = Field(min_length=1)
    json_: list[str] = Field([], alias="json")
    numbers: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _subsets(self) -> FilesCheck:
        for path in [*self.json_, *self.numbers]:
            if path not in self.paths:
                raise ValueError(f"{path!r} must also be listed in paths")
        for path in self.numbers:
            if path not in self.json_:
                raise ValueError(f"{path!r} has numbers, so it must be listed in json")
        return self

    def files_read_back(self) -> dict[str, list[str]]:
        return {self.stage: list(self.paths)}


class ObservationCheck(_CheckBase):
    kind: Literal["observation"]
    stage: str
    key: str


class AccuracyCheck(_CheckBase):
    kind: Literal["accuracy"]
    stage: str
    key: str
    labels: str
    min: float = Field(ge=0, le=1)


class ReportedMetricCheck(_CheckBase):
    kind: Literal["reported_metric"]
    stage: str
    key: str
    labels: str
    # The learner's claim: a field of a JSON file read back after `stage`, or
    # `reported: STAGE:KEY`, a number a grader stage read from where the learner
    # recorded it (an MLflow run's metric, read before any learner code ran again).
    file: str | None = None
    field: str | None = None
    reported: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*:.+$")
    tolerance: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_claim(self) -> ReportedMetricCheck:
        from_file = self.file is not None and self.field is not None
        if from_file == (self.reported is not None) or (self.file is None) != (self.field is None):
            raise ValueError("a reported_metric check needs either file and field, or reported (STAGE:KEY)")
        return self

    def stages_read(self) -> list[str]:
        return [self.stage] + ([self.reported.split(":", 1)[0]] if self.reported else [])

    def files_read_back(self) -> dict[str, list[str]]:
        return {self.stage: [self.file]} if self.file else {}


class AgreementCheck(_CheckBase):
    kind: Literal["agreement"]
    a: str = Field(pattern=r"^[a-z][a-z0-9_]*:.+$")
    b: str = Field(pattern=r"^[a-z][a-z0-9_]*:.+$")
    min: float = Field(ge=0, le=1)

    def stages_read(self) -> list[str]:
        return [self.a.split(":", 1)[0], self.b.split(":", 1)[0]]


class ReferenceCheck(_CheckBase):
    kind: Literal["reference"]
    uses_reference = True
    stage: str
    keys: list[str] = Field(min_length=1)
    tolerance: float = Field(1e-9, ge=0)


class HttpExpect(_Strict):
    request: str
    status: int | Literal["2xx", "4xx"] = 200
    json_: dict[str, Any] | None = Field(None, alias="json")  # these keys with these values
    predictions: str | None = None  # key of a list with one 0/1 item per row sent under `rows_key`
    rows_key: str = "features"


class HttpReadyCheck(_CheckBase):
    kind: Literal["http_ready"]
    probe = "service"
    stage: str
    json_: dict[str, Any] | None = Field(None, alias="json")


class HttpCheck(_CheckBase):
    kind: Literal["http"]
    probe = "service"
    stage: str
    expect: list[HttpExpect] = Field(min_length=1)


class HttpAccuracyCheck(_CheckBase):
    kind: Literal["http_accuracy"]
    probe = "service"
    stage: str
    request: str
    key: str = "predictions"
    labels: str
    min: float = Field(ge=0, le=1)


class LatencyCheck(_CheckBase):
    kind: Literal["latency"]
    probe = "service"
    stage: str
    percentile: float = Field(95, gt=0, le=100)
    max_ms: float = Field(gt=0)


class AuditLogCheck(_CheckBase):
    kind: Literal["audit_log"]
    probe = "service"
    stage: str
    file: str
    rule: Literal["one_line_per_request", "fields", "sha256", "forbidden", "not_logged"]
    logged: list[str] = []  # requests that must each add one line
    not_logged: list[str] = []  # requests that must add none (rule not_logged)
    fields: list[str] = ["ts", "request_id", "input_sha256", "predictions"]
    forbidden_key: str = "email"  # neither the key nor any value sent under it may appear
    line_key: str = "predictions"  # lines holding this key are the logged requests' lines


class DockerfileCheck(_CheckBase):
    kind: Literal["dockerfile"]
    probe = "collect"
    stage: str
    path: str = "Dockerfile"
    expose: list[int] = []


class WorkflowCheck(_CheckBase):
    kind: Literal["workflow"]
    probe = "collect"
    stage: str
    rule: Literal["valid", "triggers", "checkout", "pytest", "needs"]
    triggers: list[str] = ["push", "pull_request"]
    # rule needs: a workflow run on `triggers` has the job `job`, which lists every
    # job of `needs` in its `needs:`, and each of those jobs exists.
    job: str | None = None
    needs: list[str] = []

    @model_validator(mode="after")
    def _needs_rule_names_jobs(self) -> WorkflowCheck:
        if (self.rule == "needs") != (self.job is not None and bool(self.needs)):
            raise ValueError("`job` and `needs` go together, with rule: needs (and only there)")
        return self


class RequirementsCheck(_CheckBase):
    kind: Literal["requirements"]
    probe = "collect"
    stage: str
    path: str = "requirements.txt"


class SecretsCheck(_CheckBase):
    kind: Literal["secrets"]
    probe = "collect"
    stage: str


class PytestCheck(_CheckBase):
    kind: Literal["pytest"]
    probe = "pytest"
    stage: str
    rule: Literal["passes", "collected", "coverage"]
    min_tests: int = 1
    min_coverage: float = Field(0, ge=0, le=100)


class CiCheck(_CheckBase):
    """The learner's CI job, run in the sandbox, passes on the submitted commit."""

    kind: Literal["ci"]
    probe = "ci"
    stage: str
    rule: Literal["passes"] = "passes"


class ImageCheck(_CheckBase):
    """The learner's built image (a `build` stage), and, for `non_root` and
    `healthcheck`, the container a `service` stage with `image_from` ran from it."""

    kind: Literal["image"]
    probe = "build"
    stage: str
    rule: Literal["builds", "non_root", "size", "secrets", "healthcheck"]
    running: str | None = Field(None, pattern=STAGE_NAME)  # the service stage that ran it
    max_mb: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _fields(self) -> ImageCheck:
        if self.rule == "size" and self.max_mb is None:
            raise ValueError("rule size needs max_mb")
        if self.rule in ("non_root", "healthcheck") and self.running is None:
            raise ValueError(f"rule {self.rule} needs running: the service stage that ran the image")
        return self

    def stages_read(self) -> list[str]:
        return [self.stage, *([self.running] if self.running else [])]

    def probe_stages(self) -> list[str]:
        return [self.stage]


CheckSpec = Annotated[
    ExitCodeCheck
    | FilesCheck
    | ObservationCheck
    | AccuracyCheck
    | ReportedMetricCheck
    | AgreementCheck
    | ReferenceCheck
    | HttpReadyCheck
    | HttpCheck
    | HttpAccuracyCheck
    | LatencyCheck
    | AuditLogCheck
    | DockerfileCheck
    | WorkflowCheck
    | RequirementsCheck
    | SecretsCheck
    | PytestCheck
    | CiCheck
    | ImageCheck,
    Field(discriminator="kind"),
]


class VariantSpec(_Strict):
    # A folder variant is an overlay on the reference: only the files that differ,
    # plus `remove:` for reference paths it lacks (labs/variants.py builds it whole).
    path: str
    expect: Literal["passed", "failed"]
    failing: list[str] = []
    remove: list[str] = []


class LabSpec(_Strict):
    slug: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    module: str = Field(pattern=SLUG)
    kind: Literal["repo", "notebook"]
    summary: str = ""
    estimated_hours: float = Field(1, gt=0)
    instructions: str
    starter: str | None = None
    pass_mark: float = Field(ge=0, le=100)
    image: str | None = None
    # runsc: this lab's stages run under gVisor even where the site's default
    # (SHIPWRIGHT_SANDBOX_RUNTIME) is runc; a lab cannot ask for less than the site.
    runtime: Literal["runsc"] | None = None
    limits: Limits = Limits()
    files: list[FileSpec] = []
    stages: list[StageSpec] = []
    checks: list[CheckSpec] = []
    reference: str | None = None
    variants: list[VariantSpec] = []
    # Files of the course's shared/ folder (e.g. grader/probe_monitor.py) that the
    # importer copies into this lab's hidden archive at the same path.
    shared: list[str] = []

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _cross_references(self) -> LabSpec:
        stage_names = [stage.name for stage in self.stages]
        if len(set(stage_names)) != len(stage_names):
            raise ValueError("stage names must be unique")
        seen: set[str] = set()
        for stage in self.stages:
            for need in stage.needs:
                if need not in seen:
                    raise ValueError(f"stage {stage.name!r} needs {need!r}, which is not an earlier stage")
            if stage.service is not None and stage.service.image_from is not None:
                source = stage.service.image_from
                if source not in seen or self.stage(source).build is None:
                    raise ValueError(
                        f"stage {stage.name!r} runs the image of {source!r}, which is not an earlier build stage"
                    )
                if source not in stage.needs:
                    raise ValueError(f"stage {stage.name!r} runs the image of {source!r}, so it must list it in needs")
            if stage.ci is not None:
                source = stage.ci.workflows_from
                if source not in seen or self.stage(source).collect is None:
                    raise ValueError(
                        f"stage {stage.name!r} reads workflows from {source!r}, which is not an earlier collect stage"
                    )
            seen.add(stage.name)
        self._check_executed_notebook()
        check_names = [check.name for check in self.checks]
        if len(set(check_names)) != len(check_names):
            raise ValueError("check names must be unique")
        for check in self.checks:
            for read in check.stages_read():
                if read not in stage_names:
                    raise ValueError(f"check {check.name!r} names unknown stage {read!r}")
        probes = {stage.name: stage.probe for stage in self.stages}
        for check in self.checks:
            if check.probe and any(probes.get(read) != check.probe for read in check.probe_stages()):
                raise ValueError(f"check {check.name!r} ({check.kind}) needs a stage with `{check.probe}:`")
        for variant in self.variants:
            for name in variant.failing:
                if name not in check_names:
                    raise ValueError(f"variant {variant.path!r} names unknown check {name!r}")
        if self.checks and sum(check.points for check in self.checks) <= 0:
            raise ValueError("checks must award some points")
        return self

    def _check_executed_notebook(self) -> None:
        keepers = [stage for stage in self.stages if stage.executed_notebook]
        if not keepers:
            return
        if self.kind != "notebook":
            raise ValueError("only a notebook lab's stage may keep an executed_notebook")
        if len(keepers) > 1:
            raise ValueError("at most one stage may keep an executed_notebook")
        stage = keepers[0]
        if stage.grader_owned:
            raise ValueError(
                f"stage {stage.name!r} keeps the executed notebook shown to learners, so it must not be "
                "grader-owned: hidden tests and data must never be mounted while it runs"
            )
        for earlier in self.stages[: self.stages.index(stage)]:
            if earlier.grader_owned:
                raise ValueError(
                    f"stage {stage.name!r} keeps the executed notebook, so it must run before grader-owned "
                    f"stage {earlier.name!r} (learner code there may leave hidden data in the workspace)"
                )

    def check(self, name: str) -> CheckSpec | None:
        return next((check for check in self.checks if check.name == name), None)

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


def is_slug(value: str) -> bool:
    return re.fullmatch(SLUG, value) is not None
