"""The verify page is rendered once per distinct set of inputs and then served from
memory (certificates.views.verify): every change to what the verdict rests on shows
on the very next request, one visitor's page is never served to another, and the
page still costs one query."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from certificates import services
from certificates.models import Certificate, StatusList
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.tiny_lab import make_tiny_course

VALID = "Valid certificate"


@pytest.fixture
def certificate(db, tmp_path, learner):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    course = Course.objects.get(slug="tiny-course")
    pass_lab(learner, course)
    return services.certificate_award_if_complete(user=learner, course=course)


def page(client, certificate) -> str:
    response = client.get(f"/verify/{certificate.public_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_tampering_after_a_visit_shows_on_the_next_request(certificate, employer):
    assert VALID in page(employer, certificate)
    original = certificate.credential
    credential = json.loads(original)
    credential["credentialSubject"]["name"] = "Mallory"
    Certificate.objects.filter(pk=certificate.pk).update(credential=json.dumps(credential))

    tampered = page(employer, certificate)
    assert "Not valid" in tampered and VALID not in tampered

    Certificate.objects.filter(pk=certificate.pk).update(credential=original)
    assert VALID in page(employer, certificate)


def test_a_tampered_status_list_after_a_visit_fails_on_the_next_request(certificate, employer):
    assert VALID in page(employer, certificate)
    status_list = json.loads(StatusList.objects.get(slug=services.STATUS_LIST_SLUG).credential)
    status_list["validFrom"] = "2001-01-01T00:00:00Z"  # no longer what was signed
    StatusList.objects.filter(slug=services.STATUS_LIST_SLUG).update(credential=json.dumps(status_list))

    tampered = page(employer, certificate)
    assert "Not valid" in tampered and VALID not in tampered


def test_a_revocation_after_a_visit_shows_on_the_next_request(certificate, employer):
    assert VALID in page(employer, certificate)
    call_command("revoke_certificate", certificate.public_id, "--reason", "Plagiarised capstone", stdout=io.StringIO())

    revoked = page(employer, certificate)
    assert "Revoked" in revoked and "Plagiarised capstone" in revoked and VALID not in revoked


def test_hiding_after_a_visit_gives_the_404_on_the_next_request(certificate, employer):
    assert VALID in page(employer, certificate)
    Certificate.objects.filter(pk=certificate.pk).update(public=False)
    assert employer.get(f"/verify/{certificate.public_id}/").status_code == 404


def test_a_rotation_after_a_visit_keeps_the_certificate_valid(certificate, employer, settings, tmp_path):
    import shutil

    assert VALID in page(employer, certificate)
    shutil.copytree(settings.SHIPWRIGHT_SIGNING_KEY_DIR, tmp_path / "keys")
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "keys"
    call_command("generate_signing_key", stdout=io.StringIO())
    assert len(employer.get("/.well-known/did.json").json()["assertionMethod"]) == 2
    assert VALID in page(employer, certificate)


def test_a_signed_in_visitor_gets_their_own_page_and_an_anonymous_one_never_does(certificate, learner):
    employer, learner_client = Client(), Client()
    learner_client.force_login(learner)
    assert "Log out" not in page(employer, certificate)
    mine = page(learner_client, certificate)
    assert "Log out" in mine and VALID in mine
    anonymous = page(employer, certificate)
    assert "Log out" not in anonymous and "Log in" in anonymous


def test_an_anonymous_visitor_gets_no_cookie(certificate, employer):
    page(employer, certificate)
    response = employer.get(f"/verify/{certificate.public_id}/")
    assert response.status_code == 200 and not response.cookies


def test_the_page_asks_the_database_once(certificate, employer):
    page(employer, certificate)
    with CaptureQueriesContext(connection) as queries:
        assert VALID in page(employer, certificate)
    assert len(queries.captured_queries) == 1


@pytest.mark.parametrize("cache", ["redis", "local memory"])
def test_the_rate_limit_holds_with_either_cache(certificate, client, settings, cache):
    if cache == "local memory":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    elif not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.fail("the tests run with a Redis cache (SHIPWRIGHT_CACHE_URL or REDIS_URL)")
    settings.SHIPWRIGHT_VERIFY_RATE_LIMIT = (3, 60)
    codes = [client.get(f"/verify/{certificate.public_id}/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_a_reissued_certificate_links_both_ways_after_visits(certificate, learner, employer):
    assert VALID in page(employer, certificate)
    learner.display_name = "Ada Lovelace"
    learner.save(update_fields=["display_name"])
    new = services.certificate_reissue(certificate=certificate, by=learner)

    old_page = page(employer, certificate)
    assert "Superseded" in old_page and f"/verify/{new.public_id}/" in old_page
    new_page = page(employer, new)
    assert VALID in new_page and f"/verify/{certificate.public_id}/" in new_page
