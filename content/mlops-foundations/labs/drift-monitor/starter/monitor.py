"""Data drift monitoring with the Population Stability Index (PSI).

Implement the two functions below exactly as instructions.md defines them: the
grader compares your results with its reference implementation to within 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def psi(expected, actual, bins=10) -> float:
    """PSI of `actual` against `expected` (1-D arrays or Series of numbers).

    1. edges = numpy.quantile(expected, numpy.linspace(0, 1, bins + 1))
    2. replace the first edge with -inf and the last with +inf
    3. remove duplicate edges (numpy.unique)
    4. e, a = fractions of expected / actual in each bin [left, right)
       (what numpy.histogram(x, bins=edges) counts, divided by len(x))
    5. clip e and a below at 1e-6
    6. return float(sum((a - e) * ln(a / e)))
    """
    raise NotImplementedError


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, threshold=0.2) -> dict:
    """{column: {"psi": float, "drift": bool}} for every numeric column present in
    both frames except `target`; drift is psi > threshold."""
    raise NotImplementedError
