"""LTI Advantage services against the test platform's real HTTP endpoints on
127.0.0.1: grade passback (AGS), the deep-linking round trip, the roster (NRPS),
and the instructor's page that shows them."""

from __future__ import annotations

import pytest
import requests
from django.core.management import call_command
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.service_connector import ServiceConnector

from config.celery import app as celery_app
from courses.models import CourseStaff
from grading.models import Submission
from lti import services, tasks
from lti.models import Context, GradeSync, LineItem, Membership
from lti.tool import registration_for
from tests.factories import UserFactory
from tests.lti.conftest import launch, text_of
from tests.lti.platform import INSTRUCTOR, LEARNER, TA

LAB = {"shipwright_course": "tiny-course", "shipwright_lab": "tiny"}


def graded(user, lab, status: str, score: float) -> Submission:
    """A finished grading as the grading service writes it, with its hook."""
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        snapshot_path="x.tar.gz",
        snapshot_sha256="0" * 64,
        status=status,
        score=score,
        max_score=100.0,
    )
    from grading import hooks

    for hook in hooks.submission_graded:
        hook(submission)
    return submission


def platform_grades(lms, context: Context) -> list[dict]:
    """Read the gradebook back through the platform's AGS result service."""
    ags = AssignmentsGradesService(
        ServiceConnector(registration_for(context.platform)),
        {"scope": context.ags_scopes, "lineitems": context.lineitems_url},
    )
    from pylti1p3.lineitem import LineItem as LtiLineItem

    return ags.get_grades(LtiLineItem({"id": LineItem.objects.get(context=context).url}))


