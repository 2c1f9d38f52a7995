"""The iris classifier behind an HTTP API, instrumented for Prometheus.

    uvicorn api:app --host 127.0.0.1 --port 8000

GET  /health  -> 200 {"status": "ok"}
GET  /model   -> 200 {"version": "...", "classes": [...]}
POST /predict {"rows": [[4 numbers], ...]} (1 to 100 rows)
              -> 200 {"predictions": ["setosa", ...], "model_version": "..."}
GET  /metrics -> the Prometheus text exposition format
Malformed input is rejected by the pydantic model with 422 before the model sees it.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, Info, generate_latest
from pydantic import BaseModel, Field, FiniteFloat

from model import Model

N_FEATURES = 4
MAX_ROWS = 100
# Scrapes and health checks would drown the traffic that matters: left out.
UNMEASURED = {"/metrics", "/health"}

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer, by route",
    ["route"],
    # Fine around the 250 ms objective the latency alert pages on, coarse above it.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter("predictions_total", "Rows predicted, by class", ["predicted_class"])
MODEL = Info("model", "The model this process serves")

Row = Annotated[list[FiniteFloat], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    rows: list[Row] = Field(min_length=1, max_length=MAX_ROWS)


model = Model()
MODEL.info({"version": model.version})
app = FastAPI(title="Iris classifier")


@app.middleware("http")
async def measure(request: Request, call_next):
    start = time.perf_counter()
    status = 500  # an exception that escapes the app is answered with a 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        # After routing, FastAPI has put the matched route in the scope (also for a
        # 405 or a 422): label with its template, never the raw path, so scanners
        # probing random paths add one series, not one per path.
        route = request.scope.get("route")
        label = route.path if route is not None else "unmatched"
        if label not in UNMEASURED:
            REQUESTS.labels(route=label, method=request.method, status=str(status)).inc()
            LATENCY.labels(route=label).observe(time.perf_counter() - start)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/model")
def model_card() -> dict:
    return {"version": model.version, "classes": model.classes}


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    predictions = model.predict(request.rows)
    for predicted in predictions:
        PREDICTIONS.labels(predicted_class=predicted).inc()
    return {"predictions": predictions, "model_version": model.version}
