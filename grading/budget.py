"""One time budget for a grading run, derived in one place.

    stage limits  <  Celery soft limit  <  Celery hard limit  <<  broker visibility timeout

Stage limits come from the lab spec and are enforced from the host by the sandbox.
The soft limit adds per-stage overhead (container start, read-back) and room for a
cold reference run; the hard limit kills a stuck task shortly after. The Redis
visibility timeout must exceed every hard limit, or a task still running would be
delivered a second time (the claim would make that harmless, but wasteful).
A live worker heartbeats; the reaper requeues a running submission whose heartbeat
stopped (its worker died) well before any of these limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from labs.spec import LabSpec

STAGE_OVERHEAD_S = 20.0
TASK_SLACK_S = 60.0
HARD_AFTER_SOFT_S = 30.0
VISIBILITY_TIMEOUT_S = 6 * 3600
HEARTBEAT_INTERVAL_S = 5.0
STALE_HEARTBEAT_S = 45.0
MAX_HARD_LIMIT_S = VISIBILITY_TIMEOUT_S - 3600


@dataclass(frozen=True)
class Budget:
    stages_s: float
    soft_s: float
    hard_s: float


def grading_budget(spec: LabSpec) -> Budget:
    stages = sum(stage.limits(spec.limits).time_s + STAGE_OVERHEAD_S for stage in spec.stages)
    # A cold cache may need the reference solution's run first: up to twice the stages.
    soft = 2 * stages + TASK_SLACK_S
    hard = min(soft + HARD_AFTER_SOFT_S, MAX_HARD_LIMIT_S)
    return Budget(stages_s=stages, soft_s=min(soft, hard - HARD_AFTER_SOFT_S), hard_s=hard)
