"""Building a learner's Dockerfile against the real engine (no mocks): the build
stage's limits, its only network (the package index), the instruction a failed build
names, and that a run leaves no image behind.

Needs the engine (docker/engine.sh) and the images of `make images`
(shipwright-lab:py311, shipwright-learner-base:py311, shipwright-index:py311)."""

from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest

from grading import image_build
from grading.sandbox import LABEL_RUN, Limits, Sandbox, SandboxUnavailable, engine_available, image_digest

pytestmark = pytest.mark.docker

IMAGE = "shipwright-lab:py311"
LIMITS = Limits(time_s=60, memory_mb=256, cpus=1.0, pids=64, workspace_mb=64, tmp_mb=16, output_kb=64)


@pytest.fixture(scope="module", autouse=True)
def engine() -> docker.DockerClient:
    if not engine_available():
        pytest.fail("Docker engine not reachable: start it with `bash docker/engine.sh`", pytrace=False)
    for image in (IMAGE, image_build.INDEX_IMAGE, *image_build.LOCAL_BASES.values()):
        try:
            image_digest(image)
        except SandboxUnavailable:
            pytest.fail(f"{image} missing: build it with `bash docker/build-images.sh`", pytrace=False)
    return docker.from_env()


def context(dockerfile: str, files: dict[str, str] | None = None) -> bytes:
    prepared = image_build.prepare_dockerfile(dockerfile, allowed=["python:3.11-slim"])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in {"Dockerfile": prepared, **(files or {})}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(sandbox: Sandbox, dockerfile: str, files: dict[str, str] | None = None, limits: Limits = LIMITS):
    return sandbox.build_image(
        name="image",
        context=context(dockerfile, files),
        dockerfile="Dockerfile",
        limits=limits,
        index_image=image_build.INDEX_IMAGE,
        index_port=image_build.INDEX_PORT,
    )


def run_id() -> str:
    return f"test-build-{uuid.uuid4().hex[:10]}"


def test_a_dockerfile_builds_with_pip_from_the_index_and_the_run_leaves_no_image(engine):
    rid = run_id()
    dockerfile = (
        "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\nCOPY app.py .\n"
        'RUN useradd --uid 10001 app\nUSER app\nCMD ["python", "app.py"]\n'
    )
    with Sandbox(run_id=rid, image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, dockerfile, {"requirements.txt": "joblib==1.6.0\n", "app.py": "import joblib\n"})
        assert result.error == "" and result.image is not None, result.output
        config = image_build.config_summary(sandbox.inspect_image(result.image))
        assert config["user"] == "app"
        assert config["cmd"] == ["python", "app.py"]
        history = [entry["CreatedBy"] for entry in sandbox.image_history(result.image)]
        assert any("pip install --no-cache-dir -r requirements.txt" in line for line in history)
    assert engine.api.images(all=True, filters={"label": f"{LABEL_RUN}={rid}"}) == []
    assert engine.api.containers(all=True, filters={"label": f"{LABEL_RUN}={rid}"}) == []
    with pytest.raises(docker.errors.ImageNotFound):
        engine.api.inspect_image(result.image)


def test_a_failed_build_names_the_failing_instruction_and_its_output():
    dockerfile = 'FROM python:3.11-slim\nWORKDIR /app\n# install\nRUN echo compiling && exit 3\nCMD ["true"]\n'
    with Sandbox(run_id=run_id(), image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, dockerfile)
    assert result.image is None
    assert "returned a non-zero code: 3" in result.error
    step = image_build.failed_step(result.output, image_build.instructions(dockerfile))
    assert step == image_build.Instruction(step=3, line=4, text="RUN echo compiling && exit 3")
    # The builder's own numbering (its run labels add steps at the end).
    assert "Step 3/" in result.output and ": RUN echo compiling && exit 3" in result.output
    assert "compiling" in result.output


