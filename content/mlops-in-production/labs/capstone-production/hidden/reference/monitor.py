"""Data drift monitoring with the Population Stability Index (PSI).

    python monitor.py data/train.csv new_batch.csv     # prints a JSON drift report
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

EPSILON = 1e-6


def psi(expected, actual, bins=10) -> float:
    """PSI of `actual` against `expected`, with bins at the quantiles of `expected`."""
    expected = np.asarray(expected, dtype=float).ravel()
    actual = np.asarray(actual, dtype=float).ravel()
    edges = np.quantile(expected, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    edges = np.unique(edges)  # after replacing the ends: tied quantiles collapse
    e = np.histogram(expected, bins=edges)[0] / expected.size  # bins are [left, right)
    a = np.histogram(actual, bins=edges)[0] / actual.size
    e = np.clip(e, EPSILON, None)
    a = np.clip(a, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, threshold=0.2) -> dict:
    """{column: {"psi": float, "drift": bool}} for numeric columns shared by both frames."""
    report = {}
    for column in reference.columns:
        if column == "target" or column not in current.columns:
            continue
        if not (is_numeric_dtype(reference[column]) and is_numeric_dtype(current[column])):
            continue
        value = psi(reference[column], current[column])
        report[column] = {"psi": value, "drift": bool(value > threshold)}
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python monitor.py REFERENCE.csv CURRENT.csv", file=sys.stderr)
        return 2
    report = drift_report(pd.read_csv(argv[1]), pd.read_csv(argv[2]))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
