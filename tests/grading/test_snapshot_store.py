"""The snapshot store on a real S3-compatible server (moto's server mode on loopback):
uploads and snapshots go there, every read is checked against its SHA-256, retention
deletes there, and a worker on "another host" (its own var/ directory, an empty
cache) grades a submission another worker took in."""

from __future__ import annotations

import hashlib
import io
import textwrap
import uuid
import zipfile
from datetime import timedelta

import boto3
import pytest
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from moto.server import ThreadedMotoServer

from accounts.models import User
from grading import retention, services, storage
from grading.models import Submission
from tests.grading.test_worker import wait_for
from tests.grading.tiny_lab import SOLUTIONS, make_tiny_course
from tests.grading.workers import Worker


def unique_zip(name: str = "correct") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", textwrap.dedent(SOLUTIONS[name]))
        archive.writestr("nonce.txt", uuid.uuid4().hex)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings, monkeypatch, tmp_path):
    """A fresh bucket on the loopback S3 server, configured as the store; returns a
    boto3 client and the settings a worker process needs."""
    env = {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = f"shipwright-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    settings.SHIPWRIGHT_STORAGE_URL = f"s3://{bucket}/course-data"
    settings.SHIPWRIGHT_STORE_CACHE_DIR = tmp_path / "store-cache"
    settings.SHIPWRIGHT_SNAPSHOT_DIR = tmp_path / "unused-local-snapshots"
    client.bucket = bucket  # type: ignore[attr-defined]
    client.env = {**env, "SHIPWRIGHT_STORAGE_URL": settings.SHIPWRIGHT_STORAGE_URL}  # type: ignore[attr-defined]
    return client


def keys(s3) -> set[str]:
    listing = s3.list_objects_v2(Bucket=s3.bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_an_upload_and_its_snapshot_live_in_the_object_store_not_on_the_web_host(s3, learner, tiny_lab, settings):
    submission = services.submission_receive(
        user=learner, lab=tiny_lab, upload=SimpleUploadedFile("s.zip", unique_zip())
    )
    assert keys(s3) == {f"course-data/uploads/{submission.pk}"}
    services.submission_intake(submission.pk, enqueue=False)
    submission.refresh_from_db()
    assert submission.status == "queued"
    # The upload is gone once intake has read it; the snapshot is stored by its hash.
    assert keys(s3) == {f"course-data/{submission.snapshot_sha256}.tar.gz"}
    body = s3.get_object(Bucket=s3.bucket, Key=f"course-data/{submission.snapshot_path}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == submission.snapshot_sha256
    assert not settings.SHIPWRIGHT_SNAPSHOT_DIR.exists() or not any(settings.SHIPWRIGHT_SNAPSHOT_DIR.iterdir())


def test_a_fetch_into_an_empty_cache_checks_the_hash_and_refuses_a_mismatch(s3, settings):
    data = b"snapshot bytes"
    sha = hashlib.sha256(data).hexdigest()
    name = f"{sha}.tar.gz"
    source = settings.SHIPWRIGHT_STORE_CACHE_DIR.parent / "source"
    source.write_bytes(data)
    storage.store().put_file(name, source)
    with storage.fetched(name, sha) as path:
        assert path.read_bytes() == data and path.parent == settings.SHIPWRIGHT_STORE_CACHE_DIR

    # A cached copy that no longer matches is never used: it is fetched again.
    path.chmod(0o644)
    path.write_bytes(b"tampered on this host")
    with storage.fetched(name, sha) as again:
        assert again.read_bytes() == data

    # Bytes in the store that do not match the hash the database records: refused.
    s3.put_object(Bucket=s3.bucket, Key=f"course-data/{name}", Body=b"tampered in the store")
    again.chmod(0o644)
    again.unlink()
    with pytest.raises(storage.StoreCorrupt, match="does not match its SHA-256"):
        with storage.fetched(name, sha):
            pass
    assert not (settings.SHIPWRIGHT_STORE_CACHE_DIR / name).exists()
    assert not [p for p in settings.SHIPWRIGHT_STORE_CACHE_DIR.iterdir() if p.name.startswith(".fetch-")]


def test_a_local_store_also_refuses_a_snapshot_whose_hash_does_not_match(settings, tmp_path):
    settings.SHIPWRIGHT_STORAGE_URL = ""
    settings.SHIPWRIGHT_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.SHIPWRIGHT_SNAPSHOT_DIR.mkdir()
    name = f"{hashlib.sha256(b'real').hexdigest()}.tar.gz"
    (settings.SHIPWRIGHT_SNAPSHOT_DIR / name).write_bytes(b"swapped")
    with pytest.raises(storage.StoreCorrupt):
        with storage.fetched(name, name[:64]):
            pass


def test_a_snapshot_that_fails_its_hash_check_is_a_platform_error_never_a_verdict(s3, learner, tiny_lab, settings):
    submission = services.submission_create_from_source(
        user=learner, lab=tiny_lab, upload=SimpleUploadedFile("s.zip", unique_zip()), enqueue=False
    )
    s3.put_object(Bucket=s3.bucket, Key=f"course-data/{submission.snapshot_path}", Body=b"not what was submitted")
    cached = settings.SHIPWRIGHT_STORE_CACHE_DIR / submission.snapshot_path
    cached.chmod(0o644)
    cached.unlink()  # a grading host that has never seen it
    outcome = services.submission_grade(submission.pk, worker="test")
    submission.refresh_from_db()
    assert isinstance(outcome, services.Retry)
    assert submission.status == "queued" and submission.error_message == services.GRADING_DELAYED
    assert "does not match its SHA-256" in submission.error_detail
    assert not submission.stage_runs.exists()


def test_retention_deletes_a_superseded_snapshot_from_the_object_store(s3, learner, tiny_lab, monkeypatch):
    old = services.submission_create_from_source(
        user=learner, lab=tiny_lab, upload=SimpleUploadedFile("s.zip", unique_zip("dishonest")), enqueue=False
    )
    best = services.submission_create_from_source(
        user=learner,
        lab=tiny_lab,
        upload=SimpleUploadedFile("s.zip", unique_zip()),
        enqueue=False,
        enforce_limits=False,
    )
    finished = timezone.now() - timedelta(days=40)
    Submission.objects.filter(pk=old.pk).update(status="failed", score=0, max_score=100, finished_at=finished)
    Submission.objects.filter(pk=best.pk).update(status="passed", score=100, max_score=100, finished_at=finished)
    monkeypatch.setattr(retention, "SNAPSHOT_GRACE_S", -1)  # both were stored a moment ago
    report = retention.prune(older_than_days=30)
    assert report.snapshots == 1 and report.snapshot_bytes == old.snapshot_size
    assert keys(s3) == {f"course-data/{best.snapshot_path}"}


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_another_host_with_an_empty_cache_grades_what_another_worker_took_in(
    s3, worker_env, client, tmp_path, settings
):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    lab = Lab.objects.get(slug="tiny")
    user = User.objects.create_user(email="two-hosts@example.com", password="x" * 12)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)

    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    # Two "hosts": each its own var/ directory; they share only PostgreSQL, Redis,
    # the object store and the Docker engine.
    intake_worker = Worker(
        worker_env,
        queues=[worker_env["SHIPWRIGHT_INTAKE_QUEUE"]],
        SHIPWRIGHT_VAR_DIR=str(host_a),
        **{**s3.env, "SHIPWRIGHT_SNAPSHOT_DIR": str(host_a / "snapshots")},
    )
    grading_worker = Worker(
        worker_env,
        queues=[worker_env["SHIPWRIGHT_GRADING_QUEUE"]],
        SHIPWRIGHT_VAR_DIR=str(host_b),
        **{**s3.env, "SHIPWRIGHT_SNAPSHOT_DIR": str(host_b / "snapshots")},
    )
    try:
        response = client.post("/labs/tiny-course/tiny/submit/", {"archive": SimpleUploadedFile("s.zip", unique_zip())})
        submission = Submission.objects.get(user=user)
        assert response["Location"] == submission.get_absolute_url()
        wait_for(
            lambda: Submission.objects.filter(pk=submission.pk, status__in=Submission.FINISHED).exists(),
            150,
            "a verdict",
        )
    finally:
        intake_worker.stop()
        grading_worker.stop()
    submission.refresh_from_db()
    assert submission.status == "passed", (submission.status, submission.error_detail)
    name = submission.snapshot_path
    # Host B had nothing: it fetched the snapshot from the store into its own cache
    # (checked by hash) and the lab's assets from the database.
    assert (host_b / "store-cache" / name).read_bytes() == s3.get_object(Bucket=s3.bucket, Key=f"course-data/{name}")[
        "Body"
    ].read()
    assert (host_b / "lab-assets" / lab.content_hash / ".complete").exists()
    assert not (host_b / "snapshots").exists() or not any((host_b / "snapshots").iterdir())
    assert not (host_a / "lab-assets").exists()  # the intake host never graded
    assert keys(s3) == {f"course-data/{name}"}
