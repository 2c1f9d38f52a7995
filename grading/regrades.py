"""Safe regrades: preview a regrade into shadow results, read the diff, apply it.

`regrade_preview_start` records a RegradeBatch and one RegradeItem per chosen
submission and sends each item to the low queue; `regrade_item_grade` (the task's
service) runs the lab's current grader on the submission's immutable snapshot with
the same runner as a grading, and writes only the item: the submission's status,
its results, progress, certificates and the verdict metrics stay as they are.
`regrade_batch_diff` compares shadow and live results per learner and per check;
`regrade_batch_apply` makes them live with a policy, in one transaction, keeping the
replaced results as ResultHistory.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labs.models import Lab

from . import budget, hooks, runner, services, storage
from .models import CheckResult, RegradeBatch, RegradeItem, ResultHistory, Submission
from .sandbox import SandboxUnavailable

log = logging.getLogger(__name__)

NOTHING_TO_REGRADE = "There is no graded submission of this lab whose source is still kept to regrade."
NOTHING_SELECTED = "Select at least one submission to regrade."
NOT_REGRADABLE = (
    "{count} of the selected submissions cannot be regraded (not of this lab, not finished, "
    "or their source was removed by the retention policy)."
)
ALREADY_APPLIED = "This preview was applied on {date} already."
STILL_GRADING = "The preview is still running ({pending} of {total} submissions left); apply it once it is done."
LAB_CHANGED = "The lab's grader changed after this preview ran: start a new preview, then apply that one."
BAD_POLICY = "Choose a policy: replace, or keep the higher score."
SOURCE_GONE = "the submission's source was removed by the retention policy"
SKIPPED_BUSY = "being graded at the time of the apply"
KEPT_NOT_HIGHER = "the new result is not higher"


class RegradeRefused(Exception):
    """A preview or apply that may not happen; str() is shown to the instructor as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def regradable_submissions(lab: Lab):
    """The submissions of `lab` a preview may include: graded or ended in a platform
    error, with their snapshot still kept."""
    return Submission.objects.filter(lab=lab).regradable().exclude(status=Submission.Status.REJECTED)


def regrade_preview_start(*, lab: Lab, user, scope: str, submission_ids=()) -> RegradeBatch:
    """Record a preview of `lab`'s current grader over the submissions `scope`
    chooses (latest per learner, all, or `submission_ids`) and send each one to the
    low queue after commit. Raises RegradeRefused (writing nothing) when nothing is
    left to regrade or a selected submission cannot be."""
    candidates = regradable_submissions(lab)
    if scope == RegradeBatch.Scope.SELECTED:
        if not submission_ids:
            raise RegradeRefused(NOTHING_SELECTED)
        try:
            wanted = {uuid.UUID(str(pk)) for pk in submission_ids}
        except ValueError:
            raise RegradeRefused(NOT_REGRADABLE.format(count=len(submission_ids))) from None
        chosen = list(candidates.filter(pk__in=wanted))
        if len(chosen) != len(wanted):
            raise RegradeRefused(NOT_REGRADABLE.format(count=len(wanted) - len(chosen)))
    elif scope == RegradeBatch.Scope.LATEST:
        latest: dict[int, Submission] = {}
        for submission in candidates.order_by("-created_at"):
            latest.setdefault(submission.user_id, submission)
        chosen = list(latest.values())
    elif scope == RegradeBatch.Scope.ALL:
        chosen = list(candidates)
    else:
        raise RegradeRefused(f"Unknown scope {scope!r}: choose one of {', '.join(RegradeBatch.Scope.values)}.")
    if not chosen:
        raise RegradeRefused(NOTHING_TO_REGRADE)
    with transaction.atomic():
        batch = RegradeBatch.objects.create(lab=lab, created_by=user, scope=scope, lab_hash=lab.content_hash)
        items = RegradeItem.objects.bulk_create(
            [RegradeItem(batch=batch, submission=s) for s in sorted(chosen, key=lambda s: s.created_at)]
        )
        for item in items:
            regrade_item_enqueue(item, lab=lab)
    log.info("regrade preview %s of %s: %d submission(s)", batch.pk, lab.full_slug, len(items))
    return batch


