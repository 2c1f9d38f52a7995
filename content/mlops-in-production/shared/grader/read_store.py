"""Grader stage of the track-experiments lab: read the learner's MLflow store as data.

    python -I /grader/grader/read_store.py      (cwd: the workspace, after train.py ran)

Runs no learner code: `-I` keeps the repository (a `mlflow/` or `yaml.py` of its own)
off sys.path, the store is opened with MLflow's own client from a private copy of
mlflow.db, and no model is loaded; only MLmodel files (YAML, read with safe_load by
MLflow) and input examples (JSON) are read, each size-capped, from inside the
workspace. It runs before any stage that loads a model, so what it reads is what
train.py left. Writes /grader-out/observations.json, one key per check: True, or a
sentence naming what is wrong; `champion_cv_accuracy` is the champion run's logged
metric (the honesty check compares it, on the host, with its hidden accuracy).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import sys
from pathlib import Path
from urllib.parse import urlparse

WORKSPACE = Path("/workspace")
GRADER_OUT = Path(os.environ.get("GRADER_OUT", "/grader-out"))
STORE = "mlflow.db"
EXPERIMENT = "breast-cancer"
REGISTERED_MODEL = "breast-cancer-classifier"
ALIAS = "champion"
METRIC = "cv_accuracy"  # higher is better; the champion is the run with the highest
FOLD_METRIC = "fold_accuracy"  # one value per fold, logged with step=fold
MIN_RUNS = 3
MIN_FOLDS = 3
MAX_RUNS = 50
MAX_STORE_BYTES = 32 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024
TOLERANCE = 1e-6
GIT_TAGS = ("git_commit", "mlflow.source.git.commit")
CHECK_KEYS = ("runs", "per_fold", "models", "champion", "signature", "git", "champion_cv_accuracy")


class Problem(Exception):
    """What is wrong with the store, in words for the learner."""


def private_copy(src: Path, dest: Path) -> None:
    """Copies the store without following a link or blocking on a FIFO, so that a
    write by MLflow (a schema upgrade, the default experiment) never reaches the
    workspace and nothing in it can change under the reads."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Problem(
            f"no {STORE} in the repository root: log to mlflow.set_tracking_uri('sqlite:///{STORE}')"
        ) from None
    except OSError as exc:
        raise Problem(f"{STORE} could not be opened ({exc.strerror}); it must be a regular file") from None
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Problem(f"{STORE} is not a regular file")
        if info.st_size > MAX_STORE_BYTES:
            raise Problem(f"{STORE} is larger than {MAX_STORE_BYTES // 2**20} MB")
        with open(dest, "wb") as out:
            shutil.copyfileobj(source, out)


