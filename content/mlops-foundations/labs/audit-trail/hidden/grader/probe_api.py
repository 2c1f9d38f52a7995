"""Grader probe for the model API labs (serve-model, audit-trail, capstone).

Starts the learner's service exactly as the contract says
(`uvicorn api:app --host 127.0.0.1 --port PORT` from the repo root), sends the
contract's requests and records raw observations as one JSON object. It judges
nothing: verdicts are computed on the host by judges.py from these observations.

    python probe_api.py --repo /workspace --features FEATURES.csv \
        --out /grader-out/observations.json [--port 8000] [--mode serve|audit]
        [--audit-log PATH]

serve mode: health, batch and single predictions, malformed requests, latency.
audit mode: a fresh server with AUDIT_LOG=PATH, GET /health twice, a fixed series
of POST /predict bodies (some with an `email` field), GET /health once more, then
the log file's text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd

START_TIMEOUT_S = 20.0
LATENCY_CALLS = 50
MAX_LOG_BYTES = 1_000_000
EMAILS = ["ada.lovelace@example.org", "grace.hopper@example.com"]


def start_server(repo: Path, port: int, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def call(client: httpx.Client, method: str, path: str, **kwargs) -> dict:
    """One request; never raises. Records status, JSON body (or text) and timing."""
    started = time.perf_counter()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        return {"status": None, "error": f"{type(exc).__name__}: {exc}",
                "ms": (time.perf_counter() - started) * 1000}
    record = {"status": response.status_code, "ms": (time.perf_counter() - started) * 1000}
    try:
        record["json"] = response.json()
    except ValueError:
        record["text"] = response.text[:500]
    return record


def wait_for_health(client: httpx.Client, proc: subprocess.Popen) -> dict:
    started = time.monotonic()
    last: dict = {"status": None, "error": "no answer"}
    while time.monotonic() - started < START_TIMEOUT_S:
        if proc.poll() is not None:
            return {**last, "exited": proc.returncode, "seconds": time.monotonic() - started}
        last = call(client, "GET", "/health")
        if last["status"] == 200:
            break
        time.sleep(0.2)
    return {**last, "seconds": time.monotonic() - started}


def raw(body: str) -> bytes:
    return body.encode("utf-8")


def serve_probe(client: httpx.Client, rows: list[list[float]]) -> dict:
    obs: dict = {}
    obs["predict_batch"] = call(client, "POST", "/predict", json={"features": rows})
    obs["predict_small"] = call(client, "POST", "/predict", json={"features": rows[:3]})
    malformed = {
        "row of 29 numbers": {"json": {"features": [rows[0][:29]]}},
        "row of 31 numbers": {"json": {"features": [rows[0] + [1.0]]}},
        "flat list instead of rows": {"json": {"features": rows[0]}},
        "strings instead of numbers": {"json": {"features": [["abc"] * 30]}},
        "null instead of numbers": {"json": {"features": [[None] * 30]}},
        "missing features key": {"json": {"rows": [rows[0]]}},
        "empty JSON object": {"json": {}},
        "body is not JSON": {"content": raw("this is not json"),
                             "headers": {"content-type": "application/json"}},
        "truncated JSON": {"content": raw('{"features": [[1.0, 2.0'),
                           "headers": {"content-type": "application/json"}},
    }
    obs["malformed"] = {name: call(client, "POST", "/predict", **kwargs)
                        for name, kwargs in malformed.items()}
    obs["after_malformed_health"] = call(client, "GET", "/health")
    obs["after_malformed_predict"] = call(client, "POST", "/predict", json={"features": rows[:2]})
    latencies = []
    statuses = []
    for i in range(LATENCY_CALLS):
        record = call(client, "POST", "/predict", json={"features": [rows[i % len(rows)]]})
        latencies.append(record["ms"])
        statuses.append(record["status"])
    obs["latency_ms"] = latencies
    obs["latency_statuses"] = statuses
    return obs


def audit_bodies(rows: list[list[float]]) -> list[bytes]:
    """Request bodies whose bytes differ from any re-serialisation of their JSON."""

    def numbers(row: list[float], fmt: str) -> str:
        return ", ".join(format(x, fmt) for x in row)

    r = rows
    return [
        raw(json.dumps({"features": [r[0]]}, separators=(",", ":"))),
        raw('{ "email" : "%s",\n  "features" : [ [%s] ] }' % (EMAILS[0], numbers(r[1], ".6f"))),
        raw('{"features": [[%s], [%s]], "email": "%s"}'
            % (numbers(r[2], ".8g"), numbers(r[3], ".10f"), EMAILS[1])),
        raw('{"features":[[%s]]}\n' % numbers(r[4], "")),
        raw('{\t"email": "%s", "features": [[%s],\n[%s],\n[%s]]}'
            % (EMAILS[0], numbers(r[5], ".5e"), numbers(r[6], ".7f"), numbers(r[7], ""))),
        raw(json.dumps({"features": [r[8], r[9]]}, indent=2)),
    ]


def audit_probe(client: httpx.Client, rows: list[list[float]], log_path: Path) -> dict:
    obs: dict = {"emails": EMAILS, "calls": []}
    call(client, "GET", "/health")
    started = time.time()
    for body in audit_bodies(rows):
        record = call(client, "POST", "/predict", content=body,
                      headers={"content-type": "application/json"})
        record["body_sha256"] = hashlib.sha256(body).hexdigest()
        obs["calls"].append(record)
    call(client, "GET", "/health")
    call(client, "GET", "/health")
    obs["window"] = [started, time.time()]
    time.sleep(0.3)  # a service that flushes on a background thread gets a moment
    try:
        with open(log_path, "rb") as handle:
            data = handle.read(MAX_LOG_BYTES)
        obs["log_text"] = data.decode("utf-8", errors="replace")
    except OSError as exc:
        obs["log_text"] = None
        obs["log_error"] = f"{type(exc).__name__}: {exc}"
    return obs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", choices=["serve", "audit"], default="serve")
    parser.add_argument("--audit-log", type=Path)
    args = parser.parse_args()

    rows = pd.read_csv(args.features).astype(float).values.tolist()
    env: dict[str, str] = {}
    if args.mode == "audit":
        log_path = (args.audit_log or args.out.parent / "audit.jsonl").resolve()
        if log_path.exists():
            log_path.unlink()
        env["AUDIT_LOG"] = str(log_path)
    proc = start_server(args.repo.resolve(), args.port, env)
    obs: dict = {"mode": args.mode}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=10.0) as client:
            obs["health"] = wait_for_health(client, proc)
            if obs["health"]["status"] == 200:
                if args.mode == "serve":
                    obs.update(serve_probe(client, rows))
                else:
                    obs.update(audit_probe(client, rows, log_path))
            obs["alive_at_end"] = proc.poll() is None
    finally:
        stop_server(proc)
    args.out.write_text(json.dumps(obs))


if __name__ == "__main__":
    main()
