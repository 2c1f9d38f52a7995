from __future__ import annotations

from pathlib import Path

import pandas as pd

TARGET = "target"
N_FEATURES = 30


def load(path: str | Path) -> pd.DataFrame:
    """Read the training table and check its shape: 30 features plus an integer target."""
    frame = pd.read_csv(path)
    if TARGET not in frame.columns:
        raise ValueError(f"{path}: no {TARGET!r} column")
    if frame.shape[1] != N_FEATURES + 1:
        raise ValueError(f"{path}: expected {N_FEATURES} feature columns, got {frame.shape[1] - 1}")
    if frame.isna().any().any():
        raise ValueError(f"{path}: missing values")
    return frame


def split_xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=[TARGET]), frame[TARGET]
