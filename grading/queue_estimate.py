"""How long until a queued submission's verdict: the submission page shows it, and
bench/grading_latency.py compares it with the wait it measures.

The workers grade `graders` submissions at once (live workers' slots, from the
worker registry). Submissions running now free their slot after the rest of their
lab's typical run time; each learner's submission queued before this one then takes
the earliest free slot for its lab's typical run time; this one goes next. Typical =
the median of the lab's recent runs (claim to verdict), plus the pick-up delay
(broker, worker, claim): the shortest created-to-claimed time of recent submissions,
which is what one that found a worker free waited.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import GradingWorker, Submission


@dataclass(frozen=True)
class QueueEstimate:
    position: int  # 1: nobody waits before this submission
    graders: int  # submissions graded at once by the live workers
    typical_s: float | None  # a recent run of this lab
    wait_s: float | None  # from now until the verdict; None without a typical run or a grader


def verdict_wait_s(*, running_left_s: list[float], queued_ahead_s: list[float], own_s: float, graders: int) -> float:
    """Seconds until a submission's verdict, simulating `graders` slots.

    `running_left_s`: what is left of each run in progress (each holds a slot, so at
    least that many slots exist); `queued_ahead_s`: the expected run time of each
    submission queued before it, in queue order; `own_s`: its own run time."""
    slots = max(graders, len(running_left_s), 1)
    free_at = [max(0.0, left) for left in running_left_s] + [0.0] * (slots - len(running_left_s))
    heapq.heapify(free_at)
    for seconds in queued_ahead_s:
        heapq.heappush(free_at, heapq.heappop(free_at) + seconds)
    return heapq.heappop(free_at) + own_s


def overlapping(
    runs: list[tuple[Any, Any, Any]], others: list[tuple[Any, Any, Any]]
) -> tuple[list[float], list[float]]:
    """Split `runs` (id, started, finished) into the run times of those that ran
    alone and of those that shared the machine with one of `others` (id, started,
    finished or None while running)."""
    alone: list[float] = []
    shared: list[float] = []
    for pk, started, finished in runs:
        busy = any(
            other != pk and other_started < finished and (other_finished is None or other_finished > started)
            for other, other_started, other_finished in others
        )
        (shared if busy else alone).append((finished - started).total_seconds())
    return alone, shared


def _typical_s(lab_id, cache: dict, *, busy: bool) -> float | None:
    """The lab's typical run: the median of its recent runs that ran alone, or, when
    several runs will share the machine (`busy`), of those that shared it: sandboxes
    on the same cores slow each other down, which an estimate from runs alone missed
    by half under a burst (bench/grading_latency.py). Falls back to all recent runs."""
    if lab_id not in cache:
        runs: list[tuple[Any, Any, Any]] = list(
            Submission.objects.filter(lab=lab_id, started_at__isnull=False, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("pk", "started_at", "finished_at")[:20]
        )
        others: list[tuple[Any, Any, Any]] = []
        if runs:
            others = list(
                Submission.objects.filter(
                    started_at__isnull=False,
                    started_at__lt=max(f for _, _, f in runs),
                )
                .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=min(s for _, s, _ in runs)))
                .order_by("-started_at")
                .values_list("pk", "started_at", "finished_at")[:500]
            )
        cache[lab_id] = overlapping(runs, others) if runs else ([], [])
    alone, shared = cache[lab_id]
    chosen = (shared if busy else alone) or alone + shared
    return statistics.median(chosen) if chosen else None


def queue_estimate(submission: Submission, *, now=None) -> QueueEstimate | None:
    """The estimate for a queued submission; None once it is no longer queued."""
    if submission.status != Submission.Status.QUEUED:
        return None
    now = now or timezone.now()
    graders = GradingWorker.objects.grading_slots(queue=settings.SHIPWRIGHT_GRADING_QUEUE)
    ahead = list(
        Submission.objects.active()
        .learner_submitted()
        .filter(created_at__lt=submission.created_at)
        .order_by("created_at")
        .values_list("lab_id", "status", "started_at")
    )
    # A staff regrade running on the low queue holds a worker too.
    running_regrades = list(
        Submission.objects.regrades().filter(status=Submission.Status.RUNNING).values_list("lab_id", "started_at")
    )
    typical: dict = {}
    position = len(ahead) + 1
    # Will this run share the machine? Only if a second slot will be in use meanwhile.
    busy = min(max(graders, 1), len(ahead) + len(running_regrades) + 1) > 1
    own = _typical_s(submission.lab_id, typical, busy=busy)
    if own is None or (graders == 0 and not any(status == Submission.Status.RUNNING for _, status, _ in ahead)):
        return QueueEstimate(position=position, graders=graders, typical_s=own, wait_s=None)
    pickup = Submission.objects.recent_pickup_seconds()
    pickup_s = min(pickup) if pickup else 0.0

    def run_s(lab_id) -> float:
        return (_typical_s(lab_id, typical, busy=busy) or own) + pickup_s

    running_left = [
        run_s(lab_id) - pickup_s - (now - started_at).total_seconds()
        for lab_id, started_at in [
            *((lab_id, started) for lab_id, status, started in ahead if status == Submission.Status.RUNNING),
            *running_regrades,
        ]
        if started_at is not None
    ]
    queued = [run_s(lab_id) for lab_id, status, _ in ahead if status == Submission.Status.QUEUED]
    wait = verdict_wait_s(running_left_s=running_left, queued_ahead_s=queued, own_s=own + pickup_s, graders=graders)
    # A run in progress proves its worker, registered or not (one started before the registry).
    return QueueEstimate(position=position, graders=max(graders, len(running_left)), typical_s=own, wait_s=wait)
