"""Train a breast-cancer classifier reproducibly; write model.pkl and metrics.json.

Reference solution of the train-model lab.
"""

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42
DATA = Path("data/train.csv")
TARGET = "target"


def main() -> None:
    df = pd.read_csv(DATA)
    X = df.drop(columns=[TARGET])
    y = df[TARGET]

    # Hold back a validation split: the model never sees it while fitting, so its
    # accuracy there is an honest estimate of the accuracy on new data.
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(X_train, y_train)
    accuracy = float(model.score(X_val, y_val))

    joblib.dump(model, "model.pkl")
    metrics = {
        "accuracy": accuracy,
        "n_train": int(len(X_train)),
        "n_validation": int(len(X_val)),
        "model": "StandardScaler + LogisticRegression",
        "seed": SEED,
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"validation accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
