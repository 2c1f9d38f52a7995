"""Overhead of grading.sandbox against a bare `docker run`, measured in the same run.

    python bench/sandbox_overhead.py [--repeats 10] [--stages 12] [--image shipwright-lab:py311]

1. median wall time of Sandbox.run(["true"]) (create, attach, start, wait, inspect,
   remove) versus `docker run --rm --network none IMAGE true`; target ratio <= 1.3;
2. throughput of K trivial stages with 1 versus 2 sandboxes running concurrently;
   target ratio >= 1.7; the same ratio for bare `docker run` is printed beside it, as
   the engine's own ceiling on this machine (2 cores: starting a container is CPU work
   in dockerd, containerd and runc).
Needs the engine (docker/engine.sh) and the image (docker/build-images.sh).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.sandbox import Limits, Sandbox  # noqa: E402

LIMITS = Limits(time_s=30, memory_mb=256, output_kb=64)


def _docker_cli() -> str:
    # Debian's client matches the 20.10 engine (see docker/engine.sh).
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker") or "docker"


def time_bare(image: str, repeats: int) -> list[float]:
    cli = _docker_cli()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([cli, "run", "--rm", "--network", "none", image, "true"], check=True)
        times.append(time.perf_counter() - t)
    return times


def time_sandbox(image: str, repeats: int) -> list[float]:
    times = []
    with Sandbox(run_id=f"bench-{uuid.uuid4().hex[:8]}", image=image, workspace_mb=16) as sb:
        sb.run(name="warmup", argv=["true"], limits=LIMITS)
        for i in range(repeats):
            t = time.perf_counter()
            result = sb.run(name=f"true-{i}", argv=["true"], limits=LIMITS)
            times.append(time.perf_counter() - t)
            assert result.exit_code == 0, result.output
    return times


def throughput(image: str, stages: int, workers: int) -> float:
    """Stages per second for `stages` trivial stages spread over `workers` sandboxes.

    The sandboxes are entered before the clock starts: this measures stages, not setup.
    """
    per_worker = [stages // workers + (1 if i < stages % workers else 0) for i in range(workers)]
    sandboxes = [Sandbox(run_id=f"bench-{uuid.uuid4().hex[:8]}", image=image, workspace_mb=16) for _ in per_worker]
    for sb in sandboxes:
        sb.__enter__()
    try:

        def work(i: int) -> None:
            for n in range(per_worker[i]):
                assert sandboxes[i].run(name=f"s{n}", argv=["true"], limits=LIMITS).exit_code == 0

        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, range(workers)))
        return stages / (time.perf_counter() - t)
    finally:
        for sb in sandboxes:
            sb.__exit__(None, None, None)


def bare_throughput(image: str, stages: int, workers: int) -> float:
    """The same with `docker run --rm`, the engine's own ceiling on this machine."""
    cli = _docker_cli()
    per_worker = [stages // workers + (1 if i < stages % workers else 0) for i in range(workers)]

    def work(n: int) -> None:
        for _ in range(n):
            subprocess.run([cli, "run", "--rm", "--network", "none", image, "true"], check=True)

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, per_worker))
    return stages / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="shipwright-lab:py311")
    parser.add_argument("--repeats", type=int, default=10, help="runs per median (default 10)")
    parser.add_argument("--stages", type=int, default=12, help="K stages for the throughput test (default 12)")
    args = parser.parse_args()

    # Interleave the two so a slow phase of the machine hits both alike.
    bare, sandbox = [], []
    for _ in range(2):
        bare += time_bare(args.image, args.repeats // 2 or 1)
        sandbox += time_sandbox(args.image, args.repeats // 2 or 1)
    bare_med, sb_med = statistics.median(bare), statistics.median(sandbox)
    one = throughput(args.image, args.stages, 1)
    two = throughput(args.image, args.stages, 2)
    bare_one = bare_throughput(args.image, args.stages, 1)
    bare_two = bare_throughput(args.image, args.stages, 2)

    rows = [
        ("docker run --rm ... true (median s)", f"{bare_med:.3f}", ""),
        ("Sandbox.run(['true']) (median s)", f"{sb_med:.3f}", ""),
        ("overhead ratio sandbox / bare", f"{sb_med / bare_med:.2f}x", "target <= 1.3x"),
        (f"throughput, 1 sandbox ({args.stages} stages/s)", f"{one:.2f}", ""),
        (f"throughput, 2 sandboxes ({args.stages} stages/s)", f"{two:.2f}", ""),
        ("concurrency ratio 2 / 1", f"{two / one:.2f}x", "target >= 1.7x"),
        ("bare docker run, concurrency ratio 2 / 1", f"{bare_two / bare_one:.2f}x", "engine ceiling"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>8}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>8}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
