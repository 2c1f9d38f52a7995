"""Train the breast-cancer classifier: writes model.pkl and metrics.json.

Reads data/train.csv (30 feature columns + integer `target`). The validation
accuracy in metrics.json comes from a stratified 20% split of train.csv that the
final model never sees while being scored; the saved model is then refitted on
all rows. Deterministic: the same data gives the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "train.csv"
SEED = 42


def build_model():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))


def main() -> None:
    frame = pd.read_csv(DATA)
    X, y = frame.drop(columns=["target"]), frame["target"]
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=y
    )
    accuracy = float(build_model().fit(X_train, y_train).score(X_val, y_val))
    model = build_model().fit(X, y)
    joblib.dump(model, ROOT / "model.pkl")
    (ROOT / "metrics.json").write_text(json.dumps({"accuracy": accuracy}, indent=2) + "\n")
    print(f"validation accuracy {accuracy:.3f}; wrote model.pkl and metrics.json")


if __name__ == "__main__":
    main()
