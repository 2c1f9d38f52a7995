import json
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def test_train_writes_an_honest_metrics_file_and_a_loadable_model():
    subprocess.run([sys.executable, "train.py"], cwd=ROOT, check=True)
    metrics = json.loads((ROOT / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0  # WRONG on purpose: a test that fails
    model = joblib.load(ROOT / "model.pkl")
    rows = pd.read_csv(ROOT / "data" / "train.csv").drop(columns=["target"]).head(5)
    assert set(model.predict(rows)) <= {0, 1}


def test_training_twice_gives_the_same_model():
    import train

    frame = pd.read_csv(ROOT / "data" / "train.csv")
    X, y = frame.drop(columns=["target"]), frame["target"]
    first = train.build_model().fit(X, y).predict(X)
    second = train.build_model().fit(X, y).predict(X)
    assert (first == second).all()
