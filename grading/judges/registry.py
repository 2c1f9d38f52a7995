"""The one table from a check kind (its `kind:` in lab.yaml) to the judge of it.

A judge is a plain function (check spec, Evidence) -> feedback for a passing check;
it raises Fail (the learner's failure, in words) or Skip (a stage it reads did not
run). Any other exception is a platform fault, caught by `judge_checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ci, image, observations, pipeline, repository, service
from .base import Evidence

Judge = Callable[[Any, Evidence], str]

JUDGES: dict[str, Judge] = {
    # pipeline and files
    "exit_code": pipeline.judge_exit_code,
    "files": pipeline.judge_files,
    "reported_metric": pipeline.judge_reported_metric,
    # observations of grader-owned stages
    "observation": observations.judge_observation,
    "accuracy": observations.judge_accuracy,
    "agreement": observations.judge_agreement,
    "reference": observations.judge_reference,
    # service probes
    "http_ready": service.judge_http_ready,
    "http": service.judge_http,
    "http_accuracy": service.judge_http_accuracy,
    "latency": service.judge_latency,
    "audit_log": service.judge_audit_log,
    # repository and static analysis
    "dockerfile": repository.judge_dockerfile,
    "workflow": repository.judge_workflow,
    "requirements": repository.judge_requirements,
    "secrets": repository.judge_secrets,
    "pytest": repository.judge_pytest,
    # the learner's CI job, run in the sandbox
    "ci": ci.judge_ci,
    # the learner's built image and the container run from it
    "image": image.judge_image,
}


def judge_for(kind: str) -> Judge:
    judge = JUDGES.get(kind)
    if judge is None:
        raise RuntimeError(f"unknown check kind {kind}")
    return judge