def test_a_build_step_reaches_only_the_package_index():
    probe = (
        "import socket\n"
        "for host, port in [('1.1.1.1', 53), ('172.17.0.1', 2375), ('127.0.0.1', 5432), ('127.0.0.1', 6379),"
        " ('127.0.0.1', 3141)]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=2).close(); print('REACHED', host, port)\n"
        "    except OSError as exc:\n"
        "        print('blocked', host, port)\n"
    )
    # A fresh ENV first: a cached RUN from an earlier test run would print nothing.
    dockerfile = f"FROM python:3.11-slim\nENV NONCE={uuid.uuid4().hex}\nCOPY probe.py /probe.py\nRUN python /probe.py\n"
    with Sandbox(run_id=run_id(), image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, dockerfile, {"probe.py": probe})
    assert result.image is not None, result.output
    # The host's PostgreSQL and Redis listen on its 127.0.0.1: the build's loopback is the box's.
    assert "REACHED 127.0.0.1 3141" in result.output
    for target in ("1.1.1.1 53", "172.17.0.1 2375", "127.0.0.1 5432", "127.0.0.1 6379"):
        assert f"blocked {target}" in result.output


def test_build_steps_share_the_box_limits_memory_and_processes():
    hog = "RUN python -c \"b = bytearray(600 * 1024 * 1024); print('allocated')\"\n"
    with Sandbox(run_id=run_id(), image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, "FROM python:3.11-slim\n" + hog)
    assert result.image is None
    assert "\nallocated" not in result.output
    assert "returned a non-zero code: 137" in result.error
    forks = "RUN python -c \"import subprocess; [subprocess.Popen(['sleep', '30']) for _ in range(200)]\"\n"
    with Sandbox(run_id=run_id(), image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, f"FROM python:3.11-slim\nENV NONCE={uuid.uuid4().hex}\n" + forks)
    assert result.image is None
    assert "Resource temporarily unavailable" in result.output


def test_the_wall_clock_cancels_a_build_and_nothing_is_left(engine):
    rid = run_id()
    limits = Limits(time_s=5, memory_mb=256, cpus=1.0, pids=64, workspace_mb=64, tmp_mb=16, output_kb=64)
    with Sandbox(run_id=rid, image=IMAGE, workspace_mb=64) as sandbox:
        result = build(sandbox, "FROM python:3.11-slim\nRUN echo started && sleep 120\n", limits=limits)
        assert result.timed_out and result.image is None
        assert result.duration_s < 30
    assert engine.api.containers(all=True, filters={"label": f"{LABEL_RUN}={rid}"}) == []
    running = [c for c in engine.api.containers() if "sleep 120" in " ".join(c.get("Command", "").split())]
    assert running == []


@pytest.mark.parametrize(
    "dockerfile, message",
    [
        (
            "FROM shipwright-app:latest\n",
            "line 1: FROM shipwright-app:latest is not allowed here; this lab's Dockerfile may start FROM python:3.11-slim",
        ),
        (
            "ARG BASE=python:3.11-slim\nFROM $BASE\n",
            "line 2: FROM $BASE uses a build variable; name the base image itself (python:3.11-slim)",
        ),
        (
            "FROM python:3.11-slim\nCOPY --from=shipwright-lab:py311 /opt/venv /venv\n",
            "line 2: COPY --from=shipwright-lab:py311 names an image; --from may only name an earlier stage of this "
            "Dockerfile",
        ),
        (
            "FROM python:3.11-slim\nRUN --mount=type=secret,id=x cat /run/secrets/x\n",
            "line 2: RUN --mount needs BuildKit, which the grader's builder is not",
        ),
    ],
)
def test_a_dockerfile_may_name_only_the_allowed_bases_and_its_own_stages(dockerfile, message):
    with pytest.raises(image_build.DockerfileRejected) as raised:
        image_build.prepare_dockerfile(dockerfile, allowed=["python:3.11-slim"])
    assert str(raised.value) == message


def test_a_multi_stage_dockerfile_keeps_its_line_numbers_and_stage_names():
    dockerfile = "FROM python:3.11-slim AS build\nRUN true\nFROM python:3.11-slim\nCOPY --from=build /etc/hostname /x\n"
    prepared = image_build.prepare_dockerfile(dockerfile, allowed=["python:3.11-slim"])
    assert prepared.splitlines() == [
        "FROM shipwright-learner-base:py311 AS build",
        "RUN true",
        "FROM shipwright-learner-base:py311",
        "COPY --from=build /etc/hostname /x",
    ]
