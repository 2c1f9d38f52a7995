"""Grader probe for the train-model contract (used by the capstone).

Loads the learner's `model.pkl` with joblib, predicts the hidden holdout features
(a DataFrame with the 30 feature columns) and reads `metrics.json`. Records raw
observations only; the host computes accuracy against labels it never mounts.

    python probe_train.py --repo /workspace --features FEATURES.csv --out OBS.json

Observations: `model.pkl_is_file`, `metrics.json_is_file`, `reported_accuracy`,
`metrics_error`, `model_error`, `predictions` (a list of ints, or the error text when
the model could not be loaded or could not predict: the platform shows a string in
place of predictions as the failure), and `train_files` (true, or why "model.pkl and
metrics.json exist and load" fails; the platform's `observation` check kind).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import stat
import sys
from pathlib import Path

import joblib
import pandas as pd

MAX_METRICS_BYTES = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    repo = args.repo.resolve()
    obs: dict = {}
    for name in ("model.pkl", "metrics.json"):
        path = repo / name
        obs[f"{name}_is_file"] = path.is_file() and not path.is_symlink()

    try:
        if not obs["metrics.json_is_file"]:
            raise FileNotFoundError("missing, or not a regular file")
        # No blocking open (a FIFO), no link, no gigabyte read into memory.
        fd = os.open(repo / "metrics.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FileNotFoundError("not a regular file")
            raw = handle.read(MAX_METRICS_BYTES + 1)
        if len(raw) > MAX_METRICS_BYTES:
            raise ValueError(f"larger than {MAX_METRICS_BYTES} bytes")
        metrics = json.loads(raw.decode("utf-8"))
        accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
        is_number = isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool)
        obs["reported_accuracy"] = float(accuracy) if is_number and math.isfinite(float(accuracy)) else None
        obs["metrics_error"] = None if obs["reported_accuracy"] is not None else (
            "metrics.json has no number 'accuracy'")
    except Exception as exc:
        obs["reported_accuracy"] = None
        obs["metrics_error"] = f"metrics.json: {type(exc).__name__}: {exc}"[:300]

    # Unpickling may import the learner's own modules (a custom transformer).
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    try:
        model = joblib.load(repo / "model.pkl")
        features = pd.read_csv(args.features)
        predictions = model.predict(features)
        obs["predictions"] = [int(p) for p in predictions]
        obs["model_error"] = None
    except Exception as exc:
        obs["model_error"] = f"model.pkl: {type(exc).__name__}: {exc}"[:300]
        obs["predictions"] = f"no holdout predictions: {obs['model_error']}"
    missing = [name for name in ("model.pkl", "metrics.json") if not obs[f"{name}_is_file"]]
    if missing:
        obs["train_files"] = f"missing after python train.py (or not regular files): {', '.join(missing)}"
    else:
        obs["train_files"] = obs["model_error"] or obs["metrics_error"] or True
    args.out.write_text(json.dumps(obs))


if __name__ == "__main__":
    main()
