"""HTML typed into the admin is sanitised like imported content, and every page carries
a Content-Security-Policy that forbids inline script (issue 9)."""

from __future__ import annotations

import pytest

from courses.models import Lesson, Question
from tests.factories import CourseFactory, LessonFactory, ModuleFactory, UserFactory

HOSTILE = (
    '<p>Hello</p><script>window.pwned = 1</script><img src="x" onerror="alert(1)"><a href="javascript:alert(1)">x</a>'
)


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_a_lesson_body_saved_in_the_admin_is_sanitised_like_imported_content(admin_client):
    lesson = LessonFactory()
    response = admin_client.post(
        f"/admin/courses/lesson/{lesson.pk}/change/",
        {
            "module": lesson.module.pk,
            "slug": lesson.slug,
            "title": lesson.title,
            "order": 0,
            "minutes": 10,
            "body_html": HOSTILE,
            "published": "on",
            "content_hash": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lesson.refresh_from_db()
    assert lesson.body_html == '<p>Hello</p><img src="x"><a rel="noopener noreferrer">x</a>'


def test_every_html_field_is_sanitised_on_save(db):
    module = ModuleFactory(quiz_pass_mark=50)
    course = module.course
    course.description_html = HOSTILE
    course.save()
    question = Question.objects.create(
        module=module,
        key="q",
        prompt_html=HOSTILE,
        choices_html=[HOSTILE, "<b>ok</b>"],
        answer=1,
        explanation_html=HOSTILE,
    )
    course.refresh_from_db()
    question.refresh_from_db()
    for html in [course.description_html, question.prompt_html, question.choices_html[0], question.explanation_html]:
        assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert question.choices_html[1] == "<b>ok</b>"


def test_sanitising_keeps_imported_content_as_it_was(sample_course):
    for lesson in Lesson.objects.filter(module__course=sample_course)[:5]:
        before = lesson.body_html
        lesson.save()
        assert lesson.body_html == before


@pytest.mark.parametrize("url", ["/", "/courses/demo/", "/accounts/login/", "/admin/login/", "/no/such/page/"])
def test_every_page_forbids_inline_script(client, db, url):
    CourseFactory(slug="demo")
    policy = client.get(url)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert "unsafe-inline" not in directives["style-src"]
