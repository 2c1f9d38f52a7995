"""Train a breast-cancer classifier: writes model.pkl and metrics.json.

Run it from the repository root:  python train.py
Fill in the three TODOs; see README.md and the lab instructions.
"""

import json
from pathlib import Path

import joblib
import pandas as pd

DATA = Path("data/train.csv")
TARGET = "target"
SEED = 42  # use it everywhere randomness is involved


def load_data():
    """Features X (30 float columns) and labels y (0 = malignant, 1 = benign)."""
    df = pd.read_csv(DATA)
    return df.drop(columns=[TARGET]), df[TARGET]


def build_model():
    """TODO: return an unfitted scikit-learn estimator or Pipeline with fixed random_state.

    Hint: sklearn.pipeline.make_pipeline(StandardScaler(), LogisticRegression(...)).
    """
    raise NotImplementedError("build_model() is not written yet")


def main():
    X, y = load_data()

    # TODO: split X, y into a training part and a validation part
    # (sklearn.model_selection.train_test_split, stratified, random_state=SEED).

    model = build_model()
    # TODO: fit the model on the training part only.

    # TODO: accuracy on the validation part, as a float between 0 and 1.
    accuracy = None

    joblib.dump(model, "model.pkl")
    Path("metrics.json").write_text(json.dumps({"accuracy": accuracy}, indent=2) + "\n")
    print(f"validation accuracy: {accuracy}")


if __name__ == "__main__":
    main()
