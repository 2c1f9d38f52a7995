"""Operational metrics of grading, in Prometheus's format (served at `/metrics`).

Events (a verdict, a platform error, a reaper requeue, the time a submission waited
and each stage's run time) are counted where they happen, in the database: every
web and grading host reaches it, a counter survives the restart of the process that
moved it, and one scrape of any web process sees the whole deployment.
State (queue depth, submissions waiting, the oldest one's age) is read at scrape
time from the broker and the database. Recording never raises: a metric must not
fail a grading run.
"""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, F, Min
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .models import MetricSample, Submission

log = logging.getLogger(__name__)

QUEUE_WAIT = "shipwright_queue_wait_seconds"
RUN_DURATION = "shipwright_grading_duration_seconds"
STAGE_DURATION = "shipwright_stage_duration_seconds"
VERDICTS = "shipwright_verdicts_total"
PLATFORM_ERRORS = "shipwright_platform_errors_total"
REAPER_REQUEUES = "shipwright_reaper_requeues_total"
REAPER_REMOVED = "shipwright_reaper_sandboxes_removed_total"
SANDBOXES = "shipwright_sandbox_containers"

HISTOGRAMS: dict[str, tuple[tuple[float, ...], str]] = {
    QUEUE_WAIT: (
        (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        "Time from a grading task being due to a worker claiming it.",
    ),
    RUN_DURATION: (
        (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 2400),
        "Time from claim to verdict of one grading run, per lab.",
    ),
    STAGE_DURATION: (
        (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
        "Run time of one pipeline stage in its sandbox, per lab and stage.",
    ),
}
COUNTERS: dict[str, str] = {
    VERDICTS: "Gradings finished, per lab and verdict (passed, failed, error).",
    PLATFORM_ERRORS: "Platform failures while grading, per kind (sandbox, store, internal, judging, gave_up).",
    REAPER_REQUEUES: "Submissions the reaper sent again, per reason (worker_lost, message_lost).",
    REAPER_REMOVED: "Sandbox containers and volumes the reaper removed (leftovers of dead or superseded runs).",
}
# A gauge a host reports about itself is shown while it is this fresh.
GAUGE_FRESH_S = 600


def _key(labels: dict[str, object]) -> str:
    return ",".join(f"{k}={str(v).replace(',', '_')}" for k, v in sorted(labels.items()))


def _unkey(key: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in key.split(",")) if key else {}


def _add(name: str, amount: float, key: str) -> None:
    if MetricSample.objects.filter(name=name, labels=key).update(value=F("value") + amount, updated_at=timezone.now()):
        return
    try:
        with transaction.atomic():
            MetricSample.objects.create(name=name, labels=key, value=amount)
    except IntegrityError:  # created meanwhile by another process
        MetricSample.objects.filter(name=name, labels=key).update(value=F("value") + amount)


def count(name: str, amount: float = 1, **labels: object) -> None:
    """Add `amount` to a counter. Inside the caller's transaction when there is one
    (a verdict rolled back is not counted); never raises."""
    try:
        with transaction.atomic():
            _add(name, amount, _key(labels))
    except DatabaseError as exc:
        log.warning("could not count %s%s: %s", name, labels, exc)


def observe(name: str, value: float, **labels: object) -> None:
    """Record one observation into a histogram of HISTOGRAMS; never raises."""
    buckets, _ = HISTOGRAMS[name]
    le = next((str(b) for b in buckets if value <= b), "+Inf")
    try:
        with transaction.atomic():
            _add(f"{name}:bucket", 1, _key({**labels, "le": le}))
            _add(f"{name}:sum", value, _key(labels))
            _add(f"{name}:count", 1, _key(labels))
    except DatabaseError as exc:
        log.warning("could not observe %s%s: %s", name, labels, exc)


def set_gauge(name: str, value: float, **labels: object) -> None:
    """Set a gauge a host reports about itself (shown while fresh); never raises."""
    try:
        MetricSample.objects.update_or_create(name=name, labels=_key(labels), defaults={"value": value})
    except DatabaseError as exc:
        log.warning("could not set %s%s: %s", name, labels, exc)


def host() -> str:
    return socket.gethostname()


# Reading ----------------------------------------------------------------------


def queue_lengths(queues: Iterable[str]) -> dict[str, int] | None:
    """Messages waiting in each broker queue (not those a worker has reserved), or
    None when the broker cannot be read."""
    from config.celery import app

    try:
        with app.connection_for_read() as conn:
            transport = conn.transport.driver_type
            if transport == "redis":
                client = conn.default_channel.client
                return {q: int(client.llen(q)) for q in queues}
            if transport == "filesystem":
                folder = Path(conn.transport_options["data_folder_in"])
                return {q: sum(1 for _ in folder.glob(f"*.{q}.msg")) for q in queues}
    except Exception as exc:
        log.warning("could not read the broker's queues: %s", exc)
    return None


def _queues() -> list[str]:
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted(routed | {settings.SHIPWRIGHT_GRADING_QUEUE, settings.SHIPWRIGHT_LOW_QUEUE})


class GradingCollector:
    """The grading metrics, read from the broker and the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        depth = GaugeMetricFamily(
            "shipwright_queue_messages", "Messages waiting in each broker queue.", labels=["queue"]
        )
        broker_up = GaugeMetricFamily("shipwright_broker_up", "1 when the broker's queues could be read.")
        lengths = queue_lengths(_queues())
        broker_up.add_metric([], 1 if lengths is not None else 0)
        for queue, n in sorted((lengths or {}).items()):
            depth.add_metric([queue], n)
        yield broker_up
        yield depth

        waiting = GaugeMetricFamily(
            "shipwright_submissions", "Submissions not finished yet, per status.", labels=["status"]
        )
        unfinished = [s for s in Submission.Status.values if s not in Submission.FINISHED]
        counts = dict(
            Submission.objects.filter(status__in=unfinished)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for status in unfinished:
            waiting.add_metric([status], counts.get(status, 0))
        yield waiting

        due = (
            Submission.objects.filter(status=Submission.Status.QUEUED)
            .annotate(due=Coalesce("dispatch_due_at", "created_at"))
            .filter(due__lte=now)
            .aggregate(oldest=Min("due"))["oldest"]
        )
        oldest = GaugeMetricFamily(
            "shipwright_oldest_queued_seconds",
            "Age of the longest-waiting queued submission that is due (0 when none waits).",
        )
        oldest.add_metric([], (now - due).total_seconds() if due else 0.0)
        yield oldest

        yield from self._samples(now)

    def _samples(self, now) -> Iterator[Metric]:
        rows = list(MetricSample.objects.values_list("name", "labels", "value", "updated_at"))
        by_name: dict[str, list[tuple[dict[str, str], float, datetime]]] = defaultdict(list)
        for name, key, value, updated_at in rows:
            by_name[name].append((_unkey(key), value, updated_at))

        for name, help_text in COUNTERS.items():
            family = None
            for labels, value, _ in sorted(by_name.get(name, []), key=lambda r: sorted(r[0].items())):
                if family is None:
                    family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=sorted(labels))
                family.add_metric([labels[k] for k in sorted(labels)], value)
            yield family or CounterMetricFamily(name.removesuffix("_total"), help_text, value=0)

        for name, (buckets, help_text) in HISTOGRAMS.items():
            series: dict[tuple, dict] = defaultdict(lambda: {"buckets": defaultdict(float), "sum": 0.0, "count": 0.0})
            names: list[str] = []
            for labels, value, _ in by_name.get(f"{name}:bucket", []):
                le = labels.pop("le")
                names = sorted(labels)
                series[tuple(labels[k] for k in names)]["buckets"][le] += value
            for labels, value, _ in by_name.get(f"{name}:sum", []):
                names = sorted(labels)
                series[tuple(labels[k] for k in names)]["sum"] = value
            for labels, value, _ in by_name.get(f"{name}:count", []):
                names = sorted(labels)
                series[tuple(labels[k] for k in names)]["count"] = value
            family_h = HistogramMetricFamily(name, help_text, labels=names)
            for label_values, data in sorted(series.items()):
                cumulative, points = 0.0, []
                for b in buckets:
                    cumulative += data["buckets"].get(str(b), 0.0)
                    points.append((str(float(b)), cumulative))
                points.append(("+Inf", data["count"]))
                family_h.add_metric(list(label_values), points, sum_value=data["sum"])
            yield family_h

        fresh_after = now - timedelta(seconds=GAUGE_FRESH_S)
        sandboxes = GaugeMetricFamily(
            SANDBOXES, "Sandbox containers alive on each grading host's engine (as last reported).", labels=["host"]
        )
        for labels, value, updated_at in by_name.get(SANDBOXES, []):
            if updated_at >= fresh_after:
                sandboxes.add_metric([labels.get("host", "")], value)
        yield sandboxes
