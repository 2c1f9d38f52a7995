"""Safe regrades (issue 10): a preview runs the lab's current grader into shadow
results and shows the diff without touching anything live; applying it (replace,
or keep the higher) keeps the replaced results as history for the learner and the
staff; a regrade's checks replace the old set, so a renamed check leaves no row.

Graded for real: the tiny lab in Docker, through the same runner as a grading."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from django.utils import timezone

from certificates.models import Certificate
from courses.importer import content_import
from courses.models import CourseStaff, Enrollment
from grading import regrade_views, regrades, services
from grading.intake import snapshot_from_directory
from grading.models import CheckResult, MetricSample, RegradeBatch, RegradeItem, ResultHistory, Submission
from tests.factories import UserFactory
from tests.grading.tiny_lab import LAB_YAML, make_tiny_course, write

# The learners' solutions: all three are graded under the lab as it is (v1), then
# previewed under v2, which requires an `f1` number and accepts accuracy >= 0.5.
GOOD = """
import json
json.dump({"accuracy": 1.0, "f1": 1.0, "predictions": [1, 0, 1, 1]}, open("out.json", "w"))
"""
NO_F1 = """
import json
json.dump({"accuracy": 1.0, "predictions": [1, 0, 1, 1]}, open("out.json", "w"))
"""
HALF_RIGHT = """
import json
json.dump({"accuracy": 1.0, "f1": 0.5, "predictions": [1, 0, 0, 0]}, open("out.json", "w"))
"""


def text_of(html: str) -> str:
    """What a reader sees of `html`: tags dropped, entities decoded, blanks collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split()).replace(" .", ".").replace(" ;", ";")


OLD_CHECK = "out.json exists with a number"
NEW_CHECK = "out.json reports accuracy and f1"


def lab_yaml_v2() -> str:
    text = LAB_YAML.replace(
        "  - {name: out.json exists with a number, kind: files, stage: run, paths: [out.json], json: [out.json], "
        "numbers: {out.json: [accuracy]}, points: 20}",
        f"  - {{name: {NEW_CHECK}, kind: files, stage: run, paths: [out.json], json: [out.json], "
        "numbers: {out.json: [accuracy, f1]}, points: 20, required: true}",
    ).replace("min: 0.75", "min: 0.5")
    assert text != LAB_YAML and NEW_CHECK in text and "min: 0.5" in text
    return text


def reimport_v2(root: Path) -> None:
    """The instructor changes the lab's grader and imports the content again."""
    write(root / "tiny-course/labs/tiny/lab.yaml", lab_yaml_v2())
    content_import(root)


def solution(tmp_path: Path, name: str, code: str) -> Path:
    write(tmp_path / "solutions" / name / "main.py", code)
    return tmp_path / "solutions" / name


def graded(user, lab, folder: Path) -> Submission:
    """A submission graded for real, in this process, as the worker would."""
    snapshot = snapshot_from_directory(folder, dest_dir=services.snapshot_dir(), limits=services.intake_limits())
    submission = services.submission_create(user=user, lab=lab, snapshot=snapshot, enforce_limits=False, enqueue=False)
    services.submission_grade(submission.pk, worker="test")
    submission.refresh_from_db()
    return submission


@pytest.fixture
def content_root(tmp_path) -> Path:
    return make_tiny_course(tmp_path / "content")


@pytest.fixture
def lab(db, content_root):
    from labs.models import Lab

    content_import(content_root)
    return Lab.objects.get(slug="tiny")


@pytest.fixture
def sent(monkeypatch):
    """Shadow gradings handed to the broker, captured instead of sent."""
    messages = []
    monkeypatch.setattr("grading.tasks.preview_regrade_item.apply_async", lambda **kw: messages.append(kw["args"][0]))
    return messages


