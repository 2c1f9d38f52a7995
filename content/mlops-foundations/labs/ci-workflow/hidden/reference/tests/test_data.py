import pandas as pd
import pytest

from cancer_model import data

TRAIN = "data/train.csv"


def test_load_reads_30_features_and_a_target():
    frame = data.load(TRAIN)
    X, y = data.split_xy(frame)
    assert X.shape[1] == 30
    assert set(y.unique()) == {0, 1}


def test_load_rejects_a_table_without_target(tmp_path):
    path = tmp_path / "bad.csv"
    pd.read_csv(TRAIN).drop(columns=["target"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="target"):
        data.load(path)


def test_load_rejects_missing_values(tmp_path):
    path = tmp_path / "holes.csv"
    frame = pd.read_csv(TRAIN)
    frame.iloc[0, 0] = None
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing"):
        data.load(path)


def test_load_rejects_the_wrong_number_of_columns(tmp_path):
    path = tmp_path / "narrow.csv"
    pd.read_csv(TRAIN).iloc[:, 25:].to_csv(path, index=False)
    with pytest.raises(ValueError, match="feature columns"):
        data.load(path)
