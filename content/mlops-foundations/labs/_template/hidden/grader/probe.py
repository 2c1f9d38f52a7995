"""Grader stage of the template lab: read the learner's out.json and record what it holds.

    python /grader/grader/probe.py        (cwd: the learner's repository root)

It judges nothing: the host scores the observations against hidden/data/labels.json.
"""

import json
import os
import pathlib

out = {}
try:
    data = json.loads(pathlib.Path("out.json").read_text())
    out["loaded"] = True
    out["predictions"] = data["predictions"]
except Exception as exc:
    out["loaded"] = f"could not read out.json: {exc}"
pathlib.Path(os.environ.get("GRADER_OUT", "/grader-out"), "observations.json").write_text(json.dumps(out))
