"""Writes the service probe's request files for the API labs, deterministically,
from each lab's hidden holdout features:

    hidden/requests/serve.json  health, predictions, malformed input, latency
    hidden/requests/audit.json  predictions whose raw bytes differ from any
                                re-serialisation, some carrying an `email` field

Run from anywhere: python content/mlops-foundations/tools/make_requests.py [--check]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent.parent
LABS = {
    "serve-model": ("serve_holdout_features.csv", ["serve"]),
    "audit-trail": ("audit_holdout_features.csv", ["serve", "audit"]),
    "capstone": ("capstone_holdout_features.csv", ["serve", "audit"]),
}
EMAILS = ["ada.lovelace@example.org", "grace.hopper@example.com"]
JSON = {"content-type": "application/json"}


def rows_of(path: Path) -> list[list[float]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [[float(value) for value in row] for row in reader]


def serve_requests(rows: list[list[float]]) -> dict:
    post = {"method": "POST", "path": "/predict"}
    requests = [
        {"name": "predict_batch", **post, "json": {"features": rows}},
        {"name": "predict_small", **post, "json": {"features": rows[:3]}},
        {"name": "bad: a row of 29 numbers", **post, "json": {"features": [rows[0][:29]]}},
        {"name": "bad: a row of 31 numbers", **post, "json": {"features": [rows[0] + [1.0]]}},
        {"name": "bad: a flat list instead of rows", **post, "json": {"features": rows[0]}},
        {"name": "bad: strings instead of numbers", **post, "json": {"features": [["abc"] * 30]}},
        {"name": "bad: null instead of numbers", **post, "json": {"features": [[None] * 30]}},
        {"name": "bad: the features key is missing", **post, "json": {"rows": [rows[0]]}},
        {"name": "bad: an empty JSON object", **post, "json": {}},
        {"name": "bad: the body is not JSON", **post, "body": "this is not json", "headers": JSON},
        {"name": "bad: truncated JSON", **post, "body": '{"features": [[1.0, 2.0', "headers": JSON},
        {"name": "after: GET /health", "method": "GET", "path": "/health"},
        {"name": "after: POST /predict", **post, "json": {"features": rows[:2]}},
    ]
    return {"requests": requests, "latency": {**post, "json": {"features": [rows[0]]}, "count": 50}}


def audit_requests(rows: list[list[float]]) -> dict:
    def numbers(row: list[float], fmt: str) -> str:
        return ", ".join(format(x, fmt) for x in row)

    r = rows
    bodies = [
        json.dumps({"features": [r[0]]}, separators=(",", ":")),
        '{ "email" : "%s",\n  "features" : [ [%s] ] }' % (EMAILS[0], numbers(r[1], ".6f")),
        '{"features": [[%s], [%s]], "email": "%s"}' % (numbers(r[2], ".8g"), numbers(r[3], ".10f"), EMAILS[1]),
        '{"features":[[%s]]}\n' % numbers(r[4], ""),
        '{\t"email": "%s", "features": [[%s],\n[%s],\n[%s]]}'
        % (EMAILS[0], numbers(r[5], ".5e"), numbers(r[6], ".7f"), numbers(r[7], "")),
        json.dumps({"features": [r[8], r[9]]}, indent=2),
    ]
    requests = [{"name": "health before", "method": "GET", "path": "/health"}]
    requests += [
        {"name": f"audit {i + 1}", "method": "POST", "path": "/predict", "body": body, "headers": JSON}
        for i, body in enumerate(bodies)
    ]
    requests += [
        {"name": "health after 1", "method": "GET", "path": "/health"},
        {"name": "health after 2", "method": "GET", "path": "/health"},
    ]
    return {"requests": requests}


def outputs() -> dict[Path, str]:
    result = {}
    for lab, (features, kinds) in LABS.items():
        hidden = COURSE / "labs" / lab / "hidden"
        rows = rows_of(hidden / "data" / features)
        for kind in kinds:
            document = serve_requests(rows) if kind == "serve" else audit_requests(rows)
            result[hidden / "requests" / f"{kind}.json"] = json.dumps(document, indent=1) + "\n"
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is missing or differs")
    args = parser.parse_args()
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(COURSE)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run make_requests.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