@pytest.fixture
def cohort(lab, tmp_path):
    """Three learners graded under v1: one passes either way, one passes only under
    v1 (no f1), one fails under v1 (accuracy 0.5) and passes under v2."""
    people = {
        "good": UserFactory(email="good@example.com"),
        "no_f1": UserFactory(email="nof1@example.com"),
        "half": UserFactory(email="half@example.com"),
    }
    codes = {"good": GOOD, "no_f1": NO_F1, "half": HALF_RIGHT}
    subs = {key: graded(user, lab, solution(tmp_path, key, codes[key])) for key, user in people.items()}
    assert [subs[k].status for k in ("good", "no_f1", "half")] == ["passed", "passed", "failed"]
    return people, subs


@pytest.fixture
def instructor_client(client, instructor, lab):
    CourseStaff.objects.create(user=instructor, course=lab.course, role=CourseStaff.Role.INSTRUCTOR)
    client.force_login(instructor)
    return client


def live_state(lab) -> tuple:
    return (
        list(Submission.objects.filter(lab=lab).order_by("pk").values()),
        list(CheckResult.objects.filter(submission__lab=lab).order_by("pk").values()),
        list(MetricSample.objects.order_by("pk").values_list("name", "labels", "value")),
        list(Certificate.objects.order_by("pk").values_list("pk", "status")),
        ResultHistory.objects.count(),
    )


def preview(client, lab, sent, django_capture_on_commit_callbacks, **data) -> RegradeBatch:
    """Start a preview from the page, then run its shadow gradings as the worker would."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/instructor/labs/tiny-course/tiny/regrades/", {"scope": "latest", **data})
    batch = RegradeBatch.objects.filter(lab=lab).latest("created_at")
    assert response["Location"] == f"/instructor/regrades/{batch.pk}/"
    assert sorted(sent) == sorted(batch.items.values_list("pk", flat=True))
    for item_id in sent:
        assert isinstance(regrades.regrade_item_grade(item_id, worker="test"), RegradeItem)
    sent.clear()
    return batch


def rows_of(page: str) -> dict[str, str]:
    """The learner rows of the preview page: e-mail -> the row's text."""
    body = page.split('class="regrade-rows"', 1)[1]
    return {
        m.group(1): text_of(m.group(0))
        for m in re.finditer(r"<tr class=\"change-[^\"]+\">\s*<td>([^<]+)</td>.*?</tr>", body, re.S)
    }


def test_a_preview_shows_the_diff_and_changes_nothing_live(
    lab, cohort, content_root, instructor_client, sent, django_capture_on_commit_callbacks
):
    people, subs = cohort
    reimport_v2(content_root)
    before = live_state(lab)
    batch = preview(instructor_client, lab, sent, django_capture_on_commit_callbacks)
    assert live_state(lab) == before  # statuses, check rows, metrics, certificates, history

    diff = regrades.regrade_batch_diff(batch)
    assert diff.done and diff.total == 3 and diff.errors == 0
    assert diff.counts == {"pass_to_fail": 1, "fail_to_pass": 1, "up": 0, "down": 0, "same": 1}
    checks = {c.name: c for c in diff.checks}
    assert (checks[NEW_CHECK].added, checks[OLD_CHECK].removed) == (3, 3)
    assert checks["predictions are accurate"].fail_to_pass == 1

    page = instructor_client.get(batch.get_absolute_url()).content.decode()
    assert "hx-get" not in page  # done: no more polling
    rows = rows_of(page)
    assert "pass → fail" in rows["nof1@example.com"] and "100 / 100" in rows["nof1@example.com"]
    assert "fail → pass" in rows["half@example.com"] and "80 / 100" in rows["half@example.com"]
    assert "predictions are accurate: failed → passed" in rows["half@example.com"]
    assert "unchanged" in rows["good@example.com"]
    assert "Apply regrade" in page


def test_the_preview_page_polls_while_items_are_being_graded(lab, cohort, instructor_client, sent):
    batch = regrades.regrade_preview_start(lab=lab, user=None, scope="all")
    page = instructor_client.get(batch.get_absolute_url()).content.decode()
    assert f'hx-get="/instructor/regrades/{batch.pk}/progress/"' in page
    assert "3 still to grade" in text_of(page) and "Apply regrade" not in page
    response = instructor_client.post(f"/instructor/regrades/{batch.pk}/apply/", {"policy": "replace"})
    assert regrades.STILL_GRADING.format(pending=3, total=3) in [m.message for m in response.wsgi_request._messages]
    assert not ResultHistory.objects.exists()


