import json

import joblib

import train
from cancer_model import data, model


def test_validation_accuracy_beats_a_coin():
    X, y = data.split_xy(data.load("data/train.csv"))
    assert model.validation_accuracy(X, y) > 0.9


def test_training_is_deterministic():
    X, y = data.split_xy(data.load("data/train.csv"))
    first = model.train(X, y).predict(X)
    second = model.train(X, y).predict(X)
    assert (first == second).all()


def test_train_script_writes_model_and_metrics(tmp_path):
    accuracy = train.main("data/train.csv", str(tmp_path))
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": accuracy}
    assert hasattr(joblib.load(tmp_path / "model.pkl"), "predict")
