"""The generated data of the mlops-foundations course (content/mlops-foundations/make_data.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

COURSE_DIR = Path(__file__).resolve().parents[2] / "content" / "mlops-foundations"
LABS = (
    "validate-data",
    "train-model",
    "serve-model",
    "ci-workflow",
    "drift-monitor",
    "audit-trail",
    "capstone",
)
HIDDEN_DATA_LABS = ("validate-data", "train-model")
FEATURES = list(load_breast_cancer().feature_names)


def _read(rel: str) -> pd.DataFrame:
    return pd.read_csv(COURSE_DIR / rel)


def test_make_data_check_reports_every_file_up_to_date():
    result = subprocess.run(
        [sys.executable, "make_data.py", "--check"],
        cwd=COURSE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_manifest_names_every_generated_file():
    manifest = json.loads((COURSE_DIR / "data-manifest.json").read_text())
    expected = {f"labs/{slug}/starter/data/train.csv" for slug in LABS} | {
        f"labs/{slug}/hidden/data/{name}"
        for slug in HIDDEN_DATA_LABS
        for name in ("holdout.csv", "holdout_features.csv", "holdout_labels.json")
    }
    assert set(manifest) == expected


@pytest.mark.parametrize("slug", LABS)
def test_every_starter_train_csv_has_455_rows_with_the_contract_columns(slug):
    train = _read(f"labs/{slug}/starter/data/train.csv")
    assert train.shape == (455, 31)
    assert list(train.columns) == [*FEATURES, "target"]
    assert all(train[c].dtype == "float64" for c in FEATURES)
    assert train["target"].dtype == "int64"
    assert set(train["target"]) == {0, 1}


@pytest.mark.parametrize("slug", HIDDEN_DATA_LABS)
def test_hidden_holdout_files_agree_with_each_other(slug):
    holdout = _read(f"labs/{slug}/hidden/data/holdout.csv")
    features = _read(f"labs/{slug}/hidden/data/holdout_features.csv")
    labels = json.loads((COURSE_DIR / f"labs/{slug}/hidden/data/holdout_labels.json").read_text())
    assert holdout.shape == (114, 31)
    assert list(holdout.columns) == [*FEATURES, "target"]
    assert list(features.columns) == FEATURES
    pd.testing.assert_frame_equal(features, holdout[FEATURES])
    assert labels == holdout["target"].tolist()
    assert all(type(v) is int for v in labels)


def test_train_csv_is_the_train_part_of_the_stratified_split_bit_for_bit():
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.astype({"target": "int64"})
    expected, _ = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["target"])
    train = _read("labs/validate-data/starter/data/train.csv")
    pd.testing.assert_frame_equal(train, expected.reset_index(drop=True), check_exact=True, check_dtype=False)


# Every hidden holdout a submission could be graded on, as (features file, labels file).
HIDDEN_HOLDOUTS = [
    *[
        (f"labs/{slug}/hidden/data/holdout_features.csv", f"labs/{slug}/hidden/data/holdout_labels.json")
        for slug in HIDDEN_DATA_LABS
    ],
    *[
        (
            f"labs/{slug}/hidden/data/{prefix}_holdout_features.csv",
            f"labs/{slug}/hidden/data/{prefix}_holdout_labels.json",
        )
        for slug, prefix in (("serve-model", "serve"), ("audit-trail", "audit"), ("capstone", "capstone"))
    ],
]


@pytest.mark.parametrize("features_file, labels_file", HIDDEN_HOLDOUTS)
def test_no_hidden_holdout_row_can_be_looked_up_in_the_public_data_set(features_file, labels_file):
    # scikit-learn ships the data set inside the lab image: a row found there gives its label away.
    public = load_breast_cancer(as_frame=True).frame
    hidden = _read(features_file)
    labels = json.loads((COURSE_DIR / labels_file).read_text())
    assert hidden.shape == (114, 30) and list(hidden.columns) == FEATURES
    assert not set(hidden.itertuples(index=False, name=None)) & set(public[FEATURES].itertuples(index=False, name=None))
    # Not even rounded to 2 significant digits' worth of any row: each one is moved.
    scale = public[FEATURES].std().to_numpy()
    gaps = [min(abs((public[FEATURES].to_numpy() - row) / scale).max(axis=1)) for row in hidden.to_numpy()]
    assert min(gaps) > 0.01
    # Still the split's holdout in shape: stratified 80/20, the same classes.
    for cls in (0, 1):
        assert abs(labels.count(cls) - int((public["target"] == cls).sum()) * 0.2) <= 1


def test_no_holdout_row_appears_in_any_starter():
    holdout = _read("labs/train-model/hidden/data/holdout.csv")
    holdout_rows = set(holdout.itertuples(index=False, name=None))
    holdout_features = set(holdout[FEATURES].itertuples(index=False, name=None))
    for slug in LABS:
        train = _read(f"labs/{slug}/starter/data/train.csv")
        assert not holdout_rows & set(train.itertuples(index=False, name=None)), slug
        # Not even with a different label.
        assert not holdout_features & set(train[FEATURES].itertuples(index=False, name=None)), slug


def test_the_service_probe_request_files_are_up_to_date():
    script = Path(__file__).resolve().parents[2] / "content/mlops-foundations/tools/make_requests.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_hidden_grading_data_is_up_to_date():
    script = Path(__file__).resolve().parents[2] / "content/mlops-foundations/tools/make_hidden.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
