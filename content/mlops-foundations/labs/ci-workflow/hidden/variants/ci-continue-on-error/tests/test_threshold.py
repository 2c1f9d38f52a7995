import os

from cancer_model import data, model


def test_accuracy_meets_the_ci_threshold():
    X, y = data.split_xy(data.load("data/train.csv"))
    assert model.validation_accuracy(X, y) >= float(os.environ.get("MIN_ACCURACY", "0.9"))
