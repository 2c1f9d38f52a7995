"""Certificate metrics for `/metrics`, read from the database at scrape time: the
event log (`CertificateEvent`) only grows, so its counts are true counters."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .models import Certificate, CertificateEvent, PendingCertificate


class CertificatesCollector:
    def collect(self) -> Iterator[Metric]:
        events = dict(CertificateEvent.objects.values_list("action").annotate(n=Count("pk")).values_list("action", "n"))
        for action, help_text in (
            (CertificateEvent.Action.ISSUED, "Certificates issued."),
            (CertificateEvent.Action.REVOKED, "Certificates revoked."),
            (CertificateEvent.Action.SUSPENDED, "Certificates suspended."),
            (CertificateEvent.Action.REINSTATED, "Certificates reinstated after a suspension."),
        ):
            yield CounterMetricFamily(f"shipwright_certificates_{action}", help_text, value=events.get(action, 0))
        by_status = GaugeMetricFamily("shipwright_certificates", "Certificates by current status.", labels=["status"])
        counts = dict(Certificate.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in Certificate.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        pending = GaugeMetricFamily(
            "shipwright_certificates_pending",
            "Certificates earned but not issued yet (with the signing worker, or waiting for a key or a name).",
        )
        pending.add_metric([], PendingCertificate.objects.count())
        yield pending
