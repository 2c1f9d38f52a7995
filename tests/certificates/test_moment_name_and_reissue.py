"""Earning a certificate is seen and e-mailed; the name on it is the learner's own
(asked at sign-up, never taken from the e-mail); a new name is a reissue."""

from __future__ import annotations

import json

import pytest
from allauth.account.models import EmailAddress
from django.db import transaction

from certificates import services
from certificates import status_list as bitstring
from certificates.models import Certificate, PendingCertificate
from certificates.verifier import verify_credential
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.factories import UserFactory
from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def tiny_course(db, tmp_path):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    return Course.objects.get(slug="tiny-course")


@pytest.fixture
def nameless(db):
    """An account from before sign-up asked for a name."""
    user = UserFactory(email="grace.hopper@example.com", display_name="")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def award(user, course, capture):
    with capture(execute=True) as callbacks:
        certificate = services.certificate_award_if_complete(user=user, course=course)
    return certificate, callbacks


# The e-mail


def test_earning_a_certificate_emails_its_verify_link_once_the_transaction_commits(
    tiny_course, learner, mailoutbox, django_capture_on_commit_callbacks
):
    pass_lab(learner, tiny_course)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        certificate = services.certificate_award_if_complete(user=learner, course=tiny_course)
    assert certificate is not None
    assert mailoutbox == []  # nothing is sent before the commit

    for callback in callbacks:
        callback()

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [learner.email]
    assert mail.subject == "[Shipwright] Your certificate: Tiny certificate"
    url = services.verify_url(certificate.public_id)
    assert url in mail.body and url in mail.alternatives[0][0]
    assert "linkedin.com/profile/add" in mail.body

    # Awarding again (another passing result) sends nothing more.
    pass_lab(learner, tiny_course)
    again, _ = award(learner, tiny_course, django_capture_on_commit_callbacks)
    assert again is None and len(mailoutbox) == 1


def test_a_rolled_back_grading_transaction_sends_no_email(
    tiny_course, learner, mailoutbox, django_capture_on_commit_callbacks
):
    pass_lab(learner, tiny_course)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.certificate_award_if_complete(user=learner, course=tiny_course)
            raise RuntimeError("the result could not be stored")
    assert callbacks == [] and mailoutbox == []
    assert not Certificate.objects.exists()


def test_a_pending_certificate_is_emailed_when_it_is_finally_issued(
    tiny_course, learner, mailoutbox, settings, tmp_path, django_capture_on_commit_callbacks
):
    key_dir = settings.SHIPWRIGHT_SIGNING_KEY_DIR
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "no-keys"
    pass_lab(learner, tiny_course)
    certificate, _ = award(learner, tiny_course, django_capture_on_commit_callbacks)
    assert certificate is None and mailoutbox == []

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = key_dir
    with django_capture_on_commit_callbacks(execute=True):
        [issued] = services.certificates_issue_pending()

    assert len(mailoutbox) == 1
    assert services.verify_url(issued.public_id) in mailoutbox[0].body


# The name on the certificate