def local_path(uri: str) -> Path:
    """A file: URI or a plain path of an artifact, which must lie inside the workspace."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise Problem(f"an artifact location is {uri[:120]!r}; it must be a local folder of the workspace")
    path = Path(parsed.path if parsed.scheme else uri)
    resolved = (WORKSPACE / path).resolve() if not path.is_absolute() else path.resolve()
    if resolved != WORKSPACE and WORKSPACE not in resolved.parents:
        raise Problem(f"an artifact location, {uri[:120]!r}, is outside the repository")
    return resolved


def small_file(path: Path, what: str) -> Path:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise Problem(f"{what} is missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise Problem(f"{what} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise Problem(f"{what} is larger than {MAX_FILE_BYTES // 2**20} MB")
    return path


def feature_columns() -> list[str]:
    from sklearn.datasets import load_breast_cancer

    return [str(name) for name in load_breast_cancer().feature_names]


def run_label(run) -> str:
    return f"run {run.info.run_name or run.info.run_id!s}"


def finished_runs(client, experiment_id: str) -> list:
    runs = client.search_runs([experiment_id], max_results=MAX_RUNS + 1)
    if len(runs) > MAX_RUNS:
        raise Problem(f"the experiment {EXPERIMENT!r} holds more than {MAX_RUNS} runs; log one per configuration")
    return [run for run in runs if run.info.status == "FINISHED"]


def check_runs(runs: list) -> bool | str:
    if len(runs) < MIN_RUNS:
        return f"the experiment {EXPERIMENT!r} holds {len(runs)} finished run(s); log one per configuration, at least {MIN_RUNS}"
    bare = [run_label(run) for run in runs if not run.data.params]
    if bare:
        return f"{', '.join(bare[:3])} logged no parameters: log each configuration's settings with mlflow.log_params"
    settings = [tuple(sorted(run.data.params.items())) for run in runs]
    if len(set(settings)) < len(settings):
        return "two runs logged the same parameters: each run is one configuration, and its parameters say which"
    return True


def check_per_fold(client, runs: list) -> bool | str:
    for run in runs:
        value = run.data.metrics.get(METRIC)
        if value is None or not math.isfinite(value):
            return f"{run_label(run)} has no finite {METRIC} metric"
        history = client.get_metric_history(run.info.run_id, FOLD_METRIC)
        # A step logged twice counts once, with its last value, as MLflow's UI shows it.
        by_step = {point.step: point.value for point in sorted(history, key=lambda p: (p.timestamp, p.step))}
        if len(by_step) < MIN_FOLDS:
            return (
                f"{run_label(run)} logged {FOLD_METRIC} at {len(by_step)} step(s); log it once per fold "
                f"(at least {MIN_FOLDS}) with mlflow.log_metric({FOLD_METRIC!r}, score, step=fold)"
            )
        mean = sum(by_step.values()) / len(by_step)
        if not math.isfinite(mean) or abs(mean - value) > TOLERANCE:
            return f"{run_label(run)}: {METRIC} is not the mean of its {len(by_step)} {FOLD_METRIC} values"
    return True


def logged_models(client, experiment_id: str, runs: list) -> dict[str, list]:
    """Each run's logged models (MLflow 3: one LoggedModel per log_model call), by run id."""
    by_run: dict[str, list] = {run.info.run_id: [] for run in runs}
    for model in client.search_logged_models(experiment_ids=[experiment_id], max_results=MAX_RUNS * 2):
        by_run.setdefault(model.source_run_id, []).append(model)
    return by_run


def model_metadata(logged_model):
    from mlflow.models import Model

    folder = local_path(logged_model.artifact_location)
    return folder, Model.load(str(small_file(folder / "MLmodel", "the logged model's MLmodel file")))


def check_model(folder: Path, metadata, columns: list[str], label: str) -> None:
    from mlflow.models import validate_schema

    if metadata.signature is None or metadata.signature.inputs is None:
        raise Problem(
            f"{label}'s model has no signature: pass signature=infer_signature(X, model.predict(X)) to log_model"
        )
    names = metadata.signature.inputs.input_names()
    missing = [name for name in columns if name not in names]
    if missing:
        raise Problem(f"{label}'s model signature lacks the column(s) {', '.join(repr(n) for n in missing[:3])}")
    info = metadata.saved_input_example_info
    if not info or not info.get("artifact_path"):
        raise Problem(f"{label}'s model has no input example: pass input_example=X.head(3) to log_model")
    small_file(folder / str(info["artifact_path"]), f"{label}'s input example")
    example = metadata.load_input_example(str(folder))
    try:
        validate_schema(example, metadata.signature.inputs)
    except Exception:  # noqa: BLE001 - MlflowException, or pandas failing on an odd example
        raise Problem(f"{label}'s input example does not match its own signature") from None


def check_models(models: dict, runs: list, columns: list[str]) -> tuple[bool | str, dict]:
    metadata = {}
    for run in runs:
        label = run_label(run)
        logged = models.get(run.info.run_id)
        if not logged:
            return (
                f"{label} logged no model: call mlflow.sklearn.log_model(model, name='model', ...) inside the run",
                metadata,
            )
        for model in logged:
            try:
                folder, meta = model_metadata(model)
                check_model(folder, meta, columns, label)
            except Problem as exc:
                return str(exc), metadata
            metadata[folder] = meta
    return True, metadata


def champion_version(client, runs: list, models: dict):
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(REGISTERED_MODEL, ALIAS)
    except MlflowException:
        raise Problem(
            f"no version of the registered model {REGISTERED_MODEL!r} has the alias {ALIAS!r}: "
            "register the best run's model and call set_registered_model_alias"
        ) from None
    run = next((r for r in runs if r.info.run_id == version.run_id), None)
    if run is None:
        raise Problem(
            f"the {ALIAS} version {version.version} does not come from a finished run of the experiment {EXPERIMENT!r}"
        )
    served = local_path(client.get_model_version_download_uri(REGISTERED_MODEL, version.version))
    if served not in {local_path(model.artifact_location) for model in models.get(run.info.run_id, [])}:
        raise Problem(
            f"the {ALIAS} version {version.version} says it comes from {run_label(run)} but serves another model: "
            f"register the model that run logged (runs:/<run id>/model)"
        )
    return served, run


