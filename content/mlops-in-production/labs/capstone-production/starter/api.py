"""The iris classifier behind an HTTP API.

    uvicorn api:app --host 127.0.0.1 --port 8000

GET  /health  -> 200 {"status": "ok"}
GET  /model   -> 200 {"version": "...", "classes": [...]}
POST /predict {"rows": [[4 numbers], ...]} (1 to 100 rows)
              -> 200 {"predictions": ["setosa", ...], "model_version": "..."}
Malformed input is rejected by the pydantic model with 422 before the model sees it.

TODO (instructions.md): expose GET /metrics with prometheus_client.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, Field, FiniteFloat

from model import Model

N_FEATURES = 4
MAX_ROWS = 100

Row = Annotated[list[FiniteFloat], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    rows: list[Row] = Field(min_length=1, max_length=MAX_ROWS)


model = Model()
app = FastAPI(title="Iris classifier")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/model")
def model_card() -> dict:
    return {"version": model.version, "classes": model.classes}


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    predictions = model.predict(request.rows)
    return {"predictions": predictions, "model_version": model.version}
