"""The breast-cancer classifier behind an HTTP API, with an audit trail.

    AUDIT_LOG=audit.jsonl uvicorn api:app --host 127.0.0.1 --port 8000

GET /health  -> 200 {"status": "ok"} (not audited)
POST /predict {"features": [[30 numbers], ...], "email": "optional"}
             -> 200 {"predictions": [0 or 1, ...]}; malformed input -> 422

Every successful POST /predict appends one JSON line to $AUDIT_LOG:
{"ts": "2026-11-27T10:15:02.123456+00:00", "request_id": "<uuid4 hex>",
 "input_sha256": "<sha256 of the raw body bytes>", "predictions": [...]}
The email (data minimisation, GDPR art. 5(1)(c)) is accepted but never stored:
not its value, not its key.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import joblib
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, FiniteFloat, ValidationError

MODEL_PATH = Path(__file__).resolve().parent / "model.pkl"
N_FEATURES = 30
MAX_ROWS = 1000

Row = Annotated[list[FiniteFloat], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    features: list[Row] = Field(min_length=1, max_length=MAX_ROWS)
    email: str | None = None  # accepted so clients may send it; never logged


model = joblib.load(MODEL_PATH)
COLUMNS = list(model.feature_names_in_)
_log_lock = threading.Lock()

app = FastAPI(title="Breast cancer classifier (audited)")


def audit_log_path() -> Path:
    return Path(os.environ.get("AUDIT_LOG", "audit.jsonl"))


def write_audit(body: bytes, predictions: list[int]) -> None:
    record = {
        "ts": datetime.now(timezone.utc).isoformat(),
        "request_id": uuid.uuid4().hex,
        "input_sha256": hashlib.sha256(body).hexdigest(),
        "predictions": predictions,
    }
    line = json.dumps(record) + "\n"
    with _log_lock, audit_log_path().open("a", encoding="utf-8") as handle:
        handle.write(line)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request):
    # The hash must cover the bytes exactly as received, so read the raw body and
    # validate it ourselves instead of letting FastAPI parse it first.
    body = await request.body()
    try:
        payload = PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse(status_code=422, content={"detail": json.loads(exc.json(include_url=False))})
    frame = pd.DataFrame(payload.features, columns=COLUMNS)
    predictions = [int(label) for label in model.predict(frame)]
    write_audit(body, predictions)
    return {"predictions": predictions}
