"""/healthz, the probe of load balancers and containers: no login, and it says when
the database or the broker is gone."""

from __future__ import annotations

import socket

import pytest

from config import views


@pytest.fixture
def fresh_probe(monkeypatch):
    """Each test's probe connects anew (the module keeps one broker client per process)."""
    monkeypatch.setattr(views, "_broker", None)
    monkeypatch.setattr(views, "_broker_check", None)


def test_healthz_answers_ok_without_login_when_database_and_broker_answer(client, db, fresh_probe, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "Set-Cookie" not in response.headers


def test_livez_answers_while_the_broker_is_gone(client, settings):
    """Liveness asks nothing of the database or the broker: an orchestrator must not
    restart a web process because a dependency is down (that is /healthz's answer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/livez")
    assert (response.status_code, response.content) == (200, b"ok")
    assert "Set-Cookie" not in response.headers


def test_healthz_names_the_broker_when_it_is_gone(client, db, fresh_probe, settings):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.content == b"unavailable: broker"
