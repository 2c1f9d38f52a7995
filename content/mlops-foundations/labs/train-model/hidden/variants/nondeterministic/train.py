"""Wrong on purpose: no random_state, so every run grows a different forest.

A single-tree random forest on bootstrap samples with one feature per split, and no
seed: two runs disagree on several percent of the holdout rows.
"""

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

df = pd.read_csv("data/train.csv")
X = df.drop(columns=["target"])
y = df["target"]
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)

model = RandomForestClassifier(n_estimators=1, max_features=1)  # mistake: no random_state
model.fit(X_train, y_train)
accuracy = float(model.score(X_val, y_val))

joblib.dump(model, "model.pkl")
Path("metrics.json").write_text(json.dumps({"accuracy": accuracy}))
print(f"validation accuracy: {accuracy:.4f}")
