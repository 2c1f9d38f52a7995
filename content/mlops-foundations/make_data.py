"""Generate the data files of the mlops-foundations course, deterministically.

    python make_data.py          # (re)write every data file and data-manifest.json
    python make_data.py --check  # regenerate in memory; exit 1 naming each file that
                                 # is missing or differs from what would be written

The data is scikit-learn's bundled breast-cancer set (no download): the 30 feature
columns named exactly as ``feature_names`` plus an integer ``target``, split with
``train_test_split(test_size=0.2, random_state=42, stratify=target)`` into train
(455 rows, given to learners in every lab's starter) and holdout (114 rows, hidden).

Floats are written by pandas' default formatting (the shortest repr that reads back
to the same float64), so ``pd.read_csv`` round-trips every value exactly. The output
depends on the pinned numpy / pandas / scikit-learn of the lab image; a version bump
that changes a byte makes ``--check`` fail, which is the point.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

COURSE_DIR = Path(__file__).resolve().parent
MANIFEST = "data-manifest.json"

# Every lab of the course gets the same starter/data/train.csv.
ALL_LABS = (
    "validate-data",
    "train-model",
    "serve-model",
    "ci-workflow",
    "drift-monitor",
    "audit-trail",
    "capstone",
)
# Labs whose hidden/ folder this script owns (the others keep their own hidden data).
HIDDEN_DATA_LABS = ("validate-data", "train-model")

TEST_SIZE = 0.2
RANDOM_STATE = 42


def load_table() -> pd.DataFrame:
    bunch = load_breast_cancer(as_frame=True)
    features = pd.DataFrame(bunch.data, columns=list(bunch.feature_names)).astype("float64")
    table = features.copy()
    table["target"] = bunch.target.astype("int64").to_numpy()
    return table


def split_table(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout = train_test_split(table, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=table["target"])
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def build_files() -> dict[str, bytes]:
    """Map each path relative to the course folder to the exact bytes it must hold."""
    train, holdout = split_table(load_table())
    train_csv = to_csv_bytes(train)
    files: dict[str, bytes] = {}
    for slug in ALL_LABS:
        files[f"labs/{slug}/starter/data/train.csv"] = train_csv
    holdout_csv = to_csv_bytes(holdout)
    features_csv = to_csv_bytes(holdout.drop(columns=["target"]))
    labels_json = (json.dumps([int(v) for v in holdout["target"]]) + "\n").encode("utf-8")
    for slug in HIDDEN_DATA_LABS:
        files[f"labs/{slug}/hidden/data/holdout.csv"] = holdout_csv
        files[f"labs/{slug}/hidden/data/holdout_features.csv"] = features_csv
        files[f"labs/{slug}/hidden/data/holdout_labels.json"] = labels_json
    manifest = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    return files


def write(files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = COURSE_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {rel} ({len(data)} bytes)")


def check(files: dict[str, bytes]) -> list[str]:
    problems = []
    for rel, data in files.items():
        path = COURSE_DIR / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_bytes() != data:
            problems.append(f"differs: {rel}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk; write nothing")
    args = parser.parse_args(argv)
    files = build_files()
    if not args.check:
        write(files)
        return 0
    problems = check(files)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} data file(s) out of date: run python make_data.py", file=sys.stderr)
        return 1
    print(f"all {len(files)} data files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