def test_a_graded_submission_sends_the_best_score_from_a_task(
    client, lms, tiny_lab, django_capture_on_commit_callbacks
):
    launch(client, lms, user_id="lms-grace", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    user = Membership.objects.get(sub="lms-grace").user
    with django_capture_on_commit_callbacks() as callbacks:
        graded(user, tiny_lab, "passed", 80)
    # Nothing went to the LMS while grading: it is queued for after the commit.
    assert lms.scores == {}
    assert len(callbacks) == 1
    sync = GradeSync.objects.get(user=user, lab=tiny_lab)
    assert sync.status == "pending"
    tasks.grade_sync_send.apply(args=[sync.pk])
    sync.refresh_from_db()
    assert sync.status == "sent" and sync.score_given == 80.0
    # The lab's line item was created (it was missing), with the score in it.
    (item,) = lms.line_items.values()
    assert item["label"] == "Tiny lab" and item["resourceId"] == "tiny-course/tiny" and item["scoreMaximum"] == 100
    (score,) = lms.scores[item["id"]]
    assert score["userId"] == "lms-grace"
    assert score["scoreGiven"] == 80.0 and score["scoreMaximum"] == 100
    assert score["activityProgress"] == "Completed" and score["gradingProgress"] == "FullyGraded"
    assert score["timestamp"]
    # A worse attempt later still sends the best one; the line item is reused.
    graded(user, tiny_lab, "failed", 30)
    tasks.grade_sync_send.apply(args=[sync.pk])
    assert len(lms.line_items) == 1
    (result,) = platform_grades(lms, sync.context)
    assert result["userId"] == "lms-grace" and result["resultScore"] == 80.0


def test_an_lms_that_refuses_is_retried_then_shown_as_failed_and_can_be_resent(
    client, lms, tiny_lab, django_capture_on_commit_callbacks
):
    launch(client, lms, user_id="prof", roles=[INSTRUCTOR], email="prof@uni.example", custom=LAB)
    client.logout()
    launch(client, lms, user_id="lms-grace", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    user = Membership.objects.get(sub="lms-grace").user
    lms.refuse_scores = True
    graded(user, tiny_lab, "passed", 90)
    sync = GradeSync.objects.get(user=user)
    celery_app.conf.task_always_eager = True
    try:
        tasks.grade_sync_send.apply(args=[sync.pk], retries=tasks.GRADE_SYNC_RETRIES)
    finally:
        celery_app.conf.task_always_eager = False
    sync.refresh_from_db()
    assert sync.status == "failed"
    assert "503" in sync.last_error or "gradebook down" in sync.last_error
    # The course's instructor sees it and resends it once the LMS is back.
    client.force_login(Membership.objects.get(sub="prof").user)
    page = client.get(f"/lti/courses/{tiny_lab.course.slug}/")
    assert page.status_code == 200
    assert "LMS: Failed" in text_of(page)
    lms.refuse_scores = False
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/lti/syncs/{sync.pk}/resend/")
    assert response.status_code == 302 and len(callbacks) == 1
    tasks.grade_sync_send.apply(args=[sync.pk])
    page = client.get(f"/lti/courses/{tiny_lab.course.slug}/")
    assert "LMS: Sent (90%)" in text_of(page)


def test_a_learner_cannot_open_the_lms_page_or_resend(client, lms, tiny_lab):
    launch(client, lms, user_id="lms-grace", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    user = Membership.objects.get(sub="lms-grace").user
    graded(user, tiny_lab, "passed", 90)
    sync = GradeSync.objects.get(user=user)
    assert client.get(f"/lti/courses/{tiny_lab.course.slug}/").status_code == 404
    assert client.post(f"/lti/syncs/{sync.pk}/resend/").status_code == 404


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_deep_linking_round_trip_adds_a_lab_that_then_launches(client, settings, lms, tiny_lab, https):
    if https:
        settings.SECURE_SSL_REDIRECT = True
        settings.SESSION_COOKIE_SECURE = True
    response = launch(
        client, lms, user_id="prof", roles=[INSTRUCTOR], deep_link=True, with_services=False, secure=https
    )
    assert response.status_code == 302 and response["Location"] == "/lti/deep-link/pick/"
    picker = client.get("/lti/deep-link/pick/", secure=https)
    assert "Tiny course" in text_of(picker) and "Add lab: Tiny lab" in text_of(picker)
    answer = client.post("/lti/deep-link/pick/", {"course": "tiny-course", "lab": "tiny"}, secure=https)
    assert answer.status_code == 200
    assert lms.base in answer["Content-Security-Policy"]  # the form may post to the LMS
    html = answer.content.decode()
    jwt_value = html.split('name="JWT" value="')[1].split('"')[0]
    # The browser posts the answer to the LMS, which checks it against our JWKS.
    assert (
        "Added to the LMS course: Tiny lab"
        in requests.post(lms.base + "/deep-link-return", data={"JWT": jwt_value}, timeout=10).text
    )
    (item,) = lms.deep_link_items
    assert item["type"] == "ltiResourceLink"
    assert item["title"] == "Tiny lab"
    assert item["custom"] == LAB
    # The LMS now launches that content item for a student.
    client.logout()
    student = launch(
        client, lms, user_id="stu", roles=[LEARNER], email="stu@uni.example", custom=item["custom"], secure=https
    )
    assert student["Location"] == tiny_lab.get_absolute_url()
    # A used selection cannot be replayed.
    assert client.get("/lti/deep-link/pick/", secure=https).status_code == 400


def test_deep_linking_is_for_lms_instructors_only(client, lms, tiny_lab):
    response = launch(client, lms, user_id="stu", roles=[LEARNER], deep_link=True, with_services=False)
    assert response.status_code == 403
    assert "Only the LMS course's instructors" in text_of(response)


def test_the_roster_makes_lms_staff_course_staff_and_shows_beside_progress(
    client, lms, tiny_lab, django_capture_on_commit_callbacks
):
    launch(client, lms, user_id="prof", roles=[INSTRUCTOR], email="prof@uni.example", custom=LAB)
    prof = Membership.objects.get(sub="prof").user
    client.logout()
    launch(client, lms, user_id="ta-1", roles=[LEARNER], email="ta@uni.example", custom=LAB)
    client.logout()
    launch(client, lms, user_id="stu", roles=[LEARNER], email="stu@uni.example", custom=LAB)
    stu = Membership.objects.get(sub="stu").user
    graded(stu, tiny_lab, "passed", 75)
    lms.members = [
        {"user_id": "prof", "name": "Prof Ada", "email": "prof@uni.example", "roles": [INSTRUCTOR], "status": "Active"},
        {"user_id": "ta-1", "name": "Tim TA", "email": "ta@uni.example", "roles": [TA], "status": "Active"},
        {"user_id": "stu", "name": "Stu Dent", "email": "stu@uni.example", "roles": [LEARNER], "status": "Active"},
        {"user_id": "never", "name": "Nev Er", "roles": [LEARNER], "status": "Active"},
    ]
    context = Context.objects.get()
    client.force_login(prof)
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(f"/lti/contexts/{context.pk}/roster/", {"course": "tiny-course"}).status_code == 302
    assert len(callbacks) == 1  # read by a task, not by the request
    tasks.roster_sync.apply(args=[context.pk])
    assert services.roster_sync(context.pk) == 4  # a second read changes nothing
    assert ("GET", "/contexts/ctx-1/memberships") in lms.requests
    ta = Membership.objects.get(sub="ta-1").user
    assert CourseStaff.objects.get(user=ta, course=tiny_lab.course).role == "ta"
    assert CourseStaff.objects.get(user=prof, course=tiny_lab.course).role == "instructor"
    assert not CourseStaff.objects.filter(user=stu).exists()
    client.force_login(prof)
    course_page = client.get(tiny_lab.course.get_absolute_url())
    assert f'href="/lti/courses/{tiny_lab.course.slug}/"' in course_page.content.decode()
    page = text_of(client.get(f"/lti/courses/{tiny_lab.course.slug}/"))
    assert "Stu Dent" in page and "Passed 75/100" in page
    assert "Nev Er" in page and "not linked yet" in page
    assert "Tim TA" in page and "Teaching assistant" in page
    assert "stu@uni.example" in page


def test_an_auditor_sees_the_lms_page_without_e_mails_or_buttons(client, lms, tiny_lab):
    launch(client, lms, user_id="stu", roles=[LEARNER], email="stu@uni.example", custom=LAB)
    stu = Membership.objects.get(sub="stu").user
    graded(stu, tiny_lab, "passed", 75)
    auditor = CourseStaff.objects.create(
        user=UserFactory(email="qa@example.com"), course=tiny_lab.course, role="auditor"
    ).user
    client.force_login(auditor)
    page = client.get(f"/lti/courses/{tiny_lab.course.slug}/")
    assert page.status_code == 200
    assert "Passed 75/100" in text_of(page)
    assert "stu@uni.example" not in text_of(page)
    assert "Resend" not in text_of(page) and "Read the roster" not in text_of(page)
    sync = GradeSync.objects.get()
    assert client.post(f"/lti/syncs/{sync.pk}/resend/").status_code == 404
    assert client.post(f"/lti/contexts/{sync.context_id}/roster/", {"course": "tiny-course"}).status_code == 404


def test_a_learner_launched_from_the_lms_submits_and_the_score_reaches_the_gradebook(
    client, lms, tiny_lab, tmp_path, django_capture_on_commit_callbacks
):
    """The whole story with the real grader: launch, grade through the Docker
    sandbox (manage.py grade, the task's code path), the hook's task sends the score."""
    from tests.grading.tiny_lab import make_solution

    launch(client, lms, user_id="lms-grace", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call_command(
                "grade", "tiny-course/tiny", str(make_solution(tmp_path, "correct")), "--user", "grace@uni.example"
            )
    finally:
        celery_app.conf.task_always_eager = False
    (item,) = lms.line_items.values()
    (score,) = lms.scores[item["id"]]
    assert score["userId"] == "lms-grace" and score["scoreGiven"] == 100.0
    assert GradeSync.objects.get().status == "sent"


def test_an_lms_course_showing_labs_of_two_courses_syncs_both(client, lms, tiny_lab, sample_course):
    from labs.models import Lab

    other_lab = Lab.objects.get(course=sample_course, slug="train-model")
    launch(client, lms, user_id="lms-grace", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    client.logout()
    launch(
        client,
        lms,
        user_id="lms-grace",
        roles=[LEARNER],
        custom={"shipwright_course": sample_course.slug, "shipwright_lab": "train-model"},
    )
    user = Membership.objects.get(sub="lms-grace").user
    graded(user, tiny_lab, "passed", 70)
    graded(user, other_lab, "failed", 40)
    for sync in GradeSync.objects.all():
        tasks.grade_sync_send.apply(args=[sync.pk])
    sent = {item["resourceId"]: lms.scores[item_id][-1]["scoreGiven"] for item_id, item in lms.line_items.items()}
    assert sent == {"tiny-course/tiny": 70.0, "mlops-foundations/train-model": 40.0}
