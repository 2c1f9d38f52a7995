"""Generate the data files of the mlops-foundations course, deterministically.

    python make_data.py          # (re)write every data file and data-manifest.json
    python make_data.py --check  # regenerate in memory; exit 1 naming each file that
                                 # is missing or differs from what would be written

The data is scikit-learn's bundled breast-cancer set (no download): the 30 feature
columns named exactly as ``feature_names`` plus an integer ``target``, split with
``train_test_split(test_size=0.2, random_state=42, stratify=target)`` into train
(455 rows, given to learners in every lab's starter) and holdout (114 rows, hidden).

The hidden holdout is not those 114 rows as published: the data set ships inside
every scikit-learn, so a "model" could look each row up and answer its label.
Each hidden row is made from one holdout row, SMOTE-style (moved 20-80% of the way
towards one of its 5 nearest same-class rows of the data set, then every feature
scaled by exp(N(0, 0.05)) and rounded as the column is published), with the same
label, so the classes, the columns' ranges and the difficulty stay those of the
split while no hidden row is a row of the public data set. Each lab gets its own
seed (a file leaked from one lab says nothing about another's).

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

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

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


NEIGHBOURS = 5
STEP = (0.2, 0.8)
JITTER = 0.05


def lab_seed(slug: str) -> int:
    return int.from_bytes(hashlib.sha256(f"hidden-holdout/{slug}".encode()).digest()[:4], "big")


def _decimals(column: pd.Series) -> int:
    """Decimal places the column is published with (its longest shortest-repr)."""
    places = 0
    for value in column:
        text = repr(float(value))
        if "e" not in text and "." in text:
            places = max(places, len(text.split(".")[1]))
    return places


def disguised_holdout(table: pd.DataFrame, holdout: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """The hidden holdout: one new row per row of `holdout`, same label and order,
    none equal to a row of `table` (the public data set); see the module docstring."""
    rng = np.random.default_rng(seed)
    features = [c for c in table.columns if c != "target"]
    scale = table[features].std().to_numpy()
    source = holdout[features].to_numpy()
    made = source.copy()
    for label in (0, 1):
        pool = table.loc[table["target"] == label, features].to_numpy()
        rows = np.flatnonzero(holdout["target"].to_numpy() == label)
        # Neighbour 0 is the row itself (every holdout row is in the data set).
        _, near = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(pool / scale).kneighbors(source[rows] / scale)
        for row, neighbours in zip(rows, near, strict=True):
            partner = pool[neighbours[rng.integers(1, NEIGHBOURS + 1)]]
            step = rng.uniform(*STEP)
            moved = source[row] + step * (partner - source[row])
            made[row] = moved * np.exp(rng.normal(0.0, JITTER, len(features)))
    result = pd.DataFrame(made, columns=features)
    for name in features:
        result[name] = result[name].round(_decimals(table[name])).astype("float64")
    result["target"] = holdout["target"].to_numpy().astype("int64")
    public = set(table[features].itertuples(index=False, name=None))
    clashes = [i for i, row in enumerate(result[features].itertuples(index=False, name=None)) if row in public]
    if clashes:
        raise RuntimeError(f"hidden rows {clashes} equal public rows: change the seed")
    return result


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def build_files() -> dict[str, bytes]:
    """Map each path relative to the course folder to the exact bytes it must hold."""
    table = load_table()
    train, split_holdout = split_table(table)
    train_csv = to_csv_bytes(train)
    files: dict[str, bytes] = {}
    for slug in ALL_LABS:
        files[f"labs/{slug}/starter/data/train.csv"] = train_csv
    for slug in HIDDEN_DATA_LABS:
        holdout = disguised_holdout(table, split_holdout, seed=lab_seed(slug))
        files[f"labs/{slug}/hidden/data/holdout.csv"] = to_csv_bytes(holdout)
        files[f"labs/{slug}/hidden/data/holdout_features.csv"] = to_csv_bytes(holdout.drop(columns=["target"]))
        files[f"labs/{slug}/hidden/data/holdout_labels.json"] = (
            json.dumps([int(v) for v in holdout["target"]]) + "\n"
        ).encode("utf-8")
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
