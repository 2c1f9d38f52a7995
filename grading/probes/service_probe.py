"""Service probe: start the learner's server, send the lab's requests, record what
came back. Judges nothing.

    python -s -E service_probe.py CONFIG.json

The server runs as the learner (uid 1000, probe_common.as_learner); this probe as
the grader, so nothing the server or its children do can reach this process or
/grader-out.

With "external": true the server is already running in another container (the
learner's built image, grading/sandbox.py run_image_service) whose network namespace
this probe's container shares: the probe starts nothing and only sends the requests.
The host sends it SIGUSR1 once that container has exited (its code and output are the
host's to report), so it stops waiting for an answer that cannot come. Files to capture
are then read by the host too (from the other container's /tmp).

CONFIG: {"start": [argv], "external": false, "port": 8000, "ready_path": "/health", "ready_timeout_s": 20,
         "env": {...}, "requests": [{"name", "method", "path", "json" | "body", "headers"}],
         "latency": {"method", "path", "json", "count"} | null, "capture": [paths],
         "driver": "/grader/PATH.py" | null}

The driver is the lab's own: `drive(client)` sends what it likes through the probe's
client (traffic made up afresh each run, a scrape of /metrics) and returns a dict of
JSON values that joins the observations. It runs here, as the grader, so the server
cannot reach what it records either.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx
from learner_files import LearnerFileError, decode_utf8, load_json, read_regular_file
from probe_common import as_learner, write_observations

OUT = Path(os.environ.get("GRADER_OUT", "/grader-out")) / "observations.json"
MAX_TEXT = 2000
MAX_CAPTURE = 1_000_000
# What this probe records besides a driver's observations (which may not replace them).
PROBE_KEYS = frozenset(
    {"responses", "ready", "latency_ms", "latency_statuses", "window", "alive_at_end", "captured", "driver_error"}
)


def _body(spec: dict) -> bytes | None:
    if "json" in spec:
        return json.dumps(spec["json"]).encode()
    if "body" in spec:
        return spec["body"].encode()
    return None


def _call(client: httpx.Client, spec: dict) -> dict:
    body = _body(spec)
    headers = dict(spec.get("headers") or {})
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["content-type"] = "application/json"
    record: dict = {"method": spec.get("method", "GET"), "path": spec["path"]}
    if body is not None:
        record["body_sha256"] = hashlib.sha256(body).hexdigest()
        record["sent"] = body[:MAX_TEXT].decode("utf-8", "replace")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            # What the judges need of a long body: list lengths and short string fields.
            record["sent_lengths"] = {k: len(v) for k, v in parsed.items() if isinstance(v, list)}
            record["sent_strings"] = {k: v for k, v in parsed.items() if isinstance(v, str) and len(v) < 500}
    started = time.perf_counter()
    try:
        response = client.request(record["method"], spec["path"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        record.update(status=None, error=f"{type(exc).__name__}: {exc}", ms=(time.perf_counter() - started) * 1000)
        return record
    record.update(status=response.status_code, ms=(time.perf_counter() - started) * 1000)
    # The learner's server wrote this body: 100,000 nested brackets would raise
    # RecursionError from response.json() and end the probe without observations.
    try:
        record["json"] = load_json(
            response.content, name=f"the answer to {record['method']} {record['path']}", allow_non_finite=True
        )
    except LearnerFileError:
        record["text"] = response.content[:MAX_TEXT].decode("utf-8", "replace")
    return record


def _wait_ready(client: httpx.Client, server: subprocess.Popen | _External, config: dict) -> dict:
    started = time.monotonic()
    last: dict = {"status": None, "error": "no answer"}
    while time.monotonic() - started < config.get("ready_timeout_s", 20):
        if server.poll() is not None:
            return {**last, "exited": server.returncode, "seconds": round(time.monotonic() - started, 3)}
        last = _call(client, {"method": "GET", "path": config.get("ready_path", "/health")})
        if last["status"] == 200:
            break
        time.sleep(0.2)
    return {**last, "seconds": round(time.monotonic() - started, 3)}


def _drive(path: str, client: httpx.Client, taken: set[str]) -> dict:
    """What the lab's driver returns, or its failure as `driver_error` (a fault of the
    lab, which lab_check shows its author): never a crash that leaves no observations."""
    try:
        spec = importlib.util.spec_from_file_location("lab_driver", path)
        assert spec is not None and spec.loader is not None, f"cannot load {path}"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.drive(client)
        if not isinstance(result, dict):
            raise TypeError(f"drive() returned {type(result).__name__}, not a dict")
        clash = sorted(taken & result.keys())
        if clash:
            raise KeyError(f"drive() returned keys the probe records itself: {clash}")
        json.dumps(result)
    except Exception:
        return {"driver_error": traceback.format_exc(limit=-4)[-MAX_TEXT:]}
    return result


def _stop(server: subprocess.Popen | _External) -> None:
    if isinstance(server, subprocess.Popen) and server.poll() is None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.wait()


def _capture(paths: list[str]) -> dict:
    """Text of each file, or None with the reason under "PATH:error" (it could not be
    opened) or "PATH:problem" (it is there but no log: a FIFO, too big, not UTF-8)."""
    captured: dict = {}
    for path in paths:
        captured[path] = None
        try:
            captured[path] = decode_utf8(read_regular_file(path, name=path, max_bytes=MAX_CAPTURE), name=path)
        except LearnerFileError as exc:
            captured[f"{path}:problem"] = str(exc)
        except OSError as exc:
            captured[f"{path}:error"] = f"{type(exc).__name__}: {exc.strerror}"
    return captured


class _External:
    """The server of another container: the host reports how it ended, and signals
    this probe (SIGUSR1) when it has (grading/sandbox.py, run_image_service)."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        signal.signal(signal.SIGUSR1, self._exited)

    def _exited(self, signum: int, frame: object) -> None:
        self.returncode = -1  # the real code is the host's: Sandbox.run_image_service

    def poll(self) -> int | None:
        return self.returncode


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    for path in config.get("capture", []):
        try:
            os.unlink(path)  # a file the submission brought must not count as the log
        except OSError:
            pass
    env = {**os.environ, **config.get("env", {})}
    server: subprocess.Popen | _External
    if config.get("external"):
        server = _External()
    else:
        server = subprocess.Popen(
            config["start"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **as_learner(),
        )
    observations: dict = {"responses": {}}
    try:
        base = f"http://127.0.0.1:{config.get('port', 8000)}"
        with httpx.Client(base_url=base, timeout=10.0, trust_env=False) as client:
            observations["ready"] = _wait_ready(client, server, config)
            if observations["ready"]["status"] == 200:
                started = time.time()
                for spec in config.get("requests", []):
                    observations["responses"][spec["name"]] = _call(client, spec)
                latency = config.get("latency")
                if latency:
                    calls = [_call(client, latency) for _ in range(latency.get("count", 50))]
                    observations["latency_ms"] = [round(c["ms"], 3) for c in calls]
                    observations["latency_statuses"] = [c["status"] for c in calls]
                observations["window"] = [started, time.time()]
                if config.get("driver"):
                    observations.update(_drive(config["driver"], client, set(observations) | PROBE_KEYS))
                time.sleep(0.3)  # let a server that logs from a background thread flush
            observations["alive_at_end"] = server.poll() is None
    finally:
        _stop(server)
        observations["captured"] = _capture(config.get("capture", []))
        write_observations(OUT, observations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
