import pytest

from tests.grading.tiny_lab import make_tiny_course


@pytest.fixture
def tiny_lab(db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    content_import(make_tiny_course(tmp_path / "content"))
    return Lab.objects.get(slug="tiny")
