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
