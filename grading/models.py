from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Cast, NullIf
from django.utils import timezone

WORKER_LOST_PENDING = (
    "The grading worker stopped responding {seconds} s ago; your submission will be graded again automatically."
)


def result_without_stage_outputs(document: dict) -> dict:
    """The result document as stored: `stages[].output` left out (each stage's output
    lives once, in its StageRun row)."""
    stages = document.get("stages")
    if not isinstance(stages, list) or not any(isinstance(s, dict) and "output" in s for s in stages):
        return document
    return {
        **document,
        "stages": [{k: v for k, v in s.items() if k != "output"} if isinstance(s, dict) else s for s in stages],
    }


class SubmissionQuerySet(models.QuerySet["Submission"]):
    def for_user(self, user) -> SubmissionQuerySet:
        return self.filter(user=user)

    def passed(self) -> SubmissionQuerySet:
        return self.filter(status=Submission.Status.PASSED)

    def active(self) -> SubmissionQuerySet:
        """Received (intake pending), queued or running: learners' own submissions and
        staff regrades alike. A learner has at most one: so at most one intake each."""
        return self.filter(status__in=Submission.ACTIVE)

    def in_grading_queue(self) -> SubmissionQuerySet:
        """Queued or running (past intake)."""
        return self.filter(status__in=[Submission.Status.QUEUED, Submission.Status.RUNNING])

    def regrades(self) -> SubmissionQuerySet:
        """Submissions a staff member sent back for grading (they run on the low queue)."""
        return self.filter(low_priority=True)

    def learner_submitted(self) -> SubmissionQuerySet:
        """Submissions as the learner made them, not staff regrades: only these hold a
        learner's one active slot, so a regrade backlog never blocks anyone."""
        return self.filter(low_priority=False)

    def regradable(self) -> SubmissionQuerySet:
        """Finished submissions whose snapshot is still kept (retention clears
        `snapshot_path` when it removes one)."""
        return self.filter(status__in=Submission.FINISHED).exclude(snapshot_path="")

    def graded(self) -> SubmissionQuerySet:
        """Attempts with a verdict on the learner's work (a platform error is none)."""
        return self.filter(status__in=[Submission.Status.PASSED, Submission.Status.FAILED], score__isnull=False)

    def best_first(self) -> SubmissionQuerySet:
        """The "best attempt" rule, in one place: passed before failed, then the highest
        percentage (not the raw score: a lab's points can change between attempts),
        then the newest."""
        percent = Cast(F("score"), FloatField()) * Value(100.0) / NullIf(Cast(F("max_score"), FloatField()), 0.0)
        return self.annotate(
            _is_passed=Case(When(status=Submission.Status.PASSED, then=Value(1)), default=Value(0)),
            _percent=percent,
        ).order_by("-_is_passed", F("_percent").desc(nulls_last=True), "-created_at")

    def best_for_lab(self, lab) -> Submission | None:
        """The attempt that counts for `lab` (chain after `for_user`)."""
        return self.filter(lab=lab).graded().best_first().first()

    def ahead_in_queue_of(self, submission: Submission) -> int:
        """Learners' submissions waiting or running that came before `submission`
        (staff regrades drain on their own queue and do not hold anyone up)."""
        return self.in_grading_queue().learner_submitted().filter(created_at__lt=submission.created_at).count()

    def recent_run_seconds(self, *, lab, sample: int = 20) -> list[float]:
        """How long the last `sample` finished runs of `lab` took, newest first."""
        rows = (
            self.filter(lab=lab, finished_at__isnull=False, started_at__isnull=False)
            .order_by("-finished_at")
            .values_list("started_at", "finished_at")[:sample]
        )
        return [(finished - started).total_seconds() for started, finished in rows]

    def recent_pickup_seconds(self, *, sample: int = 20) -> list[float]:
        """Created to first claimed, for the last `sample` learner submissions claimed
        (broker, worker pick-up, claim; plus any wait for a free worker)."""
        rows = (
            self.learner_submitted()
            .filter(started_at__isnull=False)
            .order_by("-started_at")
            .values_list("created_at", "started_at")[:sample]
        )
        return [max(0.0, (started - created).total_seconds()) for created, started in rows if started is not None]