def regrade_item_enqueue(item: RegradeItem, *, lab: Lab, countdown_s: float = 0) -> None:
    """Send the shadow grading of `item` to the low queue once the transaction commits."""
    from .tasks import preview_regrade_item

    limits = budget.grading_budget(lab.parsed_spec)
    pk = item.pk
    transaction.on_commit(
        lambda: preview_regrade_item.apply_async(
            args=[pk],
            queue=settings.SHIPWRIGHT_LOW_QUEUE,
            countdown=countdown_s or None,
            soft_time_limit=limits.soft_s,
            time_limit=limits.hard_s,
        )
    )


def _claim(item_id: int, *, stale_after_s: float) -> int | None:
    """Move a queued item to running (or take over one whose run is older than its
    hard time limit: its worker died); returns the claim's attempt number, or None."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after_s)
    with transaction.atomic():
        attempts = (
            RegradeItem.objects.select_for_update()
            .filter(pk=item_id)
            .filter(Q(status=RegradeItem.Status.QUEUED) | Q(status=RegradeItem.Status.RUNNING, claimed_at__lt=stale))
            .values_list("attempts", flat=True)
            .first()
        )
        if attempts is None:
            return None
        RegradeItem.objects.filter(pk=item_id).update(
            status=RegradeItem.Status.RUNNING, attempts=attempts + 1, claimed_at=now
        )
    return attempts + 1


def regrade_item_grade(item_id: int, *, worker: str | None = None) -> RegradeItem | services.Retry | None:
    """Grade one preview item into its shadow results; idempotent (a claimed or
    finished item is left alone). Writes only the item, fenced by its claim. A
    platform failure returns Retry while the retry budget lasts, then ends the item
    in `error`; what the learner's code does is a result, as in a grading."""
    worker = worker or f"{socket.gethostname()}:{threading.get_ident()}"
    item = RegradeItem.objects.select_related("submission", "submission__lab").filter(pk=item_id).first()
    if item is None:
        return None
    lab = item.submission.lab
    spec = lab.parsed_spec
    attempt = _claim(item_id, stale_after_s=budget.grading_budget(spec).hard_s)
    if attempt is None:
        return None
    item.refresh_from_db()
    submission = item.submission
    fence = RegradeItem.objects.filter(pk=item_id, status=RegradeItem.Status.RUNNING, attempts=attempt)
    if not submission.snapshot_path:
        fence.update(status=RegradeItem.Status.ERROR, error_detail=SOURCE_GONE)
        return None
    image = spec.image or settings.SHIPWRIGHT_LAB_IMAGE
    # No submission labels: the orphan sweep must not take these for a dead grading
    # of the submission; leftovers go with the age cutoff like any sandbox's.
    labels = {"shipwright.regrade-item": str(item_id)}
    log.info("regrade preview item %s (submission %s): claimed by %s", item_id, submission.pk, worker)
    try:
        digest, assets, reference = services.grading_inputs(lab, spec, image=image, labels=labels)
        with storage.fetched(submission.snapshot_path, submission.snapshot_sha256) as snapshot:
            result = runner.run_pipeline(
                spec=spec,
                snapshot=snapshot,
                assets=assets,
                image=image,
                run_id=f"regrade-{item_id}-{attempt}",
                reference=reference,
                labels=labels,
                sandbox_factory=services.sandbox_factory_for(spec),
            )
    except (SandboxUnavailable, storage.StoreError) as exc:
        failures = item.platform_errors + 1
        log.warning("regrade preview item %s: platform error: %s", item_id, exc)
        if failures <= settings.SHIPWRIGHT_PLATFORM_RETRIES:
            requeued = fence.update(
                status=RegradeItem.Status.QUEUED, platform_errors=failures, error_detail=str(exc)[:4000]
            )
            return services.Retry(countdown_s=budget.platform_backoff_s(failures)) if requeued else None
        fence.update(status=RegradeItem.Status.ERROR, platform_errors=failures, error_detail=str(exc)[:4000])
        return None
    except Exception as exc:
        log.exception("regrade preview item %s failed inside the platform", item_id)
        fence.update(status=RegradeItem.Status.ERROR, error_detail=f"{type(exc).__name__}: {exc}"[:4000])
        return None
    fence.update(
        status=RegradeItem.Status.DONE,
        shadow_status=result.status,
        shadow_score=result.score,
        shadow_max_score=result.max_score,
        shadow_checks=services.check_rows(result),
        shadow_stages=services.stage_rows(result),
        shadow_image=image,
        shadow_image_digest=digest,
        error_detail="",
    )
    item.refresh_from_db()
    return item


