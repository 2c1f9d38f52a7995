"""The learner's path in a real browser: sign up, confirm, enroll, read, answer,
see progress move."""

from __future__ import annotations

import re

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def course(transactional_db):
    from courses.importer import content_import
    from courses.models import Course
    from tests.conftest import CONTENT

    content_import(CONTENT)
    return Course.objects.get(slug="mlops-foundations")


def test_a_newcomer_signs_up_enrolls_reads_answers_and_sees_progress(page, live_server, course):
    page.goto(live_server.url + "/")
    assert "MLOps Foundations" in page.content()
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password:").fill("a sturdy passphrase 42")
    page.get_by_label("Password (again):").fill("a sturdy passphrase 42")
    page.get_by_role("button", name="Sign Up").click()
    assert "Verify Your Email Address" in page.content() or "verification" in page.content().lower()

    # The confirmation e-mail (console backend in development) carries the link.
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    page.goto(link.replace("http://testserver", live_server.url))
    page.get_by_role("button", name="Confirm").click()

    page.goto(live_server.url + "/courses/mlops-foundations/")
    page.get_by_role("button", name="Enroll in this course").click()
    # Enrolling opens the first lesson.
    assert "/courses/mlops-foundations/data-validation/" in page.url
    first_lesson = page.locator("h1").inner_text()
    page.get_by_role("button", name=re.compile("Mark as read")).click()
    assert page.locator("h1").inner_text() != first_lesson

    page.goto(live_server.url + "/dashboard/")
    assert "Continue where you left off" in page.content()
    assert "1 / 4" in page.content()  # one of the module's four lessons read

    # The knowledge check grades instantly and explains.
    from courses.models import Module
    from courses.quiz import choice_id

    module = Module.objects.get(course=course, slug="data-validation")
    page.goto(live_server.url + f"/courses/mlops-foundations/{module.slug}/quiz/")
    for question in module.questions.filter(published=True):
        page.locator(f'input[name="q-{question.key}"][value="{choice_id(question, question.answer)}"]').check()
    page.get_by_role("button", name="Check my answers").click()
    result = page.locator("#quiz-result").inner_text()
    assert "correctly (100%)" in result and "Passed" in result

    page.goto(live_server.url + "/dashboard/")
    progress = page.get_by_role("progressbar", name="MLOps Foundations")
    assert int(progress.get_attribute("aria-valuenow")) > 0


def test_the_catalog_is_usable_on_a_phone(phone, live_server, course):
    phone.goto(live_server.url + "/")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways ({width}px)"
    assert phone.get_by_role("link", name="View course").first.is_visible()
