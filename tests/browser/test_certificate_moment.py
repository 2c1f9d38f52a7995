"""The certificate moment in Chromium, at desktop and phone size: the verdict that
completes a course shows the certificate with its share and LinkedIn links, the
course page says complete; a learner without a name gives it where the
certificate waits; a new name is a reissue that the old page points to."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from certificates import services
from certificates.models import Certificate
from tests.browser.conftest import log_in
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.factories import UserFactory
from tests.grading.tiny_lab import make_tiny_course

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = ["page", "phone"]


@pytest.fixture
def tiny_course(transactional_db, tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


@pytest.fixture(params=SIZES)
def screen(request):
    return request.getfixturevalue(request.param)


def enroll(user, course):
    from courses.models import Enrollment

    Enrollment.objects.get_or_create(user=user, course=course)


def assert_fits(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport + 1, f"the page scrolls sideways ({width}px in {viewport}px)"


def test_the_last_passing_verdict_shows_the_certificate_and_the_course_is_complete(
    screen, live_server, tiny_course, learner
):
    enroll(learner, tiny_course)
    submission = pass_lab(learner, tiny_course)
    # What the grading transaction does on a pass (here autocommitted: the e-mail goes at once).
    certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    assert [m.to for m in mail.outbox] == [[learner.email]]
    log_in(screen, live_server, learner)

    screen.goto(live_server.url + f"/submissions/{submission.pk}/")
    moment = screen.locator("#certificate-moment")
    assert moment.is_visible()
    assert "You completed Tiny course" in moment.inner_text()
    assert "Ada Learner" in moment.inner_text()
    view = moment.get_by_role("link", name="View your certificate")
    assert view.get_attribute("href") == f"/verify/{certificate.public_id}/"
    share = moment.get_by_role("link", name="Share")
    assert share.get_attribute("href") == services.verify_url(certificate.public_id)
    linkedin = moment.get_by_role("link", name="Add to LinkedIn profile")
    assert linkedin.get_attribute("href").startswith("https://www.linkedin.com/profile/add?")
    assert certificate.public_id in linkedin.get_attribute("href")
    for link in (view, share, linkedin):
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= screen.viewport_size["width"] + 1
    assert_fits(screen)

    view.click()
    assert "Valid certificate" in screen.locator("#status-banner").inner_text()

    screen.goto(live_server.url + "/courses/tiny-course/")
    assert "Your progress: complete" in screen.content()
    assert screen.locator("#certificate-moment").get_by_role("heading", name="Course complete").is_visible()
    assert "Continue: " not in screen.content()
    assert_fits(screen)


def test_a_learner_without_a_name_gives_it_on_the_verdict_page_and_gets_the_certificate(
    screen, live_server, tiny_course
):
    nameless = UserFactory(email="grace.hopper@example.com", display_name="")
    EmailAddress.objects.create(user=nameless, email=nameless.email, verified=True, primary=True)
    submission = pass_lab(nameless, tiny_course)
    assert services.certificate_award_if_complete(user=nameless, course=tiny_course) is None
    log_in(screen, live_server, nameless)

    screen.goto(live_server.url + f"/submissions/{submission.pk}/")
    moment = screen.locator("#certificate-moment")
    assert "tell us the name to print on your certificate" in moment.inner_text()
    assert "grace.hopper" not in moment.inner_text()
    field = moment.get_by_label("Your name as it should appear on certificates")
    field.fill("Grace Brewster Hopper")
    # The preview shows the name as the certificate will print it, as it is typed.
    assert moment.locator(".name-preview-value").inner_text() == "Grace Brewster Hopper"
    assert_fits(screen)
    moment.get_by_role("button", name="Issue my certificate").click()

    assert f"/submissions/{submission.pk}/" in screen.url
    moment = screen.locator("#certificate-moment")
    assert "Grace Brewster Hopper" in moment.inner_text()
    assert moment.get_by_role("link", name="Add to LinkedIn profile").is_visible()
    certificate = Certificate.objects.get(user=nameless)
    assert certificate.holder_name == "Grace Brewster Hopper"
    assert len(mail.outbox) == 1 and services.verify_url(certificate.public_id) in mail.outbox[0].body


def test_a_new_name_on_the_profile_is_reissued_and_the_old_page_points_to_the_new(
    screen, browser, live_server, tiny_course, learner
):
    pass_lab(learner, tiny_course)
    old = services.certificate_award_if_complete(user=learner, course=tiny_course)
    log_in(screen, live_server, learner)

    screen.goto(live_server.url + "/profile/")
    assert "A change applies to certificates issued from now on." in screen.content()
    screen.get_by_label("Your name as it should appear on certificates").fill("Ada King")
    assert screen.locator(".name-preview-value").first.inner_text() == "Ada King"
    screen.get_by_role("button", name="Save", exact=True).click()
    assert_fits(screen)
    screen.get_by_role("button", name="Reissue Tiny certificate as Ada King").click()

    assert screen.url.endswith("/dashboard/")
    assert "reissued with the name Ada King" in screen.content()
    new = Certificate.objects.get(user=learner, current=True)
    assert new.holder_name == "Ada King" and new.replaces_id == old.pk

    employer = browser.new_context().new_page()
    employer.goto(live_server.url + f"/verify/{old.public_id}/")
    banner = employer.locator("#status-banner")
    assert "Superseded" in banner.inner_text()
    banner.get_by_role("link").click()
    assert re.search(rf"/verify/{new.public_id}/$", employer.url)
    assert "Valid certificate" in employer.locator("#status-banner").inner_text()
    assert "Ada King" in employer.locator("#holder").inner_text()
    assert employer.locator("#replaces").get_by_role("link").get_attribute("href") == f"/verify/{old.public_id}/"
    employer.context.close()