def regrade_item_retry(*, item_id: int, countdown_s: float) -> None:
    """Send a shadow grading again after a platform failure."""
    item = RegradeItem.objects.select_related("submission__lab").filter(pk=item_id).first()
    if item is not None and item.status == RegradeItem.Status.QUEUED:
        regrade_item_enqueue(item, lab=item.submission.lab, countdown_s=countdown_s)


# --- The diff -------------------------------------------------------------------


def _percent(score, max_score) -> float | None:
    if score is None or not max_score:
        return None
    return 100.0 * score / max_score


@dataclass
class CheckFlip:
    name: str
    was: str  # a status, or "" when the check did not exist before
    now: str  # a status, or "" when the check no longer exists


@dataclass
class LearnerRow:
    item: RegradeItem
    submission: Submission
    was_status: str
    was_score: float | None
    was_max_score: float | None
    now_status: str
    now_score: float | None
    now_max_score: float | None
    flips: list[CheckFlip]

    @property
    def change(self) -> str:
        """'pass_to_fail', 'fail_to_pass', 'up', 'down', 'same', or the item's status
        while it has no shadow result ('queued', 'running', 'error')."""
        if self.item.status != RegradeItem.Status.DONE:
            return self.item.status
        was_passed = self.was_status == Submission.Status.PASSED
        now_passed = self.now_status == Submission.Status.PASSED
        if was_passed and not now_passed:
            return "pass_to_fail"
        if now_passed and not was_passed:
            return "fail_to_pass"
        delta = self.delta
        if delta is None or abs(delta) < 1e-9:
            return "same"
        return "up" if delta > 0 else "down"

    @property
    def delta(self) -> float | None:
        """Percentage points the score moves (percent, as the lab's points may change)."""
        was, now = _percent(self.was_score, self.was_max_score), _percent(self.now_score, self.now_max_score)
        if was is None or now is None:
            return None
        return now - was


@dataclass
class CheckSummary:
    name: str
    pass_to_fail: int = 0
    fail_to_pass: int = 0
    added: int = 0
    removed: int = 0


@dataclass
class BatchDiff:
    total: int
    pending: int
    errors: int
    rows: list[LearnerRow]
    counts: dict[str, int] = field(default_factory=dict)
    checks: list[CheckSummary] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.pending == 0

    @property
    def graded(self) -> int:
        return self.total - self.pending


PASSED = CheckResult.Status.PASSED


def _was(submission: Submission) -> tuple[str, float | None, float | None, dict[str, str]]:
    """The live verdict and check statuses of a submission now."""
    checks = {c.name: c.status for c in submission.check_results.all()}
    return submission.status, submission.score, submission.max_score, checks