class Submission(models.Model):
    """One attempt at a lab: an immutable source snapshot and its grading state.

    The snapshot (a .tar.gz and its SHA-256) never changes after intake; every stage
    and every regrade uses it. Status moves received -> queued | rejected (intake, off
    the request), then queued -> running -> passed | failed | error; a worker claims
    a queued submission with a conditional UPDATE.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        REJECTED = "rejected", "Not accepted"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Platform error"

    class SourceKind(models.TextChoices):
        ARCHIVE = "archive", "Archive"
        NOTEBOOK = "notebook", "Notebook"
        GIT = "git", "Git repository"
        DIRECTORY = "directory", "Directory"

    FINISHED = (Status.PASSED, Status.FAILED, Status.ERROR, Status.REJECTED)
    ACTIVE = (Status.RECEIVED, Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    lab = models.ForeignKey("labs.Lab", on_delete=models.CASCADE, related_name="submissions")
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_name = models.CharField(max_length=500, blank=True)
    git_url = models.CharField(max_length=500, blank=True)
    git_ref = models.CharField(max_length=200, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    # Empty until intake has stored the snapshot (and again once retention removed it).
    snapshot_path = models.CharField(max_length=300, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    # A received upload waits in the store as `uploads/<id>` until intake reads it.
    upload_sha256 = models.CharField(max_length=64, blank=True)
    # The client's address (behind SHIPWRIGHT_TRUSTED_PROXIES proxies), for the
    # per-address throttles; empty for the command line.
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    snapshot_size = models.PositiveBigIntegerField(default=0)
    intake_s = models.FloatField(default=0)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    # Set by a staff regrade (the low queue). A regrade never takes the learner's one
    # active slot: see SubmissionQuerySet.learner_submitted.
    low_priority = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # The contract's result JSON (docs/contracts.md section 1), once finished.
    result = models.JSONField(null=True, blank=True)

    # Provenance.
    lab_hash = models.CharField(max_length=64, blank=True)
    image = models.CharField(max_length=200, blank=True)
    image_digest = models.CharField(max_length=100, blank=True)

    # Live progress, for the submission page.
    current_stage = models.CharField(max_length=80, blank=True)
    stage_index = models.PositiveIntegerField(default=0)
    stage_count = models.PositiveIntegerField(default=0)
    stage_started_at = models.DateTimeField(null=True, blank=True)
    stage_limit_s = models.FloatField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    # The first claim of this grading (a retry's claim keeps it, so duration_s does not
    # restart); a regrade starts it afresh.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the grading task was last sent, and when it may run (sent + countdown): the
    # reaper re-sends a queued submission whose message is long overdue (a broker that
    # lost its messages on restart).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_due_at = models.DateTimeField(null=True, blank=True)
    # Platform failures of this grading (engine outages): they have their own budget,
    # separate from `attempts` (claims), and never count against the learner.
    platform_errors = models.PositiveIntegerField(default=0)
    # The raw reason of the last platform failure, for staff and logs; learners see
    # the friendly `error_message` only.
    error_detail = models.TextField(blank=True)

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["user", "lab", "-created_at"]),
            models.Index(fields=["client_ip", "created_at"], name="submission_client_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["received", "rejected", "queued", "running", "passed", "failed", "error"]),
                name="submission_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lab} by {self.user} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        # Stage output is stored once, in StageRun.output. A second copy inside the
        # result document let a learner who floods the 1 MiB output cap make a 2.1 MB
        # document. Every writer goes through here, so none can store it twice;
        # readers get the full contract document from services.submission_result_document.
        if isinstance(self.result, dict):
            self.result = result_without_stage_outputs(self.result)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("grading:submission-detail", args=[self.pk])

    @property
    def heartbeat_age_s(self) -> float | None:
        if self.status != self.Status.RUNNING or self.heartbeat_at is None:
            return None
        return max(0.0, (timezone.now() - self.heartbeat_at).total_seconds())

    @property
    def worker_lost(self) -> bool:
        """The running worker stopped heartbeating: the reaper will requeue the run."""
        from .budget import LOST_HEARTBEAT_S

        age = self.heartbeat_age_s
        return age is not None and age > LOST_HEARTBEAT_S

    @property
    def worker_lost_note(self) -> str:
        """What the page says instead of a stage timer once the worker is lost."""
        return WORKER_LOST_PENDING.format(seconds=int(self.heartbeat_age_s or 0)) if self.worker_lost else ""

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> float | None:
        if self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


class GradingWorkerQuerySet(models.QuerySet["GradingWorker"]):
    def live(self, *, now=None) -> GradingWorkerQuerySet:
        """Workers whose last beat is recent (see budget.WORKER_LIVE_S)."""
        from datetime import timedelta

        from .budget import WORKER_LIVE_S

        return self.filter(seen_at__gte=(now or timezone.now()) - timedelta(seconds=WORKER_LIVE_S))

    def grading_slots(self, *, queue: str) -> int:
        """How many submissions the live workers consuming `queue` grade at once."""
        return sum(worker.slots for worker in self.live() if queue in worker.queues)


class GradingWorker(models.Model):
    """A Celery worker as it last described itself: written by the worker's own beat
    (grading/worker_registry.py), removed when it shuts down; a killed worker's row
    simply stops being live. Read by the queue estimate."""

    name = models.CharField(max_length=200, unique=True)
    slots = models.PositiveIntegerField(default=1)
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    objects = GradingWorkerQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


class StageRun(models.Model):
    class Status(models.TextChoices):
        RAN = "ran", "Ran"
        SKIPPED = "skipped", "Skipped"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="stage_runs")
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=80)
    command = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices)
    grader = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    timed_out = models.BooleanField(default=False)
    oom_killed = models.BooleanField(default=False)
    pids_limit_hit = models.BooleanField(default=False)
    duration_s = models.FloatField(default=0)
    cpu_s = models.FloatField(null=True, blank=True)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    time_limit_s = models.FloatField(default=0)
    memory_limit_mb = models.IntegerField(default=0)
    output = models.TextField(blank=True)
    output_truncated_bytes = models.PositiveBigIntegerField(default=0)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["submission", "order"]
        constraints = [models.UniqueConstraint(fields=["submission", "name"], name="stage_run_unique_name")]

    def __str__(self) -> str:
        return f"{self.submission_id}:{self.name}"


class CheckResult(models.Model):
    class Status(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"
        SKIPPED = "skipped", "Skipped"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="check_results")
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices)
    score = models.FloatField()
    max_score = models.FloatField()
    required = models.BooleanField(default=False)
    output = models.TextField(blank=True)
    hint_html = models.TextField(blank=True)

    class Meta:
        ordering = ["submission", "order"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "name"], name="check_result_unique_name"),
            models.CheckConstraint(condition=Q(score__lte=models.F("max_score")), name="check_score_lte_max"),
        ]

    def __str__(self) -> str:
        return f"{self.submission_id}:{self.name}"


class MetricSample(models.Model):
    """A counter or gauge that outlives the process that moved it, shared by every
    host (the database is the one thing they all reach): reaper requeues, platform
    errors by kind, verdicts per lab, live sandboxes per grading host. `/metrics`
    reads them (grading/metrics.py); a counter only ever grows."""

    name = models.CharField(max_length=100)
    # Label pairs in a canonical form ("k=v" joined by "," in key order).
    labels = models.CharField(max_length=300, blank=True)
    value = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_sample_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}}={self.value}"


class RegradeBatch(models.Model):
    """A preview regrade: the lab's current grader run on chosen submissions into
    shadow results (RegradeItem), which change nothing live until an instructor
    applies them with a policy (grading/regrades.py)."""

    class Scope(models.TextChoices):
        LATEST = "latest", "The latest graded submission of each learner"
        ALL = "all", "Every graded submission"
        SELECTED = "selected", "Selected submissions"

    class Policy(models.TextChoices):
        REPLACE = "replace", "Replace: every submission gets its new result"
        KEEP_HIGHER = "keep_higher", "Keep the higher: only results that improve are applied"

    lab = models.ForeignKey("labs.Lab", on_delete=models.CASCADE, related_name="regrade_batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    # The lab content the shadow results were graded against.
    lab_hash = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy = models.CharField(max_length=16, choices=Policy.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"regrade preview {self.pk} of {self.lab}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("grading:regrade-batch", args=[self.pk])


class RegradeItem(models.Model):
    """One submission of a preview: its shadow verdict, checks and stages, graded on
    the low queue without touching the submission (claimed with a conditional UPDATE
    of this row, as a submission is)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Graded"
        ERROR = "error", "Platform error"

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        KEPT = "kept", "Kept the live result"
        SKIPPED = "skipped", "Skipped"

    batch = models.ForeignKey(RegradeBatch, on_delete=models.CASCADE, related_name="items")
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="regrade_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    platform_errors = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    error_detail = models.TextField(blank=True)
    shadow_status = models.CharField(max_length=16, blank=True)
    shadow_score = models.FloatField(null=True, blank=True)
    shadow_max_score = models.FloatField(null=True, blank=True)
    # [{"name", "status", "score", "max_score", "required", "output", "hint"}] in the lab's order.
    shadow_checks = models.JSONField(default=list)
    # The StageRun fields of each stage, to write on apply.
    shadow_stages = models.JSONField(default=list)
    shadow_image = models.CharField(max_length=200, blank=True)
    shadow_image_digest = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    outcome_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["batch", "pk"]
        constraints = [models.UniqueConstraint(fields=["batch", "submission"], name="regrade_item_unique")]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.submission_id} ({self.status})"

    @property
    def shadow_percent(self) -> float | None:
        if self.shadow_score is None or not self.shadow_max_score:
            return None
        return 100.0 * self.shadow_score / self.shadow_max_score


