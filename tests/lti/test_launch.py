"""LTI 1.3 launches from a real platform (tests/lti/platform.py, on lti1p3platform):
OIDC login initiation, resource-link launch, account linking, and the launches that
must be refused (tampered, expired, replayed, unknown issuer or deployment)."""

from __future__ import annotations

import base64
import json

from accounts.models import User
from courses.models import CourseStaff, Enrollment
from lti.models import Identity, Membership
from lti.tool import LAUNCH_REPLAYED
from tests.lti.conftest import launch, local, oidc_login, text_of
from tests.lti.platform import INSTRUCTOR, LEARNER

LAB = {"shipwright_course": "tiny-course", "shipwright_lab": "tiny"}


def test_a_learner_lands_signed_in_on_the_lab_with_an_account_made_from_the_claims(client, lms, tiny_lab):
    response = launch(
        client, lms, user_id="lms-user-1", roles=[LEARNER], name="Grace Hopper", email="grace@uni.example", custom=LAB
    )
    assert response.status_code == 302
    assert response["Location"] == tiny_lab.get_absolute_url()
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Lab: Tiny lab" in text_of(page)
    user = User.objects.get(email="grace@uni.example")
    assert user.display_name == "Grace Hopper"
    assert page.wsgi_request.user == user
    assert Identity.objects.get(platform=lms.row, sub="lms-user-1").user == user
    assert Enrollment.objects.filter(user=user, course=tiny_lab.course).exists()
    assert not CourseStaff.objects.filter(user=user).exists()