def regrade_batch_diff(batch: RegradeBatch) -> BatchDiff:
    """Shadow against live, per learner and per check. After an apply, the live side
    of an applied item is the result it replaced (its ResultHistory row)."""
    items = list(
        batch.items.select_related("submission", "submission__user").prefetch_related("submission__check_results")
    )
    history = {h.submission_id: h for h in ResultHistory.objects.filter(batch=batch)}
    rows: list[LearnerRow] = []
    per_check: dict[str, CheckSummary] = {}
    for item in items:
        submission = item.submission
        replaced = history.get(submission.pk)
        if replaced is not None:
            was_status, was_score, was_max = (
                replaced.previous_status,
                replaced.previous_score,
                replaced.previous_max_score,
            )
            was_checks = {c["name"]: c["status"] for c in replaced.previous_checks}
        else:
            was_status, was_score, was_max, was_checks = _was(submission)
        flips: list[CheckFlip] = []
        if item.status == RegradeItem.Status.DONE:
            now_checks = {c["name"]: c["status"] for c in item.shadow_checks}
            for name in [*now_checks, *(n for n in was_checks if n not in now_checks)]:
                was, now = was_checks.get(name, ""), now_checks.get(name, "")
                if was and now and (was == PASSED) == (now == PASSED):
                    continue
                summary = per_check.setdefault(name, CheckSummary(name=name))
                if not was:
                    summary.added += 1
                elif not now:
                    summary.removed += 1
                elif was == PASSED:
                    summary.pass_to_fail += 1
                else:
                    summary.fail_to_pass += 1
                flips.append(CheckFlip(name=name, was=was, now=now))
        rows.append(
            LearnerRow(
                item=item,
                submission=submission,
                was_status=was_status,
                was_score=was_score,
                was_max_score=was_max,
                now_status=item.shadow_status,
                now_score=item.shadow_score,
                now_max_score=item.shadow_max_score,
                flips=flips,
            )
        )
    counts = {key: 0 for key in ("pass_to_fail", "fail_to_pass", "up", "down", "same")}
    for row in rows:
        if row.change in counts:
            counts[row.change] += 1
    order = {"pass_to_fail": 0, "fail_to_pass": 1, "down": 2, "up": 3, "error": 4, "same": 5}
    rows.sort(key=lambda row: (order.get(row.change, 6), row.submission.user.email, row.submission.created_at))
    pending = sum(item.status in (RegradeItem.Status.QUEUED, RegradeItem.Status.RUNNING) for item in items)
    return BatchDiff(
        total=len(items),
        pending=pending,
        errors=sum(item.status == RegradeItem.Status.ERROR for item in items),
        rows=rows,
        counts=counts,
        checks=sorted(per_check.values(), key=lambda c: c.name),
    )


# --- Apply ----------------------------------------------------------------------


@dataclass
class ApplyReport:
    applied: int = 0
    kept: int = 0
    skipped: int = 0


def _rank(status: str, score, max_score) -> tuple[bool, float]:
    return status == Submission.Status.PASSED, _percent(score, max_score) or 0.0


def _is_higher(item: RegradeItem, submission: Submission) -> bool:
    """Keep-the-higher applies a shadow result only when it lowers neither the
    verdict nor the percentage, and raises at least one of them."""
    was_passed, was_percent = _rank(submission.status, submission.score, submission.max_score)
    now_passed, now_percent = _rank(item.shadow_status, item.shadow_score, item.shadow_max_score)
    if was_passed and not now_passed:
        return False
    if now_percent < was_percent - 1e-9:
        return False
    return now_passed != was_passed or now_percent > was_percent + 1e-9


