import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api import app

client = TestClient(app)
ROW = pd.read_csv("data/train.csv").drop(columns=["target"]).iloc[0].tolist()


def test_health_says_ok():
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_predict_returns_one_label_per_row():
    response = client.post("/predict", json={"features": [ROW, ROW, ROW]})
    assert response.status_code == 200
    assert response.json()["predictions"] in ([0, 0, 0], [1, 1, 1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"features": [ROW[:29]]}},
        {"json": {"features": [["abc"] * 30]}},
        {"json": {"rows": [ROW]}},
        {"content": b"not json", "headers": {"content-type": "application/json"}},
    ],
)
def test_malformed_requests_get_422(kwargs):
    assert client.post("/predict", **kwargs).status_code == 422


def test_predict_appends_one_audit_line_without_email(tmp_path, monkeypatch):
    import hashlib
    import json

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("AUDIT_LOG", str(log))
    body = json.dumps({"email": "someone@example.org", "features": [ROW]}).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    client.get("/health")
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["input_sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["predictions"] == response.json()["predictions"]
    assert "email" not in lines[0] and "someone@example.org" not in lines[0]
