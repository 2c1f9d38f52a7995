"""Run with `python -m pytest -q` after `python train.py`. Add your own tests:
one valid request, and one per kind of malformed request (instructions.md)."""

from fastapi.testclient import TestClient

from api import app

client = TestClient(app)


def test_health_says_ok():
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
