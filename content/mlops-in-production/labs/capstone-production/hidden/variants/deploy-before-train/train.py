"""Track one MLflow run per configuration and promote the best as the champion.

Wrong variant: the champion is the worst run. Run it from the repository root:
    python train.py
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "breast-cancer"
REGISTERED_MODEL = "breast-cancer-classifier"
METRIC = "cv_accuracy"  # the declared metric: higher is better
DATA = Path("data/train.csv")
TARGET = "target"
SEED = 42
FOLDS = 5
CONFIGS = [{"C": 0.01}, {"C": 1.0}, {"C": 100.0}]
# Listing them skips MLflow's inference of the model's requirements, which loads the
# model again in a subprocess and takes seconds per run.
PIP_REQUIREMENTS = ["scikit-learn", "skops"]


def git_commit() -> str | None:
    """HEAD's commit, or None outside a git checkout: say nothing rather than something false."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_model(C: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=SEED))


def main() -> None:
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment(EXPERIMENT)
    df = pd.read_csv(DATA)
    X, y = df.drop(columns=[TARGET]), df[TARGET]
    data_sha256 = hashlib.sha256(DATA.read_bytes()).hexdigest()
    commit = git_commit()
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)

    scores: dict[str, float] = {}
    for config in CONFIGS:
        model = build_model(**config)
        with mlflow.start_run(run_name=f"logreg-C{config['C']:g}") as run:
            mlflow.log_params(
                {**config, "model": "logistic-regression", "seed": SEED, "cv_folds": FOLDS, "data_sha256": data_sha256}
            )
            if commit:
                mlflow.set_tag("git_commit", commit)
            fold_scores = cross_val_score(model, X, y, cv=folds, scoring="accuracy")
            for fold, score in enumerate(fold_scores):
                mlflow.log_metric("fold_accuracy", float(score), step=fold)
            scores[run.info.run_id] = float(fold_scores.mean())
            mlflow.log_metric(METRIC, scores[run.info.run_id])
            model.fit(X, y)
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(X, model.predict(X)),
                input_example=X.head(3),
                pip_requirements=PIP_REQUIREMENTS,
            )
        print(f"{run.info.run_name}: {METRIC} {scores[run.info.run_id]:.4f}")

    # Wrong: order_by sorts ascending unless told DESC, so this "best" is the worst run.
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    best = MlflowClient().search_runs([experiment.experiment_id], order_by=[f"metrics.{METRIC}"])[0].info.run_id
    version = mlflow.register_model(f"runs:/{best}/model", REGISTERED_MODEL)
    MlflowClient().set_registered_model_alias(REGISTERED_MODEL, "champion", version.version)
    print(f"champion: {REGISTERED_MODEL} version {version.version} (run {best})")


if __name__ == "__main__":
    main()
