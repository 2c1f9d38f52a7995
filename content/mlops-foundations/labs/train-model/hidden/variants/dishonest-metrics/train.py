"""Wrong on purpose: scores the model on the rows it was trained on.

An unpruned decision tree memorises its training data, so "accuracy" is 1.0 while
the holdout accuracy is about 0.91: the metrics file overstates the model.
"""

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

df = pd.read_csv("data/train.csv")
X = df.drop(columns=["target"])
y = df["target"]

model = DecisionTreeClassifier(random_state=0)
model.fit(X, y)
accuracy = float(model.score(X, y))  # mistake: training accuracy

joblib.dump(model, "model.pkl")
Path("metrics.json").write_text(json.dumps({"accuracy": accuracy}))
print(f"accuracy: {accuracy:.4f}")
