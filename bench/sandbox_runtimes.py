"""What gVisor (runsc) costs against runc, per stage and per lab, measured in the same run.

    python bench/sandbox_runtimes.py [--repeats 6] [--labs train-model,validate-data] [--lab-repeats 1]
                                     [--database shipwright_bench_runtimes] [--var-dir var/bench-runtimes]

1. per stage: median wall time of Sandbox.run for three stages, `true`, `python -c
   pass` and `import sklearn, pandas, numpy` (the lab image's heavy imports), under
   runc and under runsc, interleaved, and the ratio runsc / runc;
2. per lab: `manage.py grade` of each named lab's reference solution (the sample
   course, intake included) under each runtime, interleaved: median wall time and
   the ratio, and the same verdict under both (a different verdict is a correctness
   failure: exit 1).
An operator reads the ratios to choose SHIPWRIGHT_SANDBOX_RUNTIME (docs/operations.md).
Needs the engine with runsc registered (make engine) and the lab image (make images).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _setup import REPO, bench_env, ensure_database, exit_on_sigterm, manage, print_table

from grading.sandbox import Limits, Sandbox

RUNTIMES = ("runc", "runsc")
LIMITS = Limits(time_s=60, memory_mb=1024, output_kb=64)
STAGES = {
    "true": ["true"],
    "python -c pass": ["python", "-c", "pass"],
    "import sklearn, pandas, numpy": ["python", "-c", "import sklearn, pandas, numpy"],
}
COURSE = "mlops-foundations"


def stage_times(repeats: int) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    sandboxes = {
        runtime: Sandbox(
            run_id=f"bench-rt-{runtime}-{uuid.uuid4().hex[:6]}",
            image="shipwright-lab:py311",
            workspace_mb=16,
            runtime=runtime,
        )
        for runtime in RUNTIMES
    }
    for sb in sandboxes.values():
        sb.__enter__()
    try:
        for sb in sandboxes.values():  # warm-up: first start pays for caches
            sb.run(name="warmup", argv=["true"], limits=LIMITS)
        for i in range(repeats):
            for label, argv in STAGES.items():
                for runtime, sb in sandboxes.items():
                    t = time.perf_counter()
                    result = sb.run(name=f"s{i}-{len(times)}", argv=argv, limits=LIMITS)
                    elapsed = time.perf_counter() - t
                    if result.exit_code != 0:
                        raise SystemExit(f"{label} failed under {runtime}: {result.output[-500:]}")
                    times.setdefault((label, runtime), []).append(elapsed)
    finally:
        for sb in sandboxes.values():
            sb.__exit__(None, None, None)
    return times


def reference_dir(lab: str) -> Path:
    import yaml

    from labs.lab_spec import LabSpec
    from labs.variants import hidden_relative

    folder = REPO / "content" / COURSE / "labs" / lab
    spec = LabSpec.model_validate(yaml.safe_load((folder / "lab.yaml").read_text()))
    if not spec.reference:
        raise SystemExit(f"lab {lab} has no reference solution")
    return folder / "hidden" / hidden_relative(spec.reference)


def grade(env: dict[str, str], lab: str, source: Path, runtime: str) -> tuple[float, str, float]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", "grade", f"{COURSE}/{lab}", str(source), "--json"],
        cwd=REPO,
        env={**env, "SHIPWRIGHT_SANDBOX_RUNTIME": runtime},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-2000:])
        raise SystemExit(f"grading {lab} under {runtime} failed (exit {proc.returncode})")
    document = json.loads(proc.stdout)
    stages = sum(stage.get("duration_s") or 0 for stage in document.get("stages", []))
    return elapsed, document["status"], stages


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6, help="runs of each stage per runtime (default 6)")
    parser.add_argument(
        "--labs", default="train-model,validate-data", help="labs of the sample course, comma-separated"
    )
    parser.add_argument("--lab-repeats", type=int, default=1, help="gradings of each lab per runtime (default 1)")
    parser.add_argument("--database", default="shipwright_bench_runtimes")
    parser.add_argument("--var-dir", default="var/bench-runtimes")
    args = parser.parse_args()

    rows: list[tuple[str, str, str]] = []
    times = stage_times(args.repeats)
    for label in STAGES:
        runc, runsc = (statistics.median(times[(label, runtime)]) for runtime in RUNTIMES)
        rows.append((f"stage `{label}`: runc / runsc (median s)", f"{runc:.2f} / {runsc:.2f}", f"{runsc / runc:.2f}x"))

    print_table(rows)
    rows = []
    labs = [lab for lab in args.labs.split(",") if lab]
    if labs:
        ensure_database(args.database)
        env = bench_env(database=args.database, var_dir=args.var_dir, redis_db=None, DJANGO_DEBUG="1")
        manage(env, "migrate", "--noinput")
        manage(env, "generate_signing_key", "--if-missing")
        manage(env, "import_content", str(REPO / "content"))
        for lab in labs:
            source = reference_dir(lab)
            grade(env, lab, source, "runc")  # warm-up: extracts assets, computes the reference observations
            walls: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
            stage_sums: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
            verdicts: dict[str, set[str]] = {runtime: set() for runtime in RUNTIMES}
            for _ in range(args.lab_repeats):
                for runtime in RUNTIMES:
                    wall, status, stages = grade(env, lab, source, runtime)
                    walls[runtime].append(wall)
                    stage_sums[runtime].append(stages)
                    verdicts[runtime].add(status)
            if verdicts["runc"] != verdicts["runsc"] or verdicts["runc"] != {"passed"}:
                print(f"{lab}: verdicts differ or fail: {verdicts}", file=sys.stderr)
                return 1
            runc, runsc = (statistics.median(walls[runtime]) for runtime in RUNTIMES)
            s_runc, s_runsc = (statistics.median(stage_sums[runtime]) for runtime in RUNTIMES)
            rows.append(
                (f"lab {lab}: graded, runc / runsc (median s)", f"{runc:.1f} / {runsc:.1f}", f"{runsc / runc:.2f}x")
            )
            rows.append(
                (
                    f"lab {lab}: its stages, runc / runsc (s)",
                    f"{s_runc:.1f} / {s_runsc:.1f}",
                    f"{s_runsc / s_runc:.2f}x",
                )
            )
    if rows:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
