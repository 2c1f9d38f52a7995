"""An example test of the audit trail; run `python train.py` first, then
`python -m pytest -q`. Add tests for the email and for /health."""

import hashlib
import json

import pandas as pd
from fastapi.testclient import TestClient

from api import app

client = TestClient(app)
ROW = pd.read_csv("data/train.csv").drop(columns=["target"]).iloc[0].tolist()


def test_one_audit_line_per_prediction(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("AUDIT_LOG", str(log))
    body = json.dumps({"features": [ROW]}).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    [line] = log.read_text().splitlines()
    assert json.loads(line)["input_sha256"] == hashlib.sha256(body).hexdigest()
