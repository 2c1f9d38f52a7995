"""Grader probe for the drift-monitor contract (drift-monitor, capstone).

A copy of content/mlops-foundations/shared/grader/probe_monitor.py for
capstone-production: a course's labs read only that course's shared/ folder.

Imports `monitor` from the repo root and records what `psi` and `drift_report`
return on the hidden data, as one JSON object. It judges nothing: the host
compares these observations with the same probe run on hidden/grader/reference_monitor.py
(numbers within 1e-6, booleans and key sets exactly).

    python probe_monitor.py --repo /workspace --data DIR --out /grader-out/observations.json

DIR holds shifted_reference.csv, shifted_current.csv and shifted_pairs.json
(written by tools/make_hidden.py of the course). Non-finite numbers are recorded as the strings
"inf", "-inf" and "nan"; an exception as {"error": "..."}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import numbers
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

PSI_COLUMNS = [
    "mean radius",  # +0.5 std
    "mean texture",  # x1.3
    "worst area",  # +3 std: most bins of `current` are empty
    "mean smoothness",  # noise
    "mean concave points",  # 25% set to 0: ties
    "visits",  # small integers: duplicate edges
    "mean symmetry",  # unchanged
]


def plain(value):
    """JSON-safe copy; numbers as floats, booleans kept, anything odd as a tagged string."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return f"<{type(value).__name__}>"


def attempt(function):
    try:
        with np.errstate(all="ignore"):
            return plain(function())
    except Exception as exc:  # learner code: any failure is an observation
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--module", default="monitor")
    args = parser.parse_args()

    reference = pd.read_csv(args.data / "shifted_reference.csv")
    current = pd.read_csv(args.data / "shifted_current.csv")
    pairs = json.loads((args.data / "shifted_pairs.json").read_text())

    obs: dict = {}
    sys.path.insert(0, str(args.repo.resolve()))
    try:
        module = importlib.import_module(args.module)
        missing = [name for name in ("psi", "drift_report") if not callable(getattr(module, name, None))]
        obs["imports"] = True if not missing else f"monitor.py does not define {', '.join(missing)}"
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a learner script too
        obs["imports"] = f"importing monitor.py failed: {type(exc).__name__}: {exc}"[:300]
        obs["traceback"] = traceback.format_exc()[-2000:]
    if obs["imports"] is not True:
        args.out.write_text(json.dumps(obs))
        return

    psi, drift_report = module.psi, module.drift_report
    obs["psi_columns"] = {
        column: attempt(lambda c=column: psi(reference[c].to_numpy(), current[c].to_numpy()))
        for column in PSI_COLUMNS
    }
    obs["psi_series"] = attempt(lambda: psi(reference["mean radius"], current["mean radius"]))
    for name, pair in pairs.items():
        obs[f"psi_pair_{name}"] = attempt(
            lambda p=pair: psi(np.asarray(p["expected"]), np.asarray(p["actual"]), bins=p["bins"])
        )
    obs["psi_default_bins"] = attempt(
        lambda: psi(np.asarray(pairs["mild"]["expected"]), np.asarray(pairs["mild"]["actual"]))
    )
    report = attempt(lambda: drift_report(reference.copy(), current.copy()))
    is_report = isinstance(report, dict) and "error" not in report
    obs["report_columns"] = sorted(report) if is_report else report
    obs["report"] = report
    obs["report_threshold_0_5"] = attempt(
        lambda: {column: entry["drift"] for column, entry in
                 drift_report(reference.copy(), current.copy(), threshold=0.5).items()}
    )
    args.out.write_text(json.dumps(obs))


if __name__ == "__main__":
    main()