class ResultHistory(models.Model):
    """The results a submission had before a regrade replaced them: one row per
    regrade, never changed afterwards. Shown to the learner and the course staff on
    the submission page ("regraded on <date>: was 60, now 80")."""

    class Kind(models.TextChoices):
        REGRADE = "regrade", "Regrade"
        PREVIEW_REPLACE = "replace", "Previewed regrade (replace)"
        PREVIEW_KEEP_HIGHER = "keep_higher", "Previewed regrade (keep the higher)"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="result_history")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    batch = models.ForeignKey(RegradeBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    regraded_at = models.DateTimeField(default=timezone.now)
    previous_status = models.CharField(max_length=16)
    previous_score = models.FloatField(null=True, blank=True)
    previous_max_score = models.FloatField(null=True, blank=True)
    # The contract's `tests` entries as they were.
    previous_checks = models.JSONField(default=list)
    previous_lab_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16)
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-regraded_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.submission_id} regraded {self.regraded_at:%Y-%m-%d}"


class ExecutedNotebook(models.Model):
    """A notebook lab's executed notebook, as its learner-facing run left it (the stage
    with `executed_notebook:`, which never has hidden data mounted): hidden cells
    stripped (`ipynb`, the download) and rendered and sanitised (`html`), both bounded
    by grading.runner.MAX_EXECUTED_NOTEBOOK_BYTES. Shown to the owner and course staff."""

    submission = models.OneToOneField(
        Submission, on_delete=models.CASCADE, primary_key=True, related_name="executed_notebook"
    )
    ipynb = models.TextField(blank=True)
    html = models.TextField(blank=True)
    finished = models.BooleanField(default=False)
    # 1-based, as the grader's messages count cells ("cell 3 raised ...").
    flagged_cell = models.PositiveIntegerField(null=True, blank=True)
    flag = models.CharField(max_length=200, blank=True)
    # Why there is nothing to show (too large, unreadable), in words for the learner.
    note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.submission_id}:notebook"
