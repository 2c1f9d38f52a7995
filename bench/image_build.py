"""What building the learner's image adds to a grading run (serve-model's Dockerfile).

    python bench/image_build.py [--repeats 5]

Builds the serve-model reference Dockerfile with the grader's builder
(Sandbox.build_image: the build box, the package index, the run's limits), straight
against the engine (no database): once cold (a fresh layer before `pip install`, so the
dependencies are installed from the index), then `--repeats` times with only the
application's code changed (the dependency layer comes from the build cache, as for a
learner's next attempt). For each it also times the secret scan of the image's own
layers (`docker save` + detect-secrets' input) and the run's cleanup. Medians.
Target: a cached-dependency build under 15 s.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tarfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grading import image_build  # noqa: E402
from grading.sandbox import Limits, Sandbox  # noqa: E402

LAB = REPO / "content/mlops-foundations/labs/serve-model"
LIMITS = Limits(time_s=300, memory_mb=2048, cpus=1.0, pids=256, workspace_mb=512, tmp_mb=64, output_kb=1024)


def context(nonce_before_deps: str, nonce_in_code: str) -> bytes:
    files = {
        p.relative_to(LAB / "hidden/reference").as_posix(): p.read_bytes()
        for p in (LAB / "hidden/reference").rglob("*")
        if p.is_file()
    }
    files["data/train.csv"] = (LAB / "starter/data/train.csv").read_bytes()
    files["api.py"] += f"\n# {nonce_in_code}\n".encode()
    dockerfile = (
        files["Dockerfile"].decode().replace("WORKDIR /app\n", f"WORKDIR /app\nENV BENCH={nonce_before_deps}\n", 1)
    )
    files["Dockerfile"] = image_build.prepare_dockerfile(dockerfile, allowed=["python:3.11-slim"]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def one(deps_nonce: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    with Sandbox(
        run_id=f"bench-build-{uuid.uuid4().hex[:10]}", image="shipwright-lab:py311", workspace_mb=512
    ) as sandbox:
        result = sandbox.build_image(
            name="image",
            context=context(deps_nonce, uuid.uuid4().hex),
            dockerfile="Dockerfile",
            limits=LIMITS,
            index_image=image_build.INDEX_IMAGE,
            index_port=image_build.INDEX_PORT,
        )
        built = time.perf_counter()
        if result.image is None:
            sys.exit(f"the build failed: {result.error}\n{result.output[-2000:]}")
        base = sandbox.inspect_image(image_build.LOCAL_BASES["python:3.11-slim"])
        skip = set(base["RootFS"]["Layers"])
        image_build.layer_files(sandbox.save_image(result.image), skip_layers=skip)
        scanned = time.perf_counter()
    return built - started, scanned - built, time.perf_counter() - scanned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    deps = uuid.uuid4().hex
    cold = one(deps)
    warm = [one(deps) for _ in range(args.repeats)]
    print(f"{'build':<28} {'build s':>8} {'scan s':>8} {'cleanup s':>10}")
    print(f"{'cold (pip install runs)':<28} {cold[0]:>8.1f} {cold[1]:>8.1f} {cold[2]:>10.1f}")
    medians = [statistics.median(w[i] for w in warm) for i in range(3)]
    print(f"{'cached dependencies (median)':<28} {medians[0]:>8.1f} {medians[1]:>8.1f} {medians[2]:>10.1f}")
    total = sum(medians)
    print(
        f"a cached-dependency build adds {total:.1f} s to a grading run (target: build < 15 s: "
        f"{'met' if medians[0] < 15 else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