def test_apply_with_replace_makes_the_preview_live_and_keeps_history(
    lab, cohort, content_root, instructor_client, instructor, client, sent, django_capture_on_commit_callbacks
):
    people, subs = cohort
    reimport_v2(content_root)
    batch = preview(instructor_client, lab, sent, django_capture_on_commit_callbacks)
    certificates_before = set(Certificate.objects.values_list("user__email", "status"))
    response = instructor_client.post(f"/instructor/regrades/{batch.pk}/apply/", {"policy": "replace"})
    assert regrade_views.APPLIED.format(policy="Replace", applied=3, kept=0, skipped=0) in [
        m.message for m in response.wsgi_request._messages
    ]
    for sub in subs.values():
        sub.refresh_from_db()
    assert [(subs[k].status, subs[k].score) for k in ("good", "no_f1", "half")] == [
        ("passed", 100.0),
        ("failed", 80.0),
        ("passed", 80.0),
    ]
    # The new set of checks replaced the old one: the renamed check left no row.
    names = set(CheckResult.objects.filter(submission=subs["no_f1"]).values_list("name", flat=True))
    assert NEW_CHECK in names and OLD_CHECK not in names
    assert (
        subs["no_f1"].result["status"] == "failed"
        and subs["no_f1"].lab_hash == lab.__class__.objects.get(pk=lab.pk).content_hash
    )
    history = ResultHistory.objects.get(submission=subs["no_f1"])
    assert (history.previous_status, history.previous_score, history.status, history.score) == (
        "passed",
        100.0,
        "failed",
        80.0,
    )
    assert OLD_CHECK in [c["name"] for c in history.previous_checks]
    # A pass -> fail regrade revokes nothing; the learner who now passes is owed theirs,
    # which the signing worker issues.
    from certificates import services as certificate_services

    certificate_services.certificates_issue_pending()
    after = set(Certificate.objects.values_list("user__email", "status"))
    assert certificates_before <= after
    assert ("half@example.com", "valid") in after
    # A second apply is refused and changes nothing.
    response = instructor_client.post(f"/instructor/regrades/{batch.pk}/apply/", {"policy": "keep_higher"})
    assert any("was applied on" in m.message for m in response.wsgi_request._messages)
    assert ResultHistory.objects.count() == 3

    # The learner sees what changed on their submission page; so does the instructor.
    client.force_login(people["no_f1"])
    learner_page = text_of(client.get(f"/submissions/{subs['no_f1'].pk}/").content.decode())
    today = history.regraded_at.strftime("%Y-%m-%d")
    assert f"Regraded on {today}: was 100, now 80 (of 100); passed → failed." in learner_page
    assert "Previewed regrade" not in learner_page  # who did it is for the staff
    client.force_login(instructor)  # the same test client as instructor_client
    staff_page = text_of(client.get(f"/submissions/{subs['no_f1'].pk}/").content.decode())
    assert f"Regraded on {today}: was 100, now 80" in staff_page
    assert "Previewed regrade (replace) by instructor@example.com" in staff_page
    # The preview page now says what was applied, against the results it replaced.
    page = client.get(batch.get_absolute_url()).content.decode()
    assert "pass → fail" in rows_of(page)["nof1@example.com"] and "Apply regrade" not in page


