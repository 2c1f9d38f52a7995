"""Serving the learner's built image (`service: {image_from: ...}`) against the real
engine: the stage's env reaches the server, the files it captures are read by the host
out of the container's /tmp (a regular file, size-capped, no link followed), and a
server that dies at start ends the wait at once with its exit code and its output.

A lab written here (stdlib server, no pip) keeps the builds to a few seconds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from labs.lab_spec import ServiceSpec
from tests.grading.test_grade_command import by_name, grade
from tests.grading.tiny_lab import make_course_shell, write

pytestmark = pytest.mark.docker

READY_TIMEOUT_S = 30
LAB_YAML = f"""
slug: tiny-image
title: Tiny image lab
module: basics
kind: repo
instructions: instructions.md
starter: starter
pass_mark: 60
limits: {{time_s: 60, memory_mb: 256, pids: 64, workspace_mb: 64}}
stages:
  - name: image
    build: {{dockerfile: Dockerfile, bases: ["python:3.11-slim"]}}
    time_s: 120
    memory_mb: 512
  - name: serve
    needs: [image]
    time_s: 60
    service:
      image_from: image
      ready_timeout_s: {READY_TIMEOUT_S}
      requests: requests.json
      env: {{CALL_LOG: /tmp/calls.jsonl}}
      capture: [/tmp/calls.jsonl]
checks:
  - {{name: the image builds, kind: image, stage: image, rule: builds, points: 20, required: true}}
  - {{name: the server answers, kind: http_ready, stage: serve, points: 40}}
  - name: one line per call
    kind: audit_log
    stage: serve
    file: /tmp/calls.jsonl
    rule: one_line_per_request
    logged: [call 1, call 2]
    points: 40
"""
REQUESTS = [
    {"name": "call 1", "method": "POST", "path": "/call", "json": {"n": 1}},
    {"name": "call 2", "method": "POST", "path": "/call", "json": {"n": 2}},
]
DOCKERFILE = """
FROM python:3.11-slim
COPY server.py /srv/server.py
USER 1000
CMD ["python", "/srv/server.py"]
"""
SERVER = """
import http.server, json, os

{before}

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer({{"status": "ok"}})

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        {on_call}
        self.answer({{"predictions": [1]}})

http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""
LOG_A_LINE = 'open(os.environ["CALL_LOG"], "a").write(json.dumps({"predictions": [1]}) + "\\n")'
SERVERS = {
    "logs": {"before": "", "on_call": LOG_A_LINE},
    # The log is a link to a file of the image: the host reads no link.
    "links": {"before": 'os.symlink("/etc/passwd", os.environ["CALL_LOG"])', "on_call": "pass"},
    # Two MB of log: more than the host reads back.
    "floods": {"before": "", "on_call": 'open(os.environ["CALL_LOG"], "a").write("x" * 1_000_001)'},
    "crashes": {"before": "print('model.pkl is missing', flush=True)\nraise SystemExit(3)", "on_call": "pass"},
}


@pytest.fixture
def image_lab(db, tmp_path):
    from courses.importer import content_import

    root = tmp_path / "content"
    course = make_course_shell(root, "tiny-image")
    lab = course / "labs/tiny-image"
    write(lab / "lab.yaml", LAB_YAML)
    write(lab / "instructions.md", "Serve your image.\n")
    write(lab / "starter/Dockerfile", DOCKERFILE)
    write(lab / "hidden/requests.json", json.dumps(REQUESTS))
    content_import(root)


def solution(root: Path, name: str) -> str:
    folder = root / name
    write(folder / "Dockerfile", DOCKERFILE)
    (folder / "server.py").write_text(textwrap.dedent(SERVER).format(**SERVERS[name]))
    return str(folder)


def graded(tmp_path: Path, name: str) -> tuple[dict, dict]:
    code, document, err = grade("tiny-course/tiny-image", solution(tmp_path, name), "--json")
    assert code == 0 and document is not None, err
    return document, by_name(document)


def test_the_server_gets_the_stage_env_and_the_host_reads_the_file_it_wrote(image_lab, tmp_path):
    document, checks = graded(tmp_path, "logs")
    assert document["status"] == "passed", checks
    assert checks["one line per call"]["output"] == "2 requests, 2 JSON line(s)"


def test_a_captured_file_that_is_a_link_counts_as_absent(image_lab, tmp_path):
    _, checks = graded(tmp_path, "links")
    assert checks["one line per call"]["status"] == "failed"
    assert checks["one line per call"]["output"] == (
        "no audit log at /tmp/calls.jsonl after the requests (no such regular file)"
    )


def test_a_captured_file_past_the_cap_is_named_not_read(image_lab, tmp_path):
    _, checks = graded(tmp_path, "floods")
    assert checks["one line per call"]["status"] == "failed"
    assert checks["one line per call"]["output"] == (
        "the audit log /tmp/calls.jsonl could not be read: "
        "/tmp/calls.jsonl is 2000002 bytes, more than the 1000000-byte limit"
    )


def test_a_server_that_dies_at_start_ends_the_wait_with_its_code_and_output(image_lab, tmp_path):
    document, checks = graded(tmp_path, "crashes")
    answers = checks["the server answers"]
    assert answers["status"] == "failed"
    assert answers["output"] == (
        "the container exited with code 3 before answering GET /health; its last output:\nmodel.pkl is missing"
    )
    serve = next(stage for stage in document["stages"] if stage["name"] == "serve")
    assert serve["duration_s"] < READY_TIMEOUT_S / 2


@pytest.mark.parametrize("path", ["/app/audit.jsonl", "/tmp", "/tmp/../etc/passwd", "tmp/audit.jsonl"])
def test_a_built_image_service_captures_only_files_under_tmp(path):
    with pytest.raises(ValidationError, match=f"capture names files under /tmp .*: not {path}"):
        ServiceSpec.model_validate({"image_from": "image", "requests": "r.json", "capture": [path]})
    assert ServiceSpec.model_validate({"start": ["x"], "requests": "r.json", "capture": [path]}).capture == [path]


def test_a_built_image_service_may_capture_a_file_under_tmp():
    spec = ServiceSpec.model_validate({"image_from": "image", "requests": "r.json", "capture": ["/tmp/a/audit.jsonl"]})
    assert spec.capture == ["/tmp/a/audit.jsonl"]
