"""A certificate whose course has a prerequisite: issued once the prerequisite's
certificate exists, it links that credential (signed), and the verify page shows it."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from certificates import services
from certificates.verifier import verify_credential
from courses.importer import content_import
from courses.models import Course
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.courses.test_prerequisites import add_course
from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def courses(db, tmp_path):
    root = make_tiny_course(tmp_path / "content")
    add_course(root, "tiny-next", ["tiny-course"], title="Tiny next")
    content_import(root)
    return Course.objects.get(slug="tiny-course"), Course.objects.get(slug="tiny-next")


def test_the_second_certificate_waits_for_the_first_then_links_it(courses, learner, client):
    first, second = courses
    pass_lab(learner, second)
    # Every lab passed, but the certificate it builds on does not exist yet.
    assert services.certificate_award_if_complete(user=learner, course=second) is None
    assert services.certificate_award_later(user=learner, course=second) is False

    client.force_login(learner)
    learner.enrollments.create(course=second)
    page = client.get(second.get_absolute_url()).content.decode()
    assert services.CERTIFICATE_NEEDS_PREREQUISITE_TEXT.format(course="Tiny next", missing="Tiny course") in page

    # Earning the prerequisite issues the waiting certificate in the same process.
    pass_lab(learner, first)
    prior = services.certificate_award_if_complete(user=learner, course=first)
    assert prior is not None
    issued = services.certificate_for(user=learner, course=second)
    assert issued is not None
    assert issued.prerequisites == [
        {
            "course": "tiny-course",
            "title": "Tiny certificate",
            "public_id": prior.public_id,
            "issued": f"{prior.issued_at:%Y-%m-%d}",
        }
    ]

    credential = json.loads(client.get(f"/verify/{issued.public_id}/credential.json").content)
    prior_url = services.verify_url(prior.public_id)
    achievement = credential["credentialSubject"]["achievement"]
    assert achievement["name"] == "Tiny next certificate"
    assert "It builds on Tiny certificate." in achievement["description"]
    assert achievement["criteria"]["narrative"].endswith("Hold the certificate Tiny certificate first.")
    linked = [item for item in credential["evidence"] if item["id"] == prior_url]
    assert linked and linked[0]["name"] == "Prerequisite: Tiny certificate"
    # relatedResource carries the digest of the prerequisite credential's served bytes.
    served = client.get(f"/verify/{prior.public_id}/credential.json").content
    digest = "sha384-" + base64.b64encode(hashlib.sha384(served).digest()).decode()
    assert {"id": f"{prior_url}credential.json", "mediaType": "application/vc+ld+json", "digestSRI": digest} in (
        credential["relatedResource"]
    )
    # Still a valid signed credential with the new entries.
    did = client.get("/.well-known/did.json").json()
    assert verify_credential(credential, did, status_list=client.get("/status/revocation").json()).fully_verified

    client.logout()
    page = client.get(f"/verify/{issued.public_id}/").content.decode()
    assert 'id="builds-on"' in page
    assert f'href="/verify/{prior.public_id}/">Tiny certificate</a>' in page


def test_a_course_without_prerequisites_links_nothing(courses, learner):
    first, _ = courses
    pass_lab(learner, first)
    issued = services.certificate_award_if_complete(user=learner, course=first)
    credential = json.loads(issued.credential)
    assert issued.prerequisites == []
    assert "relatedResource" not in credential
    assert all("Prerequisite" not in item["name"] for item in credential["evidence"])


def test_a_revoked_prerequisite_certificate_does_not_count(courses, learner):
    first, second = courses
    pass_lab(learner, first)
    prior = services.certificate_award_if_complete(user=learner, course=first)
    services.certificate_revoke(certificate=prior, reason="issued in error")
    pass_lab(learner, second)
    assert services.certificate_award_if_complete(user=learner, course=second) is None
    assert [c.slug for c in services.missing_prerequisites(user=learner, course=second)] == ["tiny-course"]