def test_apply_keeping_the_higher_never_lowers_a_result(
    lab, cohort, content_root, instructor_client, sent, django_capture_on_commit_callbacks, monkeypatch
):
    from grading import hooks

    graded = []
    monkeypatch.setattr(hooks, "submission_graded", [*hooks.submission_graded, graded.append])
    people, subs = cohort
    reimport_v2(content_root)
    batch = preview(instructor_client, lab, sent, django_capture_on_commit_callbacks)
    report = regrades.regrade_batch_apply(batch=batch, policy="keep_higher", user=None)
    assert (report.applied, report.kept, report.skipped) == (1, 2, 0)
    # What follows a grading follows an applied result too (e.g. the LMS gets the new best score).
    assert [submission.pk for submission in graded] == [subs["half"].pk]
    for sub in subs.values():
        sub.refresh_from_db()
    assert [(subs[k].status, subs[k].score) for k in ("good", "no_f1", "half")] == [
        ("passed", 100.0),
        ("passed", 100.0),
        ("passed", 80.0),
    ]
    assert set(ResultHistory.objects.values_list("submission", flat=True)) == {subs["half"].pk}
    # The kept ones keep their rows as they were, old check name included.
    assert OLD_CHECK in set(CheckResult.objects.filter(submission=subs["no_f1"]).values_list("name", flat=True))
    outcomes = dict(batch.items.values_list("submission__user__email", "outcome"))
    assert outcomes == {"good@example.com": "kept", "nof1@example.com": "kept", "half@example.com": "applied"}


def test_a_preview_of_selected_submissions_grades_only_those(
    lab, cohort, instructor_client, sent, django_capture_on_commit_callbacks
):
    people, subs = cohort
    batch = preview(
        instructor_client, lab, sent, django_capture_on_commit_callbacks, scope="selected", submission=[subs["half"].pk]
    )
    assert list(batch.items.values_list("submission", flat=True)) == [subs["half"].pk]
    # Same grader as live: nothing would change.
    assert regrades.regrade_batch_diff(batch).counts["same"] == 1


def test_the_lab_changing_after_a_preview_refuses_its_apply(
    lab, cohort, content_root, instructor_client, sent, django_capture_on_commit_callbacks
):
    batch = preview(instructor_client, lab, sent, django_capture_on_commit_callbacks)
    reimport_v2(content_root)
    with pytest.raises(regrades.RegradeRefused, match=re.escape(regrades.LAB_CHANGED)):
        regrades.regrade_batch_apply(batch=batch, policy="replace", user=None)
    assert not ResultHistory.objects.exists()


def test_a_direct_regrade_replaces_the_check_set_and_keeps_history(lab, content_root, tmp_path, learner, client):
    """The stale-row rule on the everyday path: "Regrade" after a check was renamed."""
    submission = graded(learner, lab, solution(tmp_path, "good", GOOD))
    assert OLD_CHECK in set(submission.check_results.values_list("name", flat=True))
    reimport_v2(content_root)
    assert services.submission_regrade(submission=submission)
    services.submission_grade(submission.pk, worker="test")
    submission.refresh_from_db()
    assert submission.status == "passed"
    names = list(submission.check_results.values_list("name", flat=True))
    assert NEW_CHECK in names and OLD_CHECK not in names and len(names) == 5
    assert [t["name"] for t in submission.result["tests"]] == names
    history = submission.result_history.get()
    assert history.kind == "regrade" and OLD_CHECK in [c["name"] for c in history.previous_checks]
    client.force_login(learner)
    page = text_of(client.get(f"/submissions/{submission.pk}/").content.decode())
    assert "Regraded on" in page and "was 100, now 100" in page and OLD_CHECK not in page.split("Checks before")[0]


def test_a_first_grading_has_no_history(lab, tmp_path, learner):
    submission = graded(learner, lab, solution(tmp_path, "good", GOOD))
    assert not submission.result_history.exists()


# --- Who may do what: preview (instructors, TAs), apply (instructors) -----------------


ROLES = ["instructor", "ta", "auditor", "other_course_instructor", "learner"]


