"""Regenerate the hidden grading data of the repo labs, deterministically.

    python content/mlops-foundations/tools/make_hidden.py [--check]

Writes, under each lab's hidden/data/ (named with a prefix so they never collide
with make_data.py's train.csv / holdout.csv; CONTRACTS.md section 2: breast cancer,
stratified 80/20 split, random_state=42):

- <prefix>_holdout_features.csv  114 hidden rows, 30 feature columns, no target
  (serve-model, audit-trail, capstone): the holdout rows disguised per lab by
  make_data.disguised_holdout, so no row can be looked up in scikit-learn's copy
- <prefix>_holdout_labels.json   their targets, a JSON list of 0/1 (never mounted)
- shifted_reference.csv          train rows + extra columns (drift-monitor, capstone)
- shifted_current.csv            holdout rows, some columns shifted
- shifted_pairs.json             1-D expected/actual pairs for psi edge cases

`--check` writes nothing and exits 1 naming any file that differs.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

COURSE_DIR = Path(__file__).resolve().parent.parent
LABS_DIR = COURSE_DIR / "labs"
sys.path.insert(0, str(COURSE_DIR))
from make_data import disguised_holdout, lab_seed, load_table  # noqa: E402

PREFIX = {"serve-model": "serve", "audit-trail": "audit", "capstone": "capstone"}
DRIFT_LABS = {"drift-monitor", "capstone"}
SEED = 20261127


def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=list(data.feature_names))
    frame["target"] = data.target.astype(int)
    train, holdout = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["target"])
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def shifted(train: pd.DataFrame, holdout: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(SEED)
    reference = train.copy()
    current = holdout.copy()
    std = train.std(numeric_only=True)
    current["mean radius"] = current["mean radius"] + 0.5 * std["mean radius"]
    current["mean texture"] = current["mean texture"] * 1.3
    current["worst area"] = current["worst area"] + 3.0 * std["worst area"]
    current["mean smoothness"] = current["mean smoothness"] + rng.normal(0, 0.5 * std["mean smoothness"], len(current))
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


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def outputs() -> dict[Path, str]:
    train, holdout = split()
    table = load_table()
    result: dict[Path, str] = {}
    for lab, prefix in PREFIX.items():
        out = LABS_DIR / lab / "hidden" / "data"
        hidden = disguised_holdout(table, holdout, seed=lab_seed(lab))
        result[out / f"{prefix}_holdout_features.csv"] = _csv(hidden.drop(columns=["target"]))
        result[out / f"{prefix}_holdout_labels.json"] = json.dumps([int(y) for y in hidden["target"]]) + "\n"
    reference, current = shifted(train, holdout)
    for lab in sorted(DRIFT_LABS):
        out = LABS_DIR / lab / "hidden" / "data"
        result[out / "shifted_reference.csv"] = _csv(reference)
        result[out / "shifted_current.csv"] = _csv(current)
        result[out / "shifted_pairs.json"] = json.dumps(pairs()) + "\n"
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is missing or differs")
    args = parser.parse_args()
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(LABS_DIR)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run make_hidden.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
