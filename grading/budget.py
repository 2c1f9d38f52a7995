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

from labs.lab_spec import LabSpec

STAGE_OVERHEAD_S = 20.0
TASK_SLACK_S = 60.0
HARD_AFTER_SOFT_S = 30.0
VISIBILITY_TIMEOUT_S = 6 * 3600
HEARTBEAT_INTERVAL_S = 5.0
STALE_HEARTBEAT_S = 45.0
# The page says "worker lost" once a heartbeat is this old (three missed beats).
LOST_HEARTBEAT_S = 3 * HEARTBEAT_INTERVAL_S
# A worker records itself in the database every WORKER_BEAT_INTERVAL_S (grading/
# worker_registry.py); the queue estimate counts those seen within WORKER_LIVE_S
# (three missed beats), so a killed worker stops counting within half a minute.
WORKER_BEAT_INTERVAL_S = 10.0
WORKER_LIVE_S = 3 * WORKER_BEAT_INTERVAL_S
# The reaper deletes rows of workers silent this long (a killed worker leaves its row).
WORKER_FORGET_S = 24 * 3600.0
# Grace before the reaper removes sandbox objects no live claim owns: a run being set
# up (claimed, labels written, not yet visible as the current attempt) is never hit.
ORPHAN_GRACE_S = 120.0
# A queued submission whose message should have run this long ago is presumed lost
# (a broker restarted without persistence) and sent again. Duplicates are harmless:
# the claim is conditional.
LOST_MESSAGE_S = 60.0
# Platform failures (engine outages) retry with this backoff; the default number of
# retries covers 10 + 20 + 40 + 80 + 160 + 300 + 300 + 300 s, about 20 minutes, so a
# routine engine restart costs the learner nothing. The first step is the setting
# SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S (default 10 s) so a drill can stage an outage
# in seconds; the cap stays.
PLATFORM_BACKOFF_MAX_S = 300.0


def platform_backoff_s(failures: int, *, first_s: float | None = None) -> float:
    """Countdown before the retry that follows the `failures`-th platform failure:
    `first_s` (default: the setting) doubling, capped at PLATFORM_BACKOFF_MAX_S."""
    if first_s is None:
        from django.conf import settings  # read at call time: settings.py imports this module

        first_s = settings.SHIPWRIGHT_PLATFORM_BACKOFF_FIRST_S
    return min(PLATFORM_BACKOFF_MAX_S, first_s * 2 ** max(0, failures - 1))


MAX_HARD_LIMIT_S = VISIBILITY_TIMEOUT_S - 3600
# The learner build cache (layers whose key is their content: base, instructions, files)
# is pruned once no build has made a layer for this long (grading/sandbox.py).
BUILD_CACHE_MAX_AGE_S = 24 * 3600


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
