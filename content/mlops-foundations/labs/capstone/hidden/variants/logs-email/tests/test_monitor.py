import math

import numpy as np
import pandas as pd
import pytest

from monitor import drift_report, psi

rng = np.random.default_rng(0)
BASE = rng.normal(0, 1, 1000)


def test_psi_of_a_sample_against_itself_is_zero():
    assert psi(BASE, BASE) == pytest.approx(0.0, abs=1e-12)


def test_psi_grows_with_the_shift():
    small = psi(BASE, BASE + 0.1)
    large = psi(BASE, BASE + 1.0)
    assert 0 < small < large


def test_psi_stays_finite_when_a_bin_is_empty():
    assert math.isfinite(psi(BASE, np.full(100, 10.0)))


def test_psi_counts_values_on_an_edge_in_the_bin_to_the_right():
    expected = np.arange(9.0)  # bins=2: edges -inf, 4.0, inf; [-inf, 4) holds 0..3
    e = np.array([4 / 9, 5 / 9])
    a = np.array([1e-6, 1.0])  # 4.0 sits on the edge: it counts in [4, inf)
    want = float(np.sum((a - e) * np.log(a / e)))
    assert psi(expected, np.full(10, 4.0), bins=2) == pytest.approx(want)


def test_drift_report_skips_target_text_and_unshared_columns():
    reference = pd.DataFrame({"x": BASE, "y": BASE, "target": 0, "name": "a", "only": 1.0})
    current = pd.DataFrame({"x": BASE + 2, "y": BASE, "target": 1, "name": "b"})
    report = drift_report(reference, current)
    assert sorted(report) == ["x", "y"]
    assert report["x"]["drift"] is True and report["y"]["drift"] is False
    assert isinstance(report["x"]["psi"], float)
