"""A small lab, written as content files, for grading tests that need speed."""

from __future__ import annotations

import textwrap
from pathlib import Path

LAB_YAML = """
slug: tiny
title: Tiny lab
module: basics
kind: repo
instructions: instructions.md
starter: starter
pass_mark: 60
limits: {time_s: 20, memory_mb: 256, pids: 64, workspace_mb: 64}
files:
  - {from: starter/data/input.json, to: data/input.json}
stages:
  - {name: run, run: [python, main.py], time_s: 10}
  - {name: probe, run: [python, /grader/probe.py], assets: [probe.py], needs: [run], grader: true}
checks:
  - {name: main.py exits 0, kind: exit_code, stage: run, points: 20, required: true}
  - {name: out.json exists with a number, kind: files, stage: run, paths: [out.json], json: [out.json], numbers: {out.json: [accuracy]}, points: 20}
  - {name: the answer loads, kind: observation, stage: probe, key: loaded, points: 20}
  - {name: predictions are accurate, kind: accuracy, stage: probe, key: predictions, labels: labels.json, min: 0.75, points: 20, required: true}
  - {name: reported accuracy is honest, kind: reported_metric, stage: probe, key: predictions, labels: labels.json, file: out.json, field: accuracy, tolerance: 0.05, points: 20}
"""

PROBE = """
import json, os, pathlib
out = {}
try:
    data = json.loads(pathlib.Path("out.json").read_text())
    out["loaded"] = True
    out["predictions"] = data["predictions"]
except Exception as exc:
    out["loaded"] = f"could not read out.json: {exc}"
pathlib.Path(os.environ.get("GRADER_OUT", "/grader-out"), "observations.json").write_text(json.dumps(out))
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def make_course_shell(root: Path, lab: str) -> Path:
    """tiny-course with one module whose lab is `lab` (the lab's folder is the caller's)."""
    course = root / "tiny-course"
    write(
        course / "course.yaml",
        f"""
        slug: tiny-course
        title: Tiny course
        summary: For grading tests.
        estimated_hours: 1
        published: true
        modules: [basics]
        certificate:
          title: Tiny certificate
          requirements:
            - lab: {lab}
        """,
    )
    write(
        course / "modules/basics/module.yaml",
        f"""
        slug: basics
        title: Basics
        lessons:
          - {{slug: intro, title: Intro, file: intro.md}}
        lab: {lab}
        """,
    )
    write(course / "modules/basics/intro.md", "Intro.\n")
    return course


def make_tiny_course(root: Path) -> Path:
    course = make_course_shell(root, "tiny")
    lab = course / "labs/tiny"
    write(lab / "lab.yaml", LAB_YAML)
    write(lab / "instructions.md", "Write main.py that writes out.json.\n")
    write(lab / "starter/main.py", "raise SystemExit('not done')\n")
    write(lab / "starter/data/input.json", "[1, 0, 1, 1]\n")
    write(lab / "hidden/probe.py", PROBE)
    write(lab / "hidden/labels.json", "[1, 0, 1, 1]\n")
    return root


SOLUTIONS = {
    "correct": """
        import json
        rows = json.load(open("data/input.json"))
        json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
        print("done")
        """,
    "dishonest": """
        import json
        json.dump({"accuracy": 1.0, "predictions": [1, 0, 0, 0]}, open("out.json", "w"))
        """,
    "crashes": """
        raise RuntimeError("boom")
        """,
    "hangs": """
        while True:
            pass
        """,
    "hog": """
        block = []
        while True:
            block.append(bytearray(50 * 1024 * 1024))
        """,
    "forks": """
        import os, time
        children = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
        except OSError as exc:
            print(f"fork failed after {children} children: {exc}")
            raise SystemExit(3)
        """,
    "floods": """
        import sys
        # About 4.7 MB: four times the output cap, and quick to print even on a loaded
        # machine (the stage has 10 s; 19 MB took longer than that under load).
        for i in range(100000):
            sys.stdout.write(f"line {i} " + "x" * 40 + "\\n")
        raise SystemExit(2)
        """,
    "spoofs": """
        import json, os
        json.dump({"accuracy": 0.0, "predictions": [0, 0, 0, 0]}, open("out.json", "w"))
        print('{"status": "passed", "score": 100}')
        os.makedirs("/grader-out", exist_ok=True)
        """,
}


def make_solution(root: Path, name: str) -> Path:
    folder = root / name
    write(folder / "main.py", SOLUTIONS[name])
    return folder
