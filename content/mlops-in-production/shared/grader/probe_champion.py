"""Grader stage of the track-experiments lab: load the champion as a consumer would and
predict the hidden rows.

    python -I /grader/grader/probe_champion.py   (cwd: the workspace)

Loads `models:/breast-cancer-classifier@champion` with `mlflow.pyfunc.load_model` from
a private copy of the learner's mlflow.db and predicts
/grader/data/holdout_features.csv. Loading a model runs code the learner controls
(MLflow refuses to deserialise without MLFLOW_ALLOW_PICKLE_DESERIALIZATION, set here),
so nothing this stage records is trusted but the predictions, and those are scored
on the host against labels that never enter the sandbox. It runs after read_store.py,
which judged the store before any of the learner's model code could touch it.
Writes /grader-out/observations.json: `predictions`, a list of 0/1, or why there are none.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import sys
import traceback
from pathlib import Path

WORKSPACE = Path("/workspace")
GRADER_DIR = Path(os.environ.get("GRADER_DIR", "/grader"))
GRADER_OUT = Path(os.environ.get("GRADER_OUT", "/grader-out"))
STORE = "mlflow.db"
MODEL_URI = "models:/breast-cancer-classifier@champion"
MAX_STORE_BYTES = 32 * 1024 * 1024


def _error(what: str, exc: BaseException) -> str:
    # The type only: the message of an exception raised by the learner's model could
    # carry the hidden rows it was handed.
    return f"{what} raised {type(exc).__name__}"


def private_store() -> str:
    fd = os.open(WORKSPACE / STORE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_STORE_BYTES:
            raise ValueError(f"{STORE} is not a regular file of at most {MAX_STORE_BYTES // 2**20} MB")
        Path("/tmp/store").mkdir(exist_ok=True)
        with open("/tmp/store/mlflow.db", "wb") as out:
            shutil.copyfileobj(source, out)
    return "sqlite:////tmp/store/mlflow.db"


def predictions() -> list[int] | str:
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    import mlflow
    import pandas as pd

    try:
        uri = private_store()
    except (OSError, ValueError) as exc:
        return f"no predictions: {STORE} could not be read ({exc})"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(MODEL_URI)
    except BaseException as exc:  # noqa: BLE001 - loading runs learner code
        return "no predictions: " + _error(f"mlflow.pyfunc.load_model({MODEL_URI!r})", exc)
    features = pd.read_csv(GRADER_DIR / "data" / "holdout_features.csv")
    try:
        raw = list(model.predict(features))
    except BaseException as exc:  # noqa: BLE001
        return "no predictions: " + _error("the champion's predict() on the hidden rows", exc)
    if len(raw) != len(features):
        return f"no predictions: predict() returned {len(raw)} labels for {len(features)} rows"
    labels = []
    for value in raw:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if number not in (0.0, 1.0):
            return "no predictions: predict() returned something other than the class labels 0 and 1"
        labels.append(int(number))
    return labels


def main() -> int:
    try:
        obs = {"predictions": predictions()}
    except BaseException as exc:  # noqa: BLE001 - always leave observations behind
        obs = {"predictions": "no predictions: " + _error("loading the champion", exc)}
        traceback.print_exc()
    GRADER_OUT.mkdir(parents=True, exist_ok=True)
    partial = GRADER_OUT / "observations.json.tmp"
    partial.write_text(json.dumps(obs))
    partial.replace(GRADER_OUT / "observations.json")
    print("predictions:", "ok" if isinstance(obs["predictions"], list) else "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
