"""Regenerate this lab's hidden grading data under hidden/data/ (deterministic).

    python hidden/make_hidden.py            # from the lab folder, or any folder

The same file sits in every repo lab that needs hidden data (serve-model,
audit-trail, drift-monitor, capstone); it writes only the files its lab needs,
named with a prefix so they never collide with the course data script's
train.csv / holdout.csv. Data: CONTRACTS.md section 2 (breast cancer, stratified
80/20 split, random_state=42).

- <prefix>_holdout_features.csv  the 114 holdout rows, 30 feature columns, no target
- <prefix>_holdout_labels.json   their targets, a JSON list of 0/1 (never mounted)
- shifted_reference.csv          train rows + extra columns (drift labs)
- shifted_current.csv            holdout rows, some columns shifted (drift labs)
- shifted_pairs.json             1-D expected/actual pairs for psi edge cases
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
LAB = HERE.parent.name
PREFIX = {"serve-model": "serve", "audit-trail": "audit", "capstone": "capstone"}
DRIFT_LABS = {"drift-monitor", "capstone"}
SEED = 20261127


def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=list(data.feature_names))
    frame["target"] = data.target.astype(int)
    train, holdout = train_test_split(
        frame, test_size=0.2, random_state=42, stratify=frame["target"]
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def shifted(train: pd.DataFrame, holdout: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(SEED)
    reference = train.copy()
    current = holdout.copy()
    std = train.std(numeric_only=True)
    current["mean radius"] = current["mean radius"] + 0.5 * std["mean radius"]
    current["mean texture"] = current["mean texture"] * 1.3
    current["worst area"] = current["worst area"] + 3.0 * std["worst area"]
    current["mean smoothness"] = current["mean smoothness"] + rng.normal(
        0, 0.5 * std["mean smoothness"], len(current)
    )
    zeroed = rng.random(len(current)) < 0.25
    current.loc[zeroed, "mean concave points"] = 0.0
    # Columns present in one frame only, non-numeric columns and a tied integer column.
    current = current.drop(columns=["fractal dimension error"])
    reference["only_in_reference"] = rng.normal(0, 1, len(reference))
    current["only_in_current"] = rng.normal(0, 1, len(current))
    reference["source"] = "train"
    current["batch"] = [f"b{i % 3}" for i in range(len(current))]
    reference["visits"] = rng.integers(0, 5, len(reference))
    current["visits"] = rng.integers(1, 7, len(current))
    return reference, current


def pairs() -> dict:
    rng = np.random.default_rng(SEED + 1)
    normal = rng.normal(0, 1, 500)

    def case(expected, actual, bins=10):
        return {
            "expected": [float(x) for x in expected],
            "actual": [float(x) for x in actual],
            "bins": bins,
        }

    return {
        "identical": case(normal, normal),
        "mild": case(normal, rng.normal(0.3, 1.1, 300)),
        "mild_bins_4": case(normal, rng.normal(0.3, 1.1, 300), bins=4),
        "mild_bins_20": case(normal, rng.normal(0.3, 1.1, 300), bins=20),
        "empty_bins": case(normal, rng.normal(3.0, 0.2, 200)),
        "ties": case(rng.integers(0, 4, 400), rng.integers(0, 6, 300)),
        "values_on_edges": case(np.arange(0, 101), rng.integers(0, 101, 150)),
        "tied_minimum": case(
            np.concatenate([np.zeros(120), rng.normal(5, 1, 280)]),
            np.concatenate([np.zeros(30), rng.normal(5.5, 1, 170)]),
        ),
    }


def main() -> None:
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    train, holdout = split()
    written = []
    if LAB in PREFIX:
        features = holdout.drop(columns=["target"])
        path = out / f"{PREFIX[LAB]}_holdout_features.csv"
        features.to_csv(path, index=False)
        labels = out / f"{PREFIX[LAB]}_holdout_labels.json"
        labels.write_text(json.dumps([int(y) for y in holdout["target"]]) + "\n")
        written += [path, labels]
    if LAB in DRIFT_LABS:
        reference, current = shifted(train, holdout)
        reference.to_csv(out / "shifted_reference.csv", index=False)
        current.to_csv(out / "shifted_current.csv", index=False)
        (out / "shifted_pairs.json").write_text(json.dumps(pairs()) + "\n")
        written += [out / name for name in
                    ("shifted_reference.csv", "shifted_current.csv", "shifted_pairs.json")]
    for path in written:
        print(path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