def regrade_batch_apply(*, batch: RegradeBatch, policy: str, user) -> ApplyReport:
    """Make the preview's shadow results live, in one transaction, with `policy`:
    `replace` applies every graded item; `keep_higher` only those that raise the
    result (never lowering a score or a pass). Each applied submission keeps its
    replaced results as a ResultHistory row; its check and stage rows are replaced
    as a set; a submission that now passes goes through the certificate hooks, as a
    grading does (a certificate already issued is never revoked, as by any regrade).
    Items that ended in a platform error, and submissions being graded right now,
    are skipped. Raises RegradeRefused (changing nothing) when the batch was applied
    already, is still running, the lab changed since, or the policy is unknown."""
    if policy not in RegradeBatch.Policy.values:
        raise RegradeRefused(BAD_POLICY)
    report = ApplyReport()
    with transaction.atomic():
        batch = RegradeBatch.objects.select_for_update().select_related("lab").get(pk=batch.pk)
        if batch.applied_at is not None:
            raise RegradeRefused(ALREADY_APPLIED.format(date=f"{batch.applied_at:%Y-%m-%d %H:%M} UTC"))
        items = list(batch.items.order_by("pk"))
        pending = sum(item.status in (RegradeItem.Status.QUEUED, RegradeItem.Status.RUNNING) for item in items)
        if pending:
            raise RegradeRefused(STILL_GRADING.format(pending=pending, total=len(items)))
        if batch.lab.content_hash != batch.lab_hash:
            raise RegradeRefused(LAB_CHANGED)
        kind = ResultHistory.Kind.PREVIEW_REPLACE if policy == "replace" else ResultHistory.Kind.PREVIEW_KEEP_HIGHER
        now = timezone.now()
        for item in items:
            if item.status != RegradeItem.Status.DONE:
                item.outcome, item.outcome_note = RegradeItem.Outcome.SKIPPED, "platform error in the preview"
                report.skipped += 1
                item.save(update_fields=["outcome", "outcome_note"])
                continue
            submission = Submission.objects.select_for_update().select_related("lab").get(pk=item.submission_id)
            if submission.status not in (Submission.Status.PASSED, Submission.Status.FAILED, Submission.Status.ERROR):
                item.outcome, item.outcome_note = RegradeItem.Outcome.SKIPPED, SKIPPED_BUSY
                report.skipped += 1
            elif policy == RegradeBatch.Policy.KEEP_HIGHER and not _is_higher(item, submission):
                item.outcome, item.outcome_note = RegradeItem.Outcome.KEPT, KEPT_NOT_HIGHER
                report.kept += 1
            else:
                _apply_item(item, submission, kind=kind, batch=batch, user=user, now=now)
                item.outcome, item.outcome_note = RegradeItem.Outcome.APPLIED, ""
                report.applied += 1
            item.save(update_fields=["outcome", "outcome_note"])
        batch.applied_at, batch.applied_by, batch.policy = now, user, policy
        batch.save(update_fields=["applied_at", "applied_by", "policy"])
    log.info(
        "regrade preview %s applied (%s) by %s: %d applied, %d kept, %d skipped",
        batch.pk,
        policy,
        user,
        report.applied,
        report.kept,
        report.skipped,
    )
    return report


def _apply_item(item: RegradeItem, submission: Submission, *, kind: str, batch: RegradeBatch, user, now) -> None:
    services.result_history_record(
        submission,
        kind=kind,
        status=item.shadow_status,
        score=item.shadow_score,
        max_score=item.shadow_max_score,
        batch=batch,
        by=user,
    )
    services.submission_results_replace(submission, checks=item.shadow_checks, stages=item.shadow_stages)
    Submission.objects.filter(pk=submission.pk).update(
        status=item.shadow_status,
        score=item.shadow_score,
        max_score=item.shadow_max_score,
        lab_hash=batch.lab_hash,
        image=item.shadow_image,
        image_digest=item.shadow_image_digest,
        error_message="",
        error_detail="",
    )
    submission.refresh_from_db()
    if submission.status == Submission.Status.PASSED:
        services.submission_award_certificate(submission)
    # As after a grading: e.g. the LMS gradebook gets the learner's best score again.
    for hook in hooks.submission_graded:
        hook(submission)
    previous_timings = (submission.result or {}).get("timings") if isinstance(submission.result, dict) else None
    submission.result = services.submission_result_json(submission, timings=previous_timings or {})
    submission.save(update_fields=["result"])
