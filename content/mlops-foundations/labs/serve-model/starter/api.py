"""The model API. The grader starts it from the repository root with

    uvicorn api:app --host 127.0.0.1 --port 8000

after running `python train.py` if model.pkl is absent. See instructions.md.
"""

from __future__ import annotations

from pathlib import Path

import joblib
from fastapi import FastAPI

MODEL_PATH = Path(__file__).resolve().parent / "model.pkl"

model = joblib.load(MODEL_PATH)
app = FastAPI(title="Breast cancer classifier")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


# TODO: a pydantic model for the request body {"features": [[30 numbers], ...]}
#       (1 to 1000 rows of exactly 30 numbers) so that FastAPI answers malformed
#       input with 422 instead of letting it reach the model.
# TODO: build a DataFrame with the model's column names (model.feature_names_in_)
#       and return {"predictions": [0 or 1, ...]}, one int per row.
@app.post("/predict")
def predict():
    raise NotImplementedError("POST /predict is not written yet")
