"""python train.py [DATA] [OUT_DIR]: writes model.pkl and metrics.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib

from cancer_model import data, model


def main(data_path: str = "data/train.csv", out_dir: str = ".") -> float:
    X, y = data.split_xy(data.load(data_path))
    accuracy = model.validation_accuracy(X, y)
    out = Path(out_dir)
    joblib.dump(model.train(X, y), out / "model.pkl")
    (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy}) + "\n")
    return accuracy


if __name__ == "__main__":
    print(f"validation accuracy {main(*sys.argv[1:]):.3f}")
