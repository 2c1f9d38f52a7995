"""A failed knowledge check and a refused sign-up password, in Chromium at desktop and
phone size: the learner sees what was wrong, where, and why, and nothing more."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def module(transactional_db):
    from courses.importer import content_import
    from courses.models import Module
    from tests.conftest import CONTENT

    content_import(CONTENT)
    return Module.objects.get(course__slug="mlops-foundations", slug="training")


def _log_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def _shown_choices(page, key: str) -> list[str]:
    return [text.strip() for text in page.locator(f'label.choice:has(input[name="q-{key}"])').all_inner_texts()]


@pytest.mark.parametrize("size", ["page", "phone"])
def test_a_failed_knowledge_check_says_which_answers_were_wrong_and_why_but_not_the_right_ones(
    request, size, live_server, module, learner
):
    browser_page = request.getfixturevalue(size)
    _log_in(browser_page, live_server, learner)
    browser_page.goto(live_server.url + "/courses/mlops-foundations/")
    browser_page.get_by_role("button", name="Enroll in this course").click()

    url = live_server.url + f"/courses/mlops-foundations/{module.slug}/quiz/"
    browser_page.goto(url)
    questions = list(module.questions.filter(published=True))
    first_order = {q.key: _shown_choices(browser_page, q.key) for q in questions}
    browser_page.reload()
    assert {q.key: _shown_choices(browser_page, q.key) for q in questions} == first_order

    # Wrong answers to the first two questions (clicked by their text), right ones elsewhere.
    wrong = {q.key: next(i for i in range(len(q.choices_html)) if i != q.answer) for q in questions[:2]}
    for question in questions:
        index = wrong.get(question.key, question.answer)
        text = re.sub(r"<[^>]+>", "", question.choices_html[index]).strip()
        label = browser_page.locator(f'label.choice:has(input[name="q-{question.key}"])', has_text=text)
        label.first.click()
    browser_page.get_by_role("button", name="Check my answers").click()

    result = browser_page.locator("#quiz-result")
    assert "Not passed" in result.inner_text()
    for question in questions[:2]:
        feedback = browser_page.locator(f"#question-{question.key}")
        assert "Not quite" in feedback.inner_text()
        assert "Your answer: not this one" in feedback.inner_text()
        assert feedback.locator(".explanation").is_visible()
        assert feedback.locator(".choice.correct").count() == 0
    assert browser_page.get_by_text("The right answer").count() == 0
    assert browser_page.evaluate("document.documentElement.scrollWidth") <= browser_page.viewport_size["width"] + 1

    # The link to a wrong question jumps to its feedback; "Try again" brings a new order.
    result.get_by_role("link", name="question 1").click()
    assert browser_page.url.endswith(f"#question-{questions[0].key}")
    browser_page.get_by_role("link", name="Try again").click()
    second_order = {q.key: _shown_choices(browser_page, q.key) for q in questions}
    assert all(second_order[key] != first_order[key] for key in first_order)
    assert browser_page.locator("input[type=radio]:checked").count() == 0


@pytest.mark.parametrize("size", ["page", "phone"])
def test_a_refused_sign_up_password_is_explained_under_the_password_field(request, size, live_server):
    browser_page = request.getfixturevalue(size)
    browser_page.goto(live_server.url + "/accounts/signup/")
    browser_page.get_by_label("Email").fill(f"newcomer-{size}@example.com")
    browser_page.get_by_label("Password:").fill("short")
    browser_page.get_by_label("Password (again):").fill("short")
    browser_page.get_by_role("button", name="Sign Up").click()

    error = browser_page.get_by_text("This password is too short.")
    password = browser_page.get_by_label("Password:")
    assert error.is_visible()
    assert password.get_attribute("aria-invalid") == "true"
    # Under the password field, before the next one, and no wider than the screen.
    error_box, password_box = error.bounding_box(), password.bounding_box()
    again_box = browser_page.get_by_label("Password (again):").bounding_box()
    assert password_box["y"] + password_box["height"] <= error_box["y"] < again_box["y"]
    assert error_box["x"] + error_box["width"] <= browser_page.viewport_size["width"]
    assert browser_page.evaluate("document.documentElement.scrollWidth") <= browser_page.viewport_size["width"] + 1
    # The screen reader hears the error with the field.
    assert "id_password1_error" in password.get_attribute("aria-describedby")

    browser_page.get_by_label("Password:").fill("a sturdy passphrase 42")
    browser_page.get_by_label("Password (again):").fill("a sturdy passphrase 42")
    browser_page.get_by_role("button", name="Sign Up").click()
    assert browser_page.get_by_role("heading", name="Verify Your Email Address").is_visible()


def test_the_confirmation_link_opened_in_the_same_browser_signs_the_learner_in(page, live_server):
    page.goto(live_server.url + "/accounts/signup/")
    page.get_by_label("Email").fill("same-browser@example.com")
    page.get_by_label("Password:").fill("a sturdy passphrase 42")
    page.get_by_label("Password (again):").fill("a sturdy passphrase 42")
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_role("heading", name="Verify Your Email Address").wait_for()

    (message,) = mail.outbox
    assert message.subject.startswith(f"[{settings.SITE_NAME}] ")
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body).group(0)
    page.goto(link.replace("http://testserver", live_server.url))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    assert page.get_by_role("button", name="Log out").is_visible()
