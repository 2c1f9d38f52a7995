"""Untested on purpose: coverage of non-test code falls below 60%."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def confusion(y_true, y_pred) -> dict:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((y_true == 1) & (y_pred == 1)).sum())
    tn = int(((y_true == 0) & (y_pred == 0)).sum())
    fp = int(((y_true == 0) & (y_pred == 1)).sum())
    fn = int(((y_true == 1) & (y_pred == 0)).sum())
    return {"tp": tp, "tn": tn, "fp": fp, "fn": fn}


def precision(counts: dict) -> float:
    denominator = counts["tp"] + counts["fp"]
    if denominator == 0:
        return 0.0
    return counts["tp"] / denominator


def recall(counts: dict) -> float:
    denominator = counts["tp"] + counts["fn"]
    if denominator == 0:
        return 0.0
    return counts["tp"] / denominator


def f1(counts: dict) -> float:
    p, r = precision(counts), recall(counts)
    if p + r == 0:
        return 0.0
    return 2 * p * r / (p + r)


def summary(y_true, y_pred) -> dict:
    counts = confusion(y_true, y_pred)
    return {
        **counts,
        "precision": precision(counts),
        "recall": recall(counts),
        "f1": f1(counts),
        "support": int(len(y_true)),
    }


def class_balance(frame: pd.DataFrame, target: str = "target") -> dict:
    shares = frame[target].value_counts(normalize=True).sort_index()
    return {str(label): float(share) for label, share in shares.items()}


def feature_ranges(frame: pd.DataFrame) -> dict:
    ranges = {}
    for column in frame.columns:
        if column == "target":
            continue
        ranges[column] = {"min": float(frame[column].min()), "max": float(frame[column].max())}
    return ranges


def write(path, y_true, y_pred, frame) -> None:
    report = {
        "metrics": summary(y_true, y_pred),
        "balance": class_balance(frame),
        "ranges": feature_ranges(frame),
    }
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