@pytest.fixture
def people_and_batch(lab, learner):
    from tests.factories import CourseFactory

    other = CourseFactory(slug="other-course")
    people = {role: UserFactory(email=f"{role}.role@example.com") for role in ROLES}
    for role in ("instructor", "ta", "auditor"):
        CourseStaff.objects.create(user=people[role], course=lab.course, role=role)
    CourseStaff.objects.create(user=people["other_course_instructor"], course=other, role="instructor")
    Enrollment.objects.create(user=people["learner"], course=lab.course)
    submission = Submission.objects.create(
        user=learner,
        lab=lab,
        source_kind="archive",
        snapshot_path="a" * 64 + ".tar.gz",
        snapshot_sha256="a" * 64,
        status="failed",
        score=40.0,
        max_score=100.0,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        result={"status": "failed", "score": 40.0, "max_score": 100.0, "tests": []},
    )
    batch = RegradeBatch.objects.create(lab=lab, scope="all", lab_hash=lab.content_hash)
    RegradeItem.objects.create(
        batch=batch,
        submission=submission,
        status="done",
        shadow_status="passed",
        shadow_score=80.0,
        shadow_max_score=100.0,
        shadow_checks=[
            {
                "name": "c",
                "status": "passed",
                "score": 80.0,
                "max_score": 100.0,
                "required": True,
                "output": "",
                "hint_html": "",
            }
        ],
    )
    return people, batch, submission


def test_each_role_against_the_regrade_pages(client, people_and_batch, sent):
    people, batch, submission = people_and_batch
    urls = {
        "previews": ("get", "/instructor/labs/tiny-course/tiny/regrades/"),
        "batch": ("get", f"/instructor/regrades/{batch.pk}/"),
        "progress": ("get", f"/instructor/regrades/{batch.pk}/progress/"),
    }
    seen = {}
    for role in ROLES:
        client.force_login(people[role])
        seen[role] = {name: getattr(client, method)(url).status_code for name, (method, url) in urls.items()}
    may_preview = {"instructor", "ta"}
    assert seen == {role: {name: 200 if role in may_preview else 404 for name in urls} for role in ROLES}
    client.logout()
    assert client.get(urls["batch"][1])["Location"].startswith("/accounts/login/")


def test_only_instructors_apply_and_only_instructors_and_tas_start_a_preview(client, people_and_batch, sent):
    people, batch, submission = people_and_batch
    for role in ("ta", "auditor", "other_course_instructor", "learner"):
        client.force_login(people[role])
        assert client.post(f"/instructor/regrades/{batch.pk}/apply/", {"policy": "replace"}).status_code == 404
    for role in ("auditor", "other_course_instructor", "learner"):
        client.force_login(people[role])
        assert client.post("/instructor/labs/tiny-course/tiny/regrades/", {"scope": "all"}).status_code == 404
    submission.refresh_from_db()
    assert submission.status == "failed" and RegradeBatch.objects.count() == 1 and sent == []
    client.force_login(people["ta"])
    page = client.get(f"/instructor/regrades/{batch.pk}/").content.decode()
    assert "Apply regrade" not in page and "Only the course's instructors can apply" in page
    assert client.post("/instructor/labs/tiny-course/tiny/regrades/", {"scope": "all"}).status_code == 302
    assert RegradeBatch.objects.count() == 2
    client.force_login(people["instructor"])
    assert "Apply regrade" in client.get(f"/instructor/regrades/{batch.pk}/").content.decode()
    client.post(f"/instructor/regrades/{batch.pk}/apply/", {"policy": "replace"})
    submission.refresh_from_db()
    assert (submission.status, submission.score) == ("passed", 80.0)


def test_a_bad_selection_is_refused_with_a_message_and_writes_nothing(client, people_and_batch, sent):
    people, batch, submission = people_and_batch
    client.force_login(people["instructor"])
    for data, message in [
        ({"scope": "selected"}, regrades.NOTHING_SELECTED),
        ({"scope": "selected", "submission": ["not-a-uuid"]}, regrades.NOT_REGRADABLE.format(count=1)),
        (
            {"scope": "selected", "submission": [str(submission.pk), "00000000-0000-0000-0000-000000000000"]},
            regrades.NOT_REGRADABLE.format(count=1),
        ),
    ]:
        response = client.post("/instructor/labs/tiny-course/tiny/regrades/", data)
        assert message in [m.message for m in response.wsgi_request._messages]
    assert RegradeBatch.objects.count() == 1 and sent == []


def test_an_unknown_policy_is_refused(people_and_batch):
    people, batch, submission = people_and_batch
    with pytest.raises(regrades.RegradeRefused, match=re.escape(regrades.BAD_POLICY)):
        regrades.regrade_batch_apply(batch=batch, policy="average", user=None)
