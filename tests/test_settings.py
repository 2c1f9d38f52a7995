"""Production settings refuse to start without what they need, and pass Django's
deployment checklist when given it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SHIPWRIGHT_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_refuses_to_start_without_a_secret_key():
    run = manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="shipwright.example")
    assert run.returncode != 0
    assert "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is required" in run.stderr


def test_a_bad_boolean_is_named():
    run = manage("check", DJANGO_DEBUG="maybe")
    assert run.returncode != 0 and "DJANGO_DEBUG must be a boolean" in run.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    from certificates import signing

    secret = tmp_path / "secret"
    secret.write_text("x" * 20 + "-production-secret-key-with-enough-entropy-0123456789")
    # Production needs the issuer's key too (without one, certificates.W001 says so).
    signing.save_private_key_file(signing.generate_private_key(), tmp_path / "issuer.pem")
    run = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY_FILE=str(secret),
        DJANGO_ALLOWED_HOSTS="shipwright.example",
        SHIPWRIGHT_SIGNING_KEY_FILE=str(tmp_path / "issuer.pem"),
        SHIPWRIGHT_SIGNING_KEY_ID="key-1",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no issues" in run.stdout


def test_the_database_password_comes_from_a_secret_file(tmp_path):
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cret-from-a-file\n")
    run = manage(
        "shell",
        "-c",
        "from django.conf import settings; d = settings.DATABASES['default']; print(d['USER'], d['PASSWORD'], d['HOST'])",
        DJANGO_DEBUG="1",
        DATABASE_URL="postgresql://shipwright@postgres:5432/shipwright",
        DATABASE_PASSWORD_FILE=str(secret),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].split() == ["shipwright", "s3cret-from-a-file", "postgres"]
