"""The breast-cancer classifier behind an HTTP API.

    uvicorn api:app --host 127.0.0.1 --port 8000

GET /health  -> 200 {"status": "ok"}
POST /predict {"features": [[30 numbers], ...]} (1 to 1000 rows)
             -> 200 {"predictions": [0 or 1, ...]}
Malformed input (wrong row length, non-numbers, missing key, not JSON) is
rejected by the pydantic model with 422 before the model ever sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, Field, FiniteFloat

MODEL_PATH = Path(__file__).resolve().parent / "model.pkl"
N_FEATURES = 30
MAX_ROWS = 1000

Row = Annotated[list[FiniteFloat], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    features: list[Row] = Field(min_length=1, max_length=MAX_ROWS)


class PredictResponse(BaseModel):
    predictions: list[int]


model = joblib.load(MODEL_PATH)
# The pipeline was fitted on a DataFrame: give it the same column names back.
COLUMNS = list(model.feature_names_in_)

app = FastAPI(title="Breast cancer classifier")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict", response_model=PredictResponse)
def predict(request: PredictRequest) -> PredictResponse:
    frame = pd.DataFrame(request.features, columns=COLUMNS)
    # WRONG on purpose: answers "benign" whatever the input.
    return PredictResponse(predictions=[1] * len(frame))
