from __future__ import annotations

import pytest
from django.urls import reverse

from courses.models import Enrollment, LessonProgress, QuizAttempt
from tests.factories import CourseFactory, LessonFactory, ModuleFactory


@pytest.fixture
def course(db):
    course = CourseFactory(slug="demo", title="Demo course", summary="Learn demo things.")
    module = ModuleFactory(course=course, slug="basics", title="Basics", quiz_pass_mark=50)
    LessonFactory(module=module, slug="first", title="First lesson", order=0, body_html="<p>Lesson one body</p>")
    LessonFactory(module=module, slug="second", title="Second lesson", order=1)
    module.questions.create(
        key="q1",
        order=0,
        prompt_html="<p>Two plus two?</p>",
        choices_html=["<p>3</p>", "<p>4</p>"],
        answer=1,
        explanation_html="<p>Arithmetic.</p>",
    )
    return course


def test_the_catalog_lists_published_courses_only(client, course):
    CourseFactory(slug="secret", title="Secret course", published=False)
    page = client.get("/").content.decode()
    assert "Demo course" in page and "Learn demo things." in page
    assert "Secret course" not in page


def test_an_unpublished_course_is_404_for_learners_but_previewable_by_its_staff(client, learner, instructor):
    from courses.models import CourseStaff

    draft = CourseFactory(slug="draft", title="Draft course", published=False)
    client.force_login(learner)
    assert client.get("/courses/draft/").status_code == 404
    client.force_login(instructor)
    assert client.get("/courses/draft/").status_code == 404  # site staff alone: the admin only
    CourseStaff.objects.create(user=instructor, course=draft, role="auditor")
    response = client.get("/courses/draft/")
    assert response.status_code == 200 and "staff preview" in response.content.decode()


def test_unknown_urls_are_404(client, course):
    assert client.get("/courses/nope/").status_code == 404
    assert client.get("/courses/demo/nope/").status_code == 404


def test_a_learner_must_enroll_before_reading_a_lesson(learner_client, course):
    url = "/courses/demo/basics/first/"
    response = learner_client.get(url)
    assert response.status_code == 302 and response["Location"] == "/courses/demo/"
    learner_client.post(reverse("courses:course-enroll", args=["demo"]))
    response = learner_client.get(url)
    assert response.status_code == 200 and "Lesson one body" in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in_for_lessons(client, course):
    response = client.get("/courses/demo/basics/first/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_enrolling_is_idempotent_and_needs_post(learner_client, learner, course):
    assert learner_client.get("/courses/demo/enroll/").status_code == 405
    learner_client.post("/courses/demo/enroll/")
    learner_client.post("/courses/demo/enroll/")
    assert Enrollment.objects.filter(user=learner).count() == 1


def test_marking_a_lesson_read_moves_progress_and_goes_to_the_next(learner_client, learner, course):
    learner_client.post("/courses/demo/enroll/")
    response = learner_client.post("/courses/demo/basics/first/")
    assert response["Location"] == "/courses/demo/basics/second/"
    assert LessonProgress.objects.filter(user=learner, lesson__slug="first").exists()
    dashboard = learner_client.get("/dashboard/").content.decode()
    assert "1 / 2" in dashboard
    assert "Continue where you left off" in dashboard


def test_the_knowledge_check_grades_instantly_and_explains(learner_client, learner, course):
    from courses.quiz import choice_id

    learner_client.post("/courses/demo/enroll/")
    url = "/courses/demo/basics/quiz/"
    question = course.modules.get().questions.get()
    page = learner_client.post(url, {"q-q1": choice_id(question, 0)}, follow=True).content.decode()
    assert "You answered 0 of 1 correctly" in page and "Arithmetic." in page
    page = learner_client.post(url, {"q-q1": choice_id(question, 1)}, follow=True).content.decode()
    assert "You answered 1 of 1 correctly" in page and "Passed" in page
    assert QuizAttempt.objects.filter(user=learner, passed=True).count() == 1


def test_an_unanswered_knowledge_check_shows_a_field_error(learner_client, course):
    learner_client.post("/courses/demo/enroll/")
    response = learner_client.post("/courses/demo/basics/quiz/", {})
    assert response.status_code == 400
    assert "Choose an answer." in response.content.decode()
    assert not QuizAttempt.objects.exists()


def test_the_profile_sets_the_display_name(learner_client, learner):
    response = learner_client.post("/profile/", {"display_name": "Ada L."})
    assert response.status_code == 302
    learner.refresh_from_db()
    assert learner.display_name == "Ada L."


def test_csrf_protection_stays_on(client, learner, course):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner)
    assert strict.post("/courses/demo/enroll/").status_code == 403
