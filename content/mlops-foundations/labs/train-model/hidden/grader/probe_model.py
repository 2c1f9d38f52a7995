"""Grader stage of the train-model lab: load the learner's model and predict the holdout.

    python /grader/grader/probe_model.py         (cwd: the learner's repository root)

Writes GRADER_OUT/observations.json (always) with:
  model_loaded  true, or why model.pkl could not be loaded or could not predict
  predictions   list of 0/1 ints for GRADER_DIR/data/holdout_features.csv, or an error text
  metrics       true, or what is wrong with metrics.json (missing, not JSON, no numeric accuracy)
Exits 0. No verdict is computed here: the labels never enter the sandbox; the host
scores the predictions. GRADER_DIR and GRADER_OUT default to /grader and /grader-out.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import traceback
from pathlib import Path

GRADER_DIR = Path(os.environ.get("GRADER_DIR", "/grader"))
GRADER_OUT = Path(os.environ.get("GRADER_OUT", "/grader-out"))
MAX_TEXT = 800
MAX_METRICS_BYTES = 1024 * 1024


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 15] + " ...[truncated]"


def _error(what: str, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "site-packages" not in f.filename and f.filename != __file__]
    text = f"{what} raised {type(exc).__name__}: {exc}"
    if own:
        f = own[-1]
        text += f"\n  at {Path(f.filename).name}:{f.lineno} in {f.name}(): {(f.line or '').strip()}"
    return _short(text)


def _regular_file(path: Path) -> str | None:
    """None if path is a regular file (links are not followed), else why not."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return f"{path.name} was not found in the repository root (train.py must write it there)"
    if stat.S_ISLNK(mode):
        return f"{path.name} is a symbolic link; write a regular file"
    if not stat.S_ISREG(mode):
        return f"{path.name} is not a regular file"
    return None


def _read_metrics(path: Path) -> bytes | str:
    """The file's bytes, or why not. Opened without blocking or following a link:
    unpickling model.pkl ran learner code, which may have swapped in a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return f"metrics.json could not be opened ({exc.strerror})"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "metrics.json is not a regular file"
        if info.st_size > MAX_METRICS_BYTES:
            return f"metrics.json is {info.st_size} bytes, more than the {MAX_METRICS_BYTES}-byte limit"
        return handle.read(MAX_METRICS_BYTES)


def check_metrics(workspace: Path) -> bool | str:
    path = workspace / "metrics.json"
    problem = _regular_file(path)
    if problem:
        return problem
    raw = _read_metrics(path)
    if isinstance(raw, str):
        return raw
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"metrics.json is not valid UTF-8 text (byte {exc.start})"
    except ValueError as exc:
        return _short(f"metrics.json is not valid JSON: {exc}")
    except RecursionError:
        return "metrics.json nests arrays or objects too deeply"
    if not isinstance(data, dict):
        return f'metrics.json holds a JSON {type(data).__name__}; expected an object like {{"accuracy": 0.95}}'
    if "accuracy" not in data:
        return 'metrics.json has no "accuracy" field'
    value = data["accuracy"]
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an integer past float's range
        finite = False
    if not finite:
        return f'metrics.json "accuracy" must be a finite number, got {_short(repr(value))[:60]}'
    return True


def predict(workspace: Path) -> tuple[bool | str, list[int] | str]:
    problem = _regular_file(workspace / "model.pkl")
    if problem:
        return problem, "no predictions: " + problem
    import joblib
    import pandas as pd

    try:
        model = joblib.load(workspace / "model.pkl")
    except BaseException as exc:  # noqa: BLE001 - unpickling runs learner code
        text = _error("joblib.load('model.pkl')", exc)
        return text, "no predictions: " + text
    if not callable(getattr(model, "predict", None)):
        text = f"model.pkl holds a {type(model).__name__}, which has no predict() method"
        return text, "no predictions: " + text

    features = pd.read_csv(GRADER_DIR / "data" / "holdout_features.csv")
    try:
        raw = model.predict(features)
    except BaseException as exc:  # noqa: BLE001
        text = _error("model.predict(holdout features)", exc)
        return text, "no predictions: " + text
    try:
        values = list(raw)
    except TypeError:
        text = f"model.predict() returned {type(raw).__name__}, expected one label per row"
        return text, "no predictions: " + text
    if len(values) != len(features):
        text = f"model.predict() returned {len(values)} labels for {len(features)} rows"
        return text, "no predictions: " + text
    labels = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if number not in (0.0, 1.0):
            text = f"model.predict() returned {str(value)[:40]!s}; expected class labels 0 or 1"
            return text, "no predictions: " + text
        labels.append(int(number))
    return True, labels


def main() -> int:
    workspace = Path.cwd()
    # Let pickles refer to classes in the learner's own modules (e.g. features.py).
    sys.path.insert(0, str(workspace))
    obs: dict = {}
    try:
        obs["model_loaded"], obs["predictions"] = predict(workspace)
    except BaseException as exc:  # noqa: BLE001 - always leave observations behind
        obs["model_loaded"] = obs["predictions"] = _error("loading the model", exc)
    try:
        obs["metrics"] = check_metrics(workspace)
    except Exception as exc:  # noqa: BLE001 - always leave observations behind
        obs["metrics"] = _error("reading metrics.json", exc)
    GRADER_OUT.mkdir(parents=True, exist_ok=True)
    tmp = GRADER_OUT / "observations.json.tmp"
    tmp.write_text(json.dumps(obs))
    tmp.replace(GRADER_OUT / "observations.json")
    ok = obs["model_loaded"] is True
    print(f"model_loaded: {'ok' if ok else 'failed'}; metrics: {'ok' if obs['metrics'] is True else 'failed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
