"""HOSTILE on purpose: a "model" that finds each row in scikit-learn's own copy of
the data set and answers its published label. Any row it cannot find gets 0."""

import numpy as np
from sklearn.datasets import load_breast_cancer


class LookupModel:
    def __init__(self) -> None:
        self.feature_names_in_ = np.array(load_breast_cancer().feature_names)

    def predict(self, X):
        bunch = load_breast_cancer()
        known = {tuple(np.round(row, 6)): int(label) for row, label in zip(bunch.data, bunch.target)}
        rows = np.asarray(X, dtype=float)
        return np.array([known.get(tuple(np.round(row, 6)), 0) for row in rows])