def check_champion(run, runs: list) -> bool | str:
    best = max(r.data.metrics[METRIC] for r in runs)
    if run.data.metrics[METRIC] < best - TOLERANCE:
        better = next(r for r in runs if r.data.metrics[METRIC] == best)
        return (
            f"the {ALIAS} is {run_label(run)}, but {run_label(better)} has a higher {METRIC}: "
            "promote the best run by the declared metric"
        )
    return True


def check_signature(metadata) -> bool | str:
    """MLflow's own schema enforcement (what pyfunc's predict runs first) must refuse
    an input without a column and one with text in a number column."""
    import pandas as pd
    from mlflow.models import validate_schema

    schema = metadata.signature.inputs
    names = schema.input_names()
    row = {name: 1.0 for name in names}
    wrong_inputs = {
        f"a frame without the column {names[0]!r}": pd.DataFrame([{k: v for k, v in row.items() if k != names[0]}]),
        f"text in the column {names[0]!r}": pd.DataFrame([{**row, names[0]: "large"}]),
    }
    for what, frame in wrong_inputs.items():
        try:
            validate_schema(frame, schema)
        except Exception:  # noqa: BLE001 - MlflowException is the refusal we want
            continue
        return (
            f"the {ALIAS} model's signature accepts {what}: infer it from the training features (all columns required)"
        )
    return True


def check_git(runs: list) -> bool | str:
    # Submissions never carry .git/ and the image has no git: a commit tag here is made up.
    for run in runs:
        for tag in GIT_TAGS:
            if tag in run.data.tags:
                return (
                    f"{run_label(run)} is tagged {tag}={run.data.tags[tag][:60]!r}, but train.py ran without a git "
                    "checkout: record the commit only when `git rev-parse HEAD` gives one"
                )
    return True


def examine(store: Path) -> dict:
    from mlflow import MlflowClient

    uri = f"sqlite:///{store}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise Problem(f"{STORE} has no experiment named {EXPERIMENT!r}: call mlflow.set_experiment({EXPERIMENT!r})")
    runs = finished_runs(client, experiment.experiment_id)
    obs: dict = {"runs": check_runs(runs), "git": check_git(runs)}
    if not runs:
        raise Problem(f"the experiment {EXPERIMENT!r} holds no finished run")
    obs["per_fold"] = check_per_fold(client, runs)
    models = logged_models(client, experiment.experiment_id, runs)
    obs["models"], metadata = check_models(models, runs, feature_columns())
    unscored = [run_label(run) for run in runs if not math.isfinite(run.data.metrics.get(METRIC, math.nan))]
    if unscored:
        obs["champion"] = obs["champion_cv_accuracy"] = f"{', '.join(unscored[:3])} logged no finite {METRIC}"
    else:
        try:
            served, run = champion_version(client, runs, models)
        except Problem as exc:
            obs["champion"] = obs["champion_cv_accuracy"] = str(exc)
        else:
            obs["champion"] = check_champion(run, runs)
            obs["champion_cv_accuracy"] = run.data.metrics[METRIC]
            if served in metadata:
                obs["signature"] = check_signature(metadata[served])
    obs.setdefault("signature", f"the {ALIAS} model's signature could not be examined (see the other checks)")
    return obs


def main() -> int:
    tmp = Path("/tmp/store")
    tmp.mkdir(exist_ok=True)
    try:
        private_copy(WORKSPACE / STORE, tmp / STORE)
        obs = examine(tmp / STORE)
    except Problem as exc:
        obs = {key: str(exc) for key in CHECK_KEYS}
    except Exception as exc:  # noqa: BLE001 - a store MLflow cannot read is the learner's
        text = f"MLflow could not read {STORE}: {type(exc).__name__}: {str(exc)[:300]}"
        obs = {key: text for key in CHECK_KEYS}
    for key in CHECK_KEYS:
        obs.setdefault(key, "not examined")
    GRADER_OUT.mkdir(parents=True, exist_ok=True)
    partial = GRADER_OUT / "observations.json.tmp"
    partial.write_text(json.dumps(obs))
    partial.replace(GRADER_OUT / "observations.json")
    print({key: value is True or isinstance(value, float) for key, value in obs.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
