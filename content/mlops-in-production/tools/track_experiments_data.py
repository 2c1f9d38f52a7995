"""Generate the data of the track-experiments lab, deterministically.

    python content/mlops-in-production/tools/track_experiments_data.py [--check]

The learner's starter/data/train.csv is the first course's training split (455 rows of
scikit-learn's breast-cancer set). The hidden holdout (hidden/data/holdout_features.csv
and holdout_labels.json, 114 rows) is that course's holdout, disguised with this lab's
own seed by mlops-foundations/make_data.py's `disguised_holdout`: the data set ships
inside every scikit-learn, so a logged "model" could otherwise look each row up.
`--check` writes nothing and exits 1 naming every file that differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "track-experiments"
FOUNDATIONS = Path(__file__).resolve().parents[2] / "mlops-foundations"
sys.path.insert(0, str(FOUNDATIONS))
from make_data import disguised_holdout, lab_seed, load_table, split_table, to_csv_bytes  # noqa: E402

SEED_NAME = "mlops-in-production/track-experiments"


def build_files() -> dict[str, bytes]:
    table = load_table()
    train, holdout = split_table(table)
    hidden = disguised_holdout(table, holdout, seed=lab_seed(SEED_NAME))
    labels = json.dumps([int(v) for v in hidden["target"]]) + "\n"
    return {
        "starter/data/train.csv": to_csv_bytes(train),
        "hidden/data/holdout_features.csv": to_csv_bytes(hidden.drop(columns=["target"])),
        "hidden/data/holdout_labels.json": labels.encode("utf-8"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk; write nothing")
    args = parser.parse_args(argv)
    problems = []
    for rel, data in build_files().items():
        path = LAB_DIR / rel
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                problems.append(f"differs or missing: {rel}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {rel} ({len(data)} bytes)")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