def test_the_next_launch_opens_the_same_account(client, lms, tiny_lab):
    launch(client, lms, user_id="lms-user-1", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    client.logout()
    launch(client, lms, user_id="lms-user-1", roles=[LEARNER], email="grace@uni.example", custom=LAB)
    assert User.objects.filter(email="grace@uni.example").count() == 1
    assert Identity.objects.count() == 1


def test_a_platform_that_sends_no_email_or_name_still_gets_an_account(client, lms, tiny_lab):
    response = launch(client, lms, user_id="anon-7", roles=[LEARNER], custom=LAB)
    assert response.status_code == 302
    user = Identity.objects.get(sub="anon-7").user
    assert user.email.endswith("@lti.invalid")
    assert not user.has_usable_password()


def test_a_signed_in_account_is_linked_once(client, lms, tiny_lab, learner):
    client.force_login(learner)
    launch(client, lms, user_id="lms-ada", roles=[LEARNER], email="ada@uni.example", custom=LAB)
    assert Identity.objects.get(sub="lms-ada").user == learner
    # The same account cannot be linked to a second user of that LMS.
    refused = launch(client, lms, user_id="lms-someone-else", roles=[LEARNER], custom=LAB)
    assert refused.status_code == 400
    assert "already linked to another user of this LMS" in text_of(refused)
    assert not Identity.objects.filter(sub="lms-someone-else").exists()


def test_an_existing_email_links_only_after_signing_in(client, lms, tiny_lab, learner):
    response = launch(client, lms, user_id="lms-ada", roles=[LEARNER], email=learner.email, custom=LAB)
    assert response.status_code == 302
    assert response["Location"] == "/lti/link/"
    assert not Identity.objects.exists()
    assert User.objects.filter(email=learner.email).count() == 1
    # Not signed in: the link page asks for the password first.
    assert client.get("/lti/link/").status_code == 302
    client.force_login(learner)
    page = client.get("/lti/link/")
    assert "Link this account to your Test LMS user" in text_of(page)
    done = client.post("/lti/link/")
    assert done["Location"] == tiny_lab.get_absolute_url()
    assert Identity.objects.get(sub="lms-ada").user == learner


def test_an_lms_instructor_becomes_an_instructor_of_the_course(client, lms, tiny_lab):
    launch(client, lms, user_id="prof-1", roles=[INSTRUCTOR], email="prof@uni.example", custom=LAB)
    prof = User.objects.get(email="prof@uni.example")
    assert CourseStaff.objects.get(user=prof, course=tiny_lab.course).role == "instructor"
    member = Membership.objects.get(sub="prof-1")
    assert list(member.context.courses.all()) == [tiny_lab.course]
    assert member.context.lineitems_url == lms.lineitems_url


def _flip_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_id_token_is_refused_and_makes_no_account(client, lms, tiny_lab):
    response = launch(client, lms, user_id="lms-user-1", roles=[LEARNER], custom=LAB, tamper=_flip_payload)
    assert response.status_code == 400
    assert "Your LMS's launch could not be accepted" in text_of(response)
    assert "Signature verification failed" in text_of(response)
    assert not User.objects.exists() and not Identity.objects.exists()


def test_an_expired_id_token_is_refused(client, lms, tiny_lab):
    response = launch(client, lms, user_id="lms-user-1", roles=[LEARNER], custom=LAB, expires_in=-120)
    assert response.status_code == 400
    assert "Signature has expired" in text_of(response)
    assert not User.objects.exists()


def test_a_replayed_launch_is_refused(client, lms, tiny_lab):
    first = launch(client, lms, user_id="lms-user-1", roles=[LEARNER], email="g@uni.example", custom=LAB)
    assert first.status_code == 302
    client.logout()
    again = client.post(
        local(first.form["launch_url"]), {"id_token": first.form["id_token"], "state": first.form["state"]}
    )
    assert again.status_code == 400
    assert LAUNCH_REPLAYED in text_of(again)
    assert "_auth_user_id" not in client.session


def test_an_unknown_issuer_is_refused_at_login(client, lms):
    url = lms.login_initiation_url(user_id="u").replace("iss=", "iss=https%3A%2F%2Fevil.example&x=")
    response = client.get(local(url))
    assert response.status_code == 400
    assert "Could not find registration details" in text_of(response)


def test_an_id_token_from_an_issuer_no_longer_registered_is_refused(client, lms, tiny_lab):
    _, params = oidc_login(client, lms, user_id="u1")
    form = lms.authorize(params, user_id="u1", roles=[LEARNER], custom=LAB)
    lms.row.active = False
    lms.row.save()
    response = client.post(local(form["launch_url"]), {"id_token": form["id_token"], "state": form["state"]})
    assert response.status_code == 400
    assert "Registration not found" in text_of(response)
    assert not User.objects.exists()


def test_opening_the_launch_url_directly_explains_itself(client):
    response = client.get("/lti/launch/")
    assert response.status_code == 405
    assert "open the activity from your LMS" in text_of(response)


def test_an_unknown_deployment_is_refused(client, lms, tiny_lab):
    lms.row.deployment_ids = ["another-deployment"]
    lms.row.save()
    response = launch(client, lms, user_id="lms-user-1", roles=[LEARNER], custom=LAB)
    assert response.status_code == 400
    assert "Unable to find deployment" in text_of(response)
    assert not User.objects.exists()


def test_a_link_to_a_missing_lab_says_so(client, lms, tiny_lab):
    response = launch(
        client,
        lms,
        user_id="u1",
        roles=[LEARNER],
        custom={"shipwright_course": "tiny-course", "shipwright_lab": "nope"},
    )
    assert response.status_code == 400
    assert "not available on Shipwright" in text_of(response)
    assert not User.objects.exists() and not Identity.objects.exists()


def test_a_post_without_an_id_token_gets_the_error_page(client, lms):
    response = client.post("/lti/launch/", {"state": "state-x"})
    assert response.status_code == 400
    assert "Your LMS's launch could not be accepted" in text_of(response)


def test_old_nonces_are_forgotten_by_maintenance(client, lms, tiny_lab):
    from datetime import timedelta

    from django.utils import timezone

    from grading import hooks
    from lti import services
    from lti.models import UsedNonce

    launch(client, lms, user_id="u1", roles=[LEARNER], custom=LAB)
    UsedNonce.objects.update(created_at=timezone.now() - timedelta(days=3))
    assert services.used_nonces_prune in hooks.maintenance  # the reaper's tick runs it
    services.used_nonces_prune()
    assert not UsedNonce.objects.exists()


def test_over_https_only_the_launch_flow_cookies_are_samesite_none(client, settings, lms, tiny_lab):
    # What production turns on when DJANGO_DEBUG is off (config/settings.py).
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    login_response, _ = oidc_login(client, lms, user_id="u1", secure=True)
    lti_cookies = [c for name, c in login_response.cookies.items() if name.startswith("lti1p3")]
    assert lti_cookies, "the login initiation sets the state and launch-session cookies"
    for cookie in lti_cookies:
        assert cookie["samesite"] == "None" and cookie["secure"] and cookie["httponly"]
    response = launch(client, lms, user_id="u1", roles=[LEARNER], custom=LAB, secure=True, email="u1@uni.example")
    assert response.status_code == 302
    assert response["Location"] == tiny_lab.get_absolute_url()
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["samesite"] == "Lax" and session_cookie["secure"]
    assert client.get(response["Location"], secure=True).status_code == 200
