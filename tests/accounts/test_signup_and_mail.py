"""Sign-up: errors under the field they are about, a confirmation link that signs the
learner in (in the browser that signed up), and e-mails that say who sends them, in
plain text and HTML."""

from __future__ import annotations

import logging
import re
import time
from types import SimpleNamespace

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.test.html import Element, parse_html

from accounts.mail import mail_send, mail_send_template
from tests.html import attr, elements

SIGNUP = "/accounts/signup/"
GOOD_PASSWORD = "a sturdy passphrase 42"


def field_group(html: str, name: str) -> Element:
    """The element that holds the input `name` and its label, errors and help."""
    (group,) = elements(
        parse_html(html),
        lambda e: "field" in attr(e, "class").split() and elements(e, lambda i: attr(i, "name") == name),
    )
    return group


def errors_after_input(group: Element, name: str) -> list[str]:
    """The error messages that follow the input `name` inside its field group."""
    children = [child for child in group.children if isinstance(child, Element)]
    position = next(i for i, child in enumerate(children) if attr(child, "name") == name)
    for child in children[:position]:
        assert "errorlist" not in attr(child, "class"), "an error is shown above its field"
    return [
        " ".join(str(part) for part in item.children)
        for child in children[position + 1 :]
        if "errorlist" in attr(child, "class")
        for item in elements(child, lambda e: e.name == "li")
    ]


def signup(
    client: Client, email: str = "newcomer@example.com", password: str = GOOD_PASSWORD, again: str | None = None
):
    return client.post(
        SIGNUP,
        {"email": email, "display_name": "Nia Newcomer", "password1": password, "password2": again or password},
    )


def confirmation_link() -> str:
    return re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)


@pytest.mark.django_db
def test_a_refused_password_is_explained_under_the_password_field(client):
    response = signup(client, password="short")
    assert response.status_code == 200
    page = response.content.decode()
    errors = errors_after_input(field_group(page, "password1"), "password1")
    assert errors == ["This password is too short. It must contain at least 8 characters."]
    password = elements(parse_html(page), lambda e: attr(e, "name") == "password1")[0]
    assert attr(password, "aria-invalid") == "true" and "id_password1_error" in attr(password, "aria-describedby")
    assert errors_after_input(field_group(page, "email"), "email") == []
    assert not EmailAddress.objects.exists()


@pytest.mark.django_db
def test_passwords_that_differ_are_reported_under_the_second_one(client):
    page = signup(client, again="another sturdy passphrase").content.decode()
    assert errors_after_input(field_group(page, "password2"), "password2") == [
        "You must type the same password each time."
    ]
    assert errors_after_input(field_group(page, "password1"), "password1") == []


@pytest.mark.django_db
def test_the_log_in_form_keeps_its_remember_me_box_and_says_what_went_wrong(client, learner):
    page = client.post("/accounts/login/", {"login": learner.email, "password": "wrong"}).content.decode()
    assert "The email address and/or password you specified are not correct." in page
    assert elements(parse_html(page), lambda e: attr(e, "name") == "remember" and attr(e, "type") == "checkbox")


@pytest.mark.django_db
def test_confirming_in_the_browser_that_signed_up_signs_the_learner_in(client):
    response = signup(client)
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    link = confirmation_link()
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert EmailAddress.objects.get(email="newcomer@example.com").verified
    assert client.get("/dashboard/").status_code == 200
    assert client.session["_auth_user_id"] == str(EmailAddress.objects.get().user_id)


@pytest.mark.django_db
def test_confirming_an_hour_later_still_signs_the_learner_in(client, monkeypatch):
    signup(client)
    later = time.time() + 3600
    # allauth times out a pending login after ACCOUNT_LOGIN_TIMEOUT (15 minutes unless set).
    monkeypatch.setattr("allauth.account.internal.stagekit.time", SimpleNamespace(time=lambda: later))
    response = client.post(confirmation_link())
    assert response["Location"] == "/dashboard/" and "_auth_user_id" in client.session


