"""WRONG on purpose: trusts its input, so malformed requests crash with 500."""

from pathlib import Path

import joblib
import pandas as pd
from fastapi import FastAPI, Request

model = joblib.load(Path(__file__).resolve().parent / "model.pkl")
COLUMNS = list(model.feature_names_in_)
app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request):
    payload = await request.json()
    frame = pd.DataFrame(payload["features"], columns=COLUMNS)
    return {"predictions": [int(label) for label in model.predict(frame)]}
