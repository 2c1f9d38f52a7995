"""Examples to start from; run with `python -m pytest -q`."""

import numpy as np
import pytest

from monitor import psi


def test_psi_of_a_sample_against_itself_is_zero():
    sample = np.random.default_rng(0).normal(0, 1, 1000)
    assert psi(sample, sample) == pytest.approx(0.0, abs=1e-12)


def test_psi_counts_values_on_an_edge_in_the_bin_to_the_right():
    # bins=2 on 0..8: edges -inf, 4.0, inf. 4.0 sits on the edge and counts in [4, inf).
    e = np.array([4 / 9, 5 / 9])
    a = np.array([1e-6, 1.0])
    want = float(np.sum((a - e) * np.log(a / e)))
    assert psi(np.arange(9.0), np.full(10, 4.0), bins=2) == pytest.approx(want)