@pytest.mark.django_db
def test_a_link_opened_in_another_browser_confirms_without_signing_in(client):
    signup(client)
    elsewhere = Client()
    response = elsewhere.post(confirmation_link())
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert EmailAddress.objects.get(email="newcomer@example.com").verified
    assert "_auth_user_id" not in elsewhere.session
    assert elsewhere.get("/dashboard/").status_code == 302


def html_of(message) -> str:
    (html,) = [content for content, kind in message.alternatives if kind == "text/html"]
    return html


@pytest.mark.django_db
def test_the_confirmation_mail_names_the_site_in_text_and_html(client, settings):
    settings.SITE_NAME = "Harbour School"
    signup(client)
    (message,) = mail.outbox
    assert message.subject == "[Harbour School] Confirm your e-mail address to finish signing up"
    assert "Welcome to Harbour School!" in message.body and "Harbour School\n" in message.body
    html = html_of(message)
    link = confirmation_link()
    assert "Welcome to Harbour School!" in html and f'href="{link}"' in html
    assert message.from_email == settings.DEFAULT_FROM_EMAIL


@pytest.mark.django_db
def test_every_allauth_mail_names_the_site_and_has_an_html_alternative(client, learner, settings):
    settings.SITE_NAME = "Harbour School"
    client.post("/accounts/password/reset/", {"email": learner.email})
    client.post("/accounts/password/reset/", {"email": "nobody@example.com"})  # "unknown account"
    # Signing up with a taken address looks like any sign-up; its owner is told by mail.
    assert signup(Client(), email=learner.email)["Location"] == "/accounts/confirm-email/"
    assert len(mail.outbox) == 3 and mail.outbox[2].to == [learner.email]
    for message in mail.outbox:
        assert message.subject.startswith("[Harbour School] ")
        assert "Harbour School" in message.body
        assert "Harbour School" in html_of(message)
        assert "Hello from testserver" not in message.body
    reset_link = re.search(r"https?://\S+/accounts/password/reset/key/\S+/", mail.outbox[0].body).group(0)
    assert f'href="{reset_link}"' in html_of(mail.outbox[0])


@pytest.mark.django_db
def test_the_sites_own_mails_are_signed_and_escaped_in_html(settings):
    settings.SITE_NAME = "Harbour School"
    mail_send(to=["staff@example.com"], subject="Grading\nis delayed", text='Reason: <script>alert("x")</script>')
    (message,) = mail.outbox
    assert message.subject == "[Harbour School] Grading is delayed"
    assert message.body.endswith(f"-- \nHarbour School\n{settings.SITE_URL}/\n")
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Harbour School" in html


@pytest.mark.django_db
def test_a_templated_mail_uses_its_html_template_when_there_is_one(settings):
    mail_send_template(
        to=["learner@example.com"],
        template_prefix="account/email/email_confirmation_signup",
        context={"email": "learner@example.com", "activate_url": "https://example.com/confirm/"},
    )
    (message,) = mail.outbox
    assert message.subject == f"[{settings.SITE_NAME}] Confirm your e-mail address to finish signing up"
    assert 'class="button" href="https://example.com/confirm/"' in html_of(message)


@pytest.mark.django_db
def test_djangos_error_report_to_the_admins_names_the_site_and_has_html(settings, rf):
    settings.ADMINS = [("Ops", "ops@example.com")]
    request = rf.get("/boom/")
    logging.getLogger("django.request").error(
        "Internal Server Error: %s", "/boom/", extra={"status_code": 500, "request": request}
    )
    (message,) = mail.outbox
    assert message.to == ["ops@example.com"]
    assert message.subject.startswith(f"[{settings.SITE_NAME}] ERROR")
    assert "Internal Server Error: /boom/" in message.body and "Internal Server Error: /boom/" in html_of(message)