def test_sign_up_asks_for_the_name_to_print_and_keeps_it(client, db, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    page = client.get("/accounts/signup/").content.decode()
    assert 'name="display_name"' in page
    assert "Your name as it should appear on certificates" in page
    assert "On your certificates:" in page  # the preview

    password = "a long and unusual passphrase 42"
    refused = client.post(
        "/accounts/signup/", {"email": "new@example.com", "password1": password, "password2": password}
    )
    assert refused.status_code == 200 and "This field is required." in refused.content.decode()

    client.post(
        "/accounts/signup/",
        {
            "email": "new@example.com",
            "display_name": "Grace Brewster Hopper",
            "password1": password,
            "password2": password,
        },
    )
    from accounts.models import User

    assert User.objects.get(email="new@example.com").display_name == "Grace Brewster Hopper"


def test_without_a_name_the_certificate_waits_and_never_uses_the_email(
    tiny_course, nameless, mailoutbox, django_capture_on_commit_callbacks
):
    pass_lab(nameless, tiny_course)
    certificate, _ = award(nameless, tiny_course, django_capture_on_commit_callbacks)

    assert certificate is None and not Certificate.objects.exists() and mailoutbox == []
    assert PendingCertificate.objects.get(user=nameless).reason == services.HOLDER_NAME_MISSING
    assert services.certificate_needs_name(user=nameless)
    # The reaper does not issue it either (it has no name to print).
    assert services.certificates_issue_pending() == []
    assert PendingCertificate.objects.filter(user=nameless).exists()


def test_the_learner_is_asked_for_the_name_and_giving_it_issues_the_certificate(
    tiny_course, nameless, client, mailoutbox, django_capture_on_commit_callbacks
):
    pass_lab(nameless, tiny_course)
    award(nameless, tiny_course, django_capture_on_commit_callbacks)
    client.force_login(nameless)

    dashboard = client.get("/dashboard/").content.decode()
    assert services.CERTIFICATE_NEEDS_NAME_TEXT.format(course="Tiny course") in dashboard
    assert "grace.hopper" not in dashboard.replace(nameless.email, "")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/certificates/name/", {"display_name": "Grace Hopper", "next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"

    certificate = Certificate.objects.get(user=nameless)
    assert certificate.holder_name == "Grace Hopper"
    assert json.loads(certificate.credential)["credentialSubject"]["name"] == "Grace Hopper"
    assert not PendingCertificate.objects.exists()
    assert len(mailoutbox) == 1


def test_saving_the_name_on_the_profile_issues_a_certificate_that_waited_for_it(
    tiny_course, nameless, client, django_capture_on_commit_callbacks
):
    pass_lab(nameless, tiny_course)
    award(nameless, tiny_course, django_capture_on_commit_callbacks)
    client.force_login(nameless)

    client.post("/profile/", {"display_name": "Grace Hopper"})

    assert Certificate.objects.get(user=nameless).holder_name == "Grace Hopper"


def test_the_name_field_cannot_be_emptied_on_the_profile(learner_client, learner):
    response = learner_client.post("/profile/", {"display_name": "  "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    learner.refresh_from_db()
    assert learner.display_name == "Ada Learner"


def test_the_profile_says_a_change_applies_to_future_certificates(learner_client):
    from accounts.forms import DISPLAY_NAME_FUTURE_NOTE

    page = learner_client.get("/profile/").content.decode()
    assert DISPLAY_NAME_FUTURE_NOTE in page
    assert 'On your certificates: <strong class="name-preview-value">Ada Learner</strong>' in page


# Reissue with a new name


@pytest.fixture
def renamed(tiny_course, learner, django_capture_on_commit_callbacks):
    """A learner who earned the certificate as "Ada Learner", then changed their name."""
    pass_lab(learner, tiny_course)
    old, _ = award(learner, tiny_course, django_capture_on_commit_callbacks)
    learner.display_name = "Ada King"
    learner.save()
    return old


def test_the_profile_and_dashboard_offer_a_reissue_with_the_new_name(renamed, learner_client):
    for url in ("/profile/", "/dashboard/"):
        page = learner_client.get(url).content.decode()
        assert f"/certificates/{renamed.public_id}/reissue/" in page
        assert "Reissue Tiny certificate as Ada King" in page


def test_a_reissue_revokes_the_old_as_superseded_and_the_new_links_it(
    renamed, learner_client, employer, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = learner_client.post(f"/certificates/{renamed.public_id}/reissue/")
    assert response.status_code == 302
    learner_client.logout()  # from here on, an employer with no account

    old = Certificate.objects.get(pk=renamed.pk)
    new = Certificate.objects.get(user=old.user, current=True)
    assert (old.status, old.status_reason, old.current) == ("revoked", "superseded", False)
    assert old.events.last().action == "revoked"
    assert new.replaces == old and new.holder_name == "Ada King" and new.public_id != old.public_id
    assert services.certificate_for(user=old.user, course=old.course) == new

    # The old credential's status list bit is set; the new one is clear and verifies.
    status = services.status_list_document()
    bits = bitstring.decode(status["credentialSubject"]["encodedList"])
    assert bitstring.is_set(bits, old.status_index) and not bitstring.is_set(bits, new.status_index)
    did = employer.get("/.well-known/did.json").json()
    credential = json.loads(employer.get(f"/verify/{new.public_id}/credential.json").content)
    assert verify_credential(credential, did, status_list=status).fully_verified
    old_credential = json.loads(old.credential)
    assert not verify_credential(old_credential, did, status_list=status).fully_verified
    [related] = credential["relatedResource"]
    assert related["id"] == services.verify_url(old.public_id) + "credential.json"
    assert related["digestSRI"].startswith("sha384-")
    assert old.public_id in credential["description"]

    # The pages link each other.
    old_page = employer.get(f"/verify/{old.public_id}/").content.decode()
    assert "Superseded" in old_page and f'href="/verify/{new.public_id}/"' in old_page
    new_page = employer.get(f"/verify/{new.public_id}/").content.decode()
    assert "Valid certificate" in new_page and f'href="/verify/{old.public_id}/"' in new_page

    # One e-mail for the first issue, one for the reissue.
    assert len(mailoutbox) == 2 and services.verify_url(new.public_id) in mailoutbox[1].body
    assert "reissued with your new name" in mailoutbox[1].body


def test_the_reissued_credential_verifies_with_the_command_line_verifier(renamed, client, tmp_path):
    import subprocess
    import sys

    from tests.grading.workers import REPO

    new = services.certificate_reissue(certificate=renamed)
    (tmp_path / "credential.json").write_text(new.credential)
    (tmp_path / "did.json").write_text(client.get("/.well-known/did.json").content.decode())
    run = subprocess.run(
        [sys.executable, "-m", "certificates.verifier", "credential.json", "--did", "did.json", "--offline"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_reissue_with_the_same_name_is_refused(
    tiny_course, learner, learner_client, django_capture_on_commit_callbacks
):
    pass_lab(learner, tiny_course)
    certificate, _ = award(learner, tiny_course, django_capture_on_commit_callbacks)

    with pytest.raises(services.ReissueRefused):
        services.certificate_reissue(certificate=certificate)
    learner_client.post(f"/certificates/{certificate.public_id}/reissue/")

    assert Certificate.objects.get().status == "valid"


def test_a_revoked_certificate_cannot_be_reissued(renamed):
    services.certificate_revoke(certificate=renamed, reason="Plagiarised")
    with pytest.raises(services.ReissueRefused):
        services.certificate_reissue(certificate=renamed)
    assert Certificate.objects.count() == 1


def test_another_learner_cannot_reissue_my_certificate(renamed, client, other_learner):
    client.force_login(other_learner)
    assert client.post(f"/certificates/{renamed.public_id}/reissue/").status_code == 404
    assert Certificate.objects.get().status == "valid"


def test_deleting_the_account_withdraws_superseded_certificates_too(renamed, learner, client):
    from accounts.services import user_delete

    new = services.certificate_reissue(certificate=renamed)
    user_delete(user=learner)

    for certificate in (renamed, new):
        page = client.get(f"/verify/{certificate.public_id}/").content.decode()
        assert "Ada" not in page and "Name removed at the request of the holder" in page


# The moment, on the verdict and course pages


def test_the_passing_verdict_that_completes_the_course_shows_the_certificate(
    tiny_course, learner, learner_client, django_capture_on_commit_callbacks
):
    submission = pass_lab(learner, tiny_course)
    certificate, _ = award(learner, tiny_course, django_capture_on_commit_callbacks)

    page = learner_client.get(f"/submissions/{submission.pk}/").content.decode()
    assert 'id="certificate-moment"' in page and "You completed Tiny course" in page
    assert f'href="/verify/{certificate.public_id}/"' in page
    assert services.verify_url(certificate.public_id) in page
    assert "linkedin.com/profile/add" in page

    from courses.models import Enrollment

    Enrollment.objects.create(user=learner, course=tiny_course)
    course_page = learner_client.get("/courses/tiny-course/").content.decode()
    assert "Your progress: complete" in course_page and "Course complete" in course_page
    dashboard = learner_client.get("/dashboard/").content.decode()
    assert "Course complete" in dashboard and "% complete" not in dashboard


def test_a_failed_verdict_and_a_staff_view_show_no_certificate_moment(
    tiny_course, learner, learner_client, instructor, client, django_capture_on_commit_callbacks
):
    from grading.models import Submission

    passed = pass_lab(learner, tiny_course)
    award(learner, tiny_course, django_capture_on_commit_callbacks)
    failed = pass_lab(learner, tiny_course, score=10.0)
    Submission.objects.filter(pk=failed.pk).update(status=Submission.Status.FAILED)

    assert 'id="certificate-moment"' not in learner_client.get(f"/submissions/{failed.pk}/").content.decode()
    client.force_login(instructor)
    assert 'id="certificate-moment"' not in client.get(f"/submissions/{passed.pk}/").content.decode()


def test_a_verdict_whose_certificate_waits_for_the_name_asks_for_it(
    tiny_course, nameless, client, django_capture_on_commit_callbacks
):
    submission = pass_lab(nameless, tiny_course)
    award(nameless, tiny_course, django_capture_on_commit_callbacks)
    client.force_login(nameless)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert services.CERTIFICATE_NEEDS_NAME_TEXT.format(course="Tiny course") in page
    assert 'action="/certificates/name/"' in page


def test_a_reissue_without_a_signing_key_changes_nothing(renamed, learner_client, settings, tmp_path):
    from certificates.views import REISSUE_LATER

    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "no-keys"
    response = learner_client.post(f"/certificates/{renamed.public_id}/reissue/", follow=True)

    assert REISSUE_LATER in response.content.decode()
    old = Certificate.objects.get()
    assert (old.status, old.current, old.holder_name) == ("valid", True, "Ada Learner")
