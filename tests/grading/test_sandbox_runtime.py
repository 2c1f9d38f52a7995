"""gVisor (runsc) as the sandbox runtime, per site or per lab, through the real
engine: learner code then talks to gVisor's kernel, which reports itself as Linux
4.4.0 whatever the host runs (runc shows the host's kernel)."""

from __future__ import annotations

import platform

import pytest

from grading import system_checks
from grading.sandbox import Sandbox, SandboxUnavailable
from tests.grading.test_grade_command import by_name, grade
from tests.grading.tiny_lab import LAB_YAML, make_tiny_course, write

GVISOR_RELEASE = "4.4.0"

KERNEL_REPORTER = """
    import json, platform
    print("kernel", platform.release())
    rows = json.load(open("data/input.json"))
    json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
"""


def _import_tiny(tmp_path, lab_yaml: str):
    from courses.importer import content_import
    from labs.models import Lab

    root = make_tiny_course(tmp_path / "content")
    write(root / "tiny-course/labs/tiny/lab.yaml", lab_yaml)
    content_import(root)
    return Lab.objects.get(slug="tiny")


def _kernel_seen(tmp_path) -> tuple[str, dict]:
    write(tmp_path / "solution/main.py", KERNEL_REPORTER)
    code, document, err = grade("tiny-course/tiny", str(tmp_path / "solution"), "--json")
    assert code == 0, err
    output = next(stage for stage in document["stages"] if stage["name"] == "run")["output"]
    return output.split("kernel ", 1)[1].split()[0], document


def test_a_lab_that_asks_for_gvisor_runs_its_stages_under_runsc_on_a_runc_site(db, tmp_path, settings):
    settings.SHIPWRIGHT_SANDBOX_RUNTIME = "runc"
    _import_tiny(tmp_path, LAB_YAML + "runtime: runsc\n")

    kernel, document = _kernel_seen(tmp_path)

    assert kernel == GVISOR_RELEASE != platform.release()
    # The grader's probe ran under gVisor too, and the verdict is the same as under runc.
    assert document["status"] == "passed"
    assert by_name(document)["predictions are accurate"]["status"] == "passed"


def test_the_site_runtime_applies_to_every_lab_and_runc_shows_the_hosts_kernel(db, tmp_path, settings):
    _import_tiny(tmp_path, LAB_YAML)

    settings.SHIPWRIGHT_SANDBOX_RUNTIME = "runc"
    assert _kernel_seen(tmp_path / "a")[0] == platform.release()
    settings.SHIPWRIGHT_SANDBOX_RUNTIME = "runsc"
    assert _kernel_seen(tmp_path / "b")[0] == GVISOR_RELEASE


def test_a_lab_cannot_ask_for_an_unknown_runtime(db, tmp_path):
    from courses.importer import ContentError, content_import

    root = make_tiny_course(tmp_path / "content")
    write(root / "tiny-course/labs/tiny/lab.yaml", LAB_YAML + "runtime: kata\n")
    with pytest.raises(ContentError) as failure:
        content_import(root)
    [problem] = failure.value.problems
    assert "runtime" in str(problem) and "runsc" in str(problem)


def test_an_unregistered_runtime_is_the_platforms_error_naming_the_fix():
    with pytest.raises(SandboxUnavailable, match=r"no runtime 'nosuch'.*daemon.json"):
        with Sandbox(run_id="t-no-runtime", image="shipwright-lab:py311", workspace_mb=8, runtime="nosuch"):
            pass


def test_the_system_check_warns_about_an_unregistered_site_runtime(db, settings):
    settings.SHIPWRIGHT_SANDBOX_RUNTIME = "nosuch"

    [message] = system_checks.check_engine_and_images()

    assert message.id == "grading.W005" and "nosuch" in message.msg
    assert "`make engine`" in message.hint


def test_runsc_is_registered_by_make_engine():
    # docker/engine.sh registers it; the sandbox tests above and test_sandbox.py's
    # [runsc] cases depend on it.
    assert system_checks.check_engine_and_images() == []
    import docker

    runtimes = docker.from_env().info()["Runtimes"]
    # --network=host: the container's own namespace (loopback only), which a probe can join.
    assert runtimes["runsc"]["runtimeArgs"] == ["--network=host", "--oci-seccomp"]
