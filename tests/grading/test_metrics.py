"""`/metrics` for Prometheus, the alert rules and dashboard that read it, and log lines
that name their submission (issue 9, "Watch it")."""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import logcontext
from config.celery import app
from grading import services
from grading.intake import snapshot_from_directory
from grading.models import Submission
from tests.grading.test_grade_command import grade
from tests.grading.tiny_lab import make_solution

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-me-" + "x" * 24


@pytest.fixture
def scraper(client, settings):
    settings.SHIPWRIGHT_METRICS_TOKEN = TOKEN

    def scrape() -> dict[str, dict[tuple, float]]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        samples: dict[str, dict[tuple, float]] = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return samples

    return scrape


def value(samples, name: str, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_answer_only_a_scraper_with_the_token(db, client, settings):
    settings.SHIPWRIGHT_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.SHIPWRIGHT_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"shipwright_queue_messages" in response.content


def test_a_graded_submission_moves_verdicts_durations_and_queue_wait(tiny_lab, tmp_path, learner, scraper):
    before = scraper()
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json")
    assert code == 0 and document["status"] == "passed"
    after = scraper()
    lab = "tiny-course/tiny"
    assert value(after, "shipwright_verdicts_total", lab=lab, verdict="passed") == (
        value(before, "shipwright_verdicts_total", lab=lab, verdict="passed") + 1
    )
    # One observation per stage, per run and per claim, in histograms with buckets.
    for stage in ("run", "probe"):
        assert value(after, "shipwright_stage_duration_seconds_count", lab=lab, stage=stage) == 1
        assert value(after, "shipwright_stage_duration_seconds_sum", lab=lab, stage=stage) > 0
        assert value(after, "shipwright_stage_duration_seconds_bucket", lab=lab, stage=stage, le="+Inf") == 1
    assert value(after, "shipwright_grading_duration_seconds_count", lab=lab) == 1
    assert value(after, "shipwright_queue_wait_seconds_count", lab=lab) == 1
    run_time = sum(stage["duration_s"] for stage in document["stages"])
    assert value(after, "shipwright_grading_duration_seconds_sum", lab=lab) >= run_time


@pytest.fixture
def queued(tiny_lab, learner, tmp_path):
    snapshot = snapshot_from_directory(
        make_solution(tmp_path, "correct"), dest_dir=services.snapshot_dir(), limits=services.intake_limits()
    )
    return services.submission_create(user=learner, lab=tiny_lab, snapshot=snapshot, enforce_limits=False)


def test_platform_errors_and_reaper_requeues_are_counted_by_kind(queued, scraper, settings):
    services.submission_claim(submission_id=queued.pk, worker="w1")
    services._platform_failure(Submission.objects.get(pk=queued.pk), "Docker engine error: refused", kind="sandbox")
    services.submission_claim(submission_id=queued.pk, worker="w2")
    # The worker dies: the reaper requeues its run.
    assert services.submissions_reap_stale(now=timezone.now() + timedelta(seconds=600)) == [str(queued.pk)]
    settings.SHIPWRIGHT_PLATFORM_RETRIES = 0
    services.submission_claim(submission_id=queued.pk, worker="w3")
    services._platform_failure(Submission.objects.get(pk=queued.pk), "internal error: boom", kind="internal")
    samples = scraper()
    assert value(samples, "shipwright_platform_errors_total", kind="sandbox") == 1
    assert value(samples, "shipwright_platform_errors_total", kind="internal") == 1
    assert value(samples, "shipwright_platform_errors_total", kind="gave_up") == 1
    assert value(samples, "shipwright_reaper_requeues_total", reason="worker_lost") == 1
    assert value(samples, "shipwright_verdicts_total", lab="tiny-course/tiny", verdict="error") == 1


def test_the_queue_depth_and_the_oldest_wait_come_from_the_broker_and_the_database(queued, scraper, settings):
    settings.SHIPWRIGHT_GRADING_QUEUE = "metrics-test-grading"
    settings.CELERY_TASK_ROUTES = {"grading.grade_submission": {"queue": "metrics-test-grading"}}
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("metrics-test-grading")
    Submission.objects.filter(pk=queued.pk).update(dispatch_due_at=timezone.now() - timedelta(seconds=900))
    with app.connection_for_write() as conn:
        app.send_task("grading.grade_submission", args=["nobody"], queue="metrics-test-grading", connection=conn)
    try:
        samples = scraper()
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete("metrics-test-grading")
    assert value(samples, "shipwright_broker_up") == 1
    assert value(samples, "shipwright_queue_messages", queue="metrics-test-grading") == 1
    assert value(samples, "shipwright_submissions", status="queued") == 1
    assert 900 <= value(samples, "shipwright_oldest_queued_seconds") < 1000


def test_certificates_issued_and_revoked_are_counted(scraper, tiny_lab, learner):
    from certificates import services as certificates
    from tests.certificates.test_issuing_and_verify_page import pass_lab

    before = scraper()
    pass_lab(learner, tiny_lab.course)
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny_lab.course)
    assert certificate is not None
    certificates.certificate_revoke(certificate=certificate, reason="test")
    after = scraper()
    for name in ("shipwright_certificates_issued_total", "shipwright_certificates_revoked_total"):
        assert value(after, name) == value(before, name) + 1
    assert value(after, "shipwright_certificates", status="revoked") == 1


def _names_in(expression: str) -> set[str]:
    names = set(re.findall(r"\bshipwright_[a-z_]+", expression))
    return {re.sub(r"_(bucket|count|sum)$", "", n) if n.endswith(("_bucket", "_count", "_sum")) else n for n in names}


def test_the_alert_rules_and_the_dashboard_read_only_metrics_that_exist(scraper, tiny_lab, tmp_path):
    grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")))
    services.sandboxes_report()  # what a grading worker does after each run
    samples = scraper()
    assert (("host", socket.gethostname()),) in samples["shipwright_sandbox_containers"]
    exported = set(samples) | {re.sub(r"_(bucket|count|sum)$", "", n) for n in samples}
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= _names_in(rule["expr"])
    dashboard = json.loads((ROOT / "docker/grafana/shipwright.json").read_text())
    panels = dashboard["panels"]
    assert panels, "the dashboard has panels"
    for panel in panels:
        for target in panel.get("targets", []):
            used |= _names_in(target["expr"])
    assert used and used <= exported, sorted(used - exported)


def test_every_log_line_of_a_grading_run_names_its_submission(tiny_lab, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    code, document, _ = grade("tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--json")
    assert code == 0
    submission_id = document["submission"]
    during = [r for r in caplog.records if r.name.startswith("grading.")]
    assert len(during) >= 3, "the run logs its claim, its stages and its verdict"
    assert {r.submission_id for r in during} == {submission_id}
    logging.getLogger("grading").info("outside any run")
    assert caplog.records[-1].submission_id == "-"


def test_json_logs_carry_the_submission_id(capsys):
    from django.conf import settings
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(**{k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"})
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.jsonlog")
    logger.addHandler(handler)
    try:
        with logcontext.submission("abc-123"):
            logger.warning("stage %s failed", "train")
    finally:
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["submission_id"] == "abc-123"
    assert line["message"] == "stage train failed"
    assert line["level"] == "WARNING" and line["logger"] == "tests.jsonlog"
