"""The signing-key system check: a missing or unusable key is found at start, with
the command that fixes it, and a machine without a key can still run `check`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from certificates import system_checks


@pytest.fixture
def no_key_in_environment(monkeypatch):
    for name in ("SHIPWRIGHT_SIGNING_KEY", "SHIPWRIGHT_SIGNING_KEY_FILE", "SHIPWRIGHT_SIGNING_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


def test_an_empty_key_folder_is_a_warning_that_names_generate_signing_key(settings, tmp_path, no_key_in_environment):
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "empty"
    (tmp_path / "empty").mkdir()

    [message] = system_checks.check_signing_key()

    assert message.id == "certificates.W001"
    assert message.msg == system_checks.NO_KEY_MESSAGE
    assert "`python manage.py generate_signing_key`" in message.hint
    assert not message.is_serious()  # migrate and runserver still run


def test_a_key_file_that_cannot_be_read_is_an_error_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIPWRIGHT_SIGNING_KEY_FILE", str(tmp_path / "gone.pem"))
    monkeypatch.setenv("SHIPWRIGHT_SIGNING_KEY_ID", "key-1")

    [message] = system_checks.check_signing_key()

    assert message.id == "certificates.E001"
    assert str(tmp_path / "gone.pem") in message.msg
    assert "generate_signing_key" in message.hint
    assert message.is_serious()


def test_a_key_that_is_not_a_key_is_an_error(settings, tmp_path, no_key_in_environment):
    (tmp_path / "key-3.pem").write_text("not a key\n")
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path

    [message] = system_checks.check_signing_key()

    assert message.id == "certificates.E001"
    assert "key-3.pem cannot be loaded" in message.msg


def test_a_usable_key_raises_nothing():
    assert system_checks.check_signing_key() == []


def test_manage_py_check_still_succeeds_without_a_key_and_says_what_to_run(settings, tmp_path, no_key_in_environment):
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path
    err = io.StringIO()

    call_command("check", "--tag", "shipwright", stdout=io.StringIO(), stderr=err)

    assert "certificates.W001" in err.getvalue()
    assert "python manage.py generate_signing_key" in err.getvalue()


def test_a_process_that_never_signs_is_not_asked_for_a_key(settings, tmp_path, no_key_in_environment):
    # A grading worker (SHIPWRIGHT_SIGNS_CERTIFICATES=0, set by the image's worker role)
    # must not hold the key: its absence there is right, not a problem.
    settings.SHIPWRIGHT_SIGNING_KEY_DIR = tmp_path / "empty"
    settings.SHIPWRIGHT_SIGNS_CERTIFICATES = False

    assert system_checks.check_signing_key() == []
