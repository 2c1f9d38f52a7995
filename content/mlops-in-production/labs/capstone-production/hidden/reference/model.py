"""The iris classifier: a multinomial logistic regression stored as JSON.

model/model.json holds the model's version, its feature names, its classes and, per
class, one weight per feature and an intercept. A row's class is the one with the
highest score (weights · row + intercept).
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_PATH = Path(__file__).resolve().parent / "model" / "model.json"


class Model:
    def __init__(self, path: Path = MODEL_PATH) -> None:
        spec = json.loads(Path(path).read_text())
        self.version: str = spec["version"]
        self.features: list[str] = spec["features"]
        self.classes: list[str] = spec["classes"]
        self._coef: list[list[float]] = spec["coef"]
        self._intercept: list[float] = spec["intercept"]

    def predict(self, rows: list[list[float]]) -> list[str]:
        return [self.classes[self._best(row)] for row in rows]

    def _best(self, row: list[float]) -> int:
        scores = [
            sum(w * x for w, x in zip(weights, row, strict=True)) + bias
            for weights, bias in zip(self._coef, self._intercept, strict=True)
        ]
        return max(range(len(scores)), key=scores.__getitem__)
