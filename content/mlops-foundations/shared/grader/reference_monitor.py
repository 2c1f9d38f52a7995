"""The grader's reference implementation of the drift-monitor contract.

CONTRACTS.md section 2, lab `drift-monitor`. Learner submissions are compared with
the observations this module produces (hidden/grader/probe_monitor.py), within 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

CLIP = 1e-6


def psi(expected, actual, bins=10):
    expected = np.asarray(expected, dtype=float).ravel()
    actual = np.asarray(actual, dtype=float).ravel()
    edges = np.quantile(expected, np.linspace(0, 1, bins + 1))
    edges[0] = -np.inf
    edges[-1] = np.inf
    # Replace the ends first, then drop duplicates: the order matters when the
    # minimum (or maximum) of `expected` is tied with the next quantile.
    edges = np.unique(edges)
    # numpy.histogram bins are [left, right): a value equal to an interior edge
    # counts in the bin to its right.
    e = np.histogram(expected, bins=edges)[0] / expected.size
    a = np.histogram(actual, bins=edges)[0] / actual.size
    e = np.clip(e, CLIP, None)
    a = np.clip(a, CLIP, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, threshold=0.2) -> dict:
    report = {}
    for column in reference.columns:
        if column == "target" or column not in current.columns:
            continue
        if not (is_numeric_dtype(reference[column]) and is_numeric_dtype(current[column])):
            continue
        value = psi(reference[column], current[column])
        report[column] = {"psi": value, "drift": bool(value > threshold)}
    return report
