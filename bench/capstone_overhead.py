"""Platform overhead of a full capstone grading, split by stage.

    python bench/capstone_overhead.py [--repeats 3]

Grades the capstone's reference solution with `manage.py grade --json` (the same code
path as the worker) in an isolated setup: PostgreSQL database `shipwright_bench_capstone`,
`var/bench-capstone`. A first, unmeasured grading warms the lab's asset and reference
caches. For each measured run it prints, per stage, the time the learner's own command
ran inside its container, and compares the wall time of the whole grading with the sum
of those stage times, measured in the same run: the platform's overhead as a ratio
(target <= 1.25x). Medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from _setup import REPO, bench_env, ensure_database, manage

DATABASE = "shipwright_bench_capstone"
LAB = "mlops-foundations/capstone"
SOURCE = REPO / "content/mlops-foundations/labs/capstone/hidden/reference"


def grade(env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "manage.py", "grade", LAB, str(SOURCE), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"grading failed ({run.returncode}): {run.stderr[-2000:]}")
    return wall, json.loads(run.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ensure_database(DATABASE)
    env = bench_env(database=DATABASE, var_dir="var/bench-capstone", redis_db=None, DJANGO_DEBUG="1")
    manage(env, "migrate", "--noinput")
    manage(env, "import_content", "content/")
    manage(env, "generate_signing_key", "--if-missing")
    grade(env)  # warm-up: extracts the lab's assets, computes the reference observations

    walls, stage_sums, per_stage = [], [], {}
    for _ in range(args.repeats):
        wall, document = grade(env)
        if document["status"] != "passed":
            raise SystemExit(f"the reference solution did not pass: {document['status']}")
        walls.append(wall)
        stage_sums.append(sum(stage["duration_s"] for stage in document["stages"]))
        for stage in document["stages"]:
            per_stage.setdefault(stage["name"], []).append(stage["duration_s"])

    print(f"{'stage':<28}{'median s':>10}")
    for name, values in per_stage.items():
        print(f"{name:<28}{statistics.median(values):>10.2f}")
    wall, stages = statistics.median(walls), statistics.median(stage_sums)
    print(f"{'sum of stage times':<28}{stages:>10.2f}")
    print(f"{'whole grading, wall':<28}{wall:>10.2f}")
    print(f"{'overhead ratio wall / sum':<28}{wall / stages:>9.2f}x  target <= 1.25x")
    print(f"({args.repeats} measured run(s) after one warm-up; manage.py grade, in-process grading)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
