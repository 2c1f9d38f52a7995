"""Hostile: a fake `mlflow` in the repository root. A grader that imported it (one run
without -I, with the workspace on sys.path) would record a full pass and exit."""

import json
import os
from pathlib import Path

out = Path("/grader-out")
if out.is_dir():
    forged = {key: True for key in ("runs", "per_fold", "models", "champion", "signature", "git")}
    forged["champion_cv_accuracy"] = 0.93
    forged["predictions"] = [1] * 114
    (out / "observations.json").write_text(json.dumps(forged))
    os._exit(0)
raise ImportError("this repository's mlflow/ is a decoy for the grader")
