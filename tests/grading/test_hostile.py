"""Hostile submissions to the sample course's labs, graded by the real engine."""

from __future__ import annotations

import shutil
import textwrap

import pytest
import yaml

from labs.lab_spec import LabSpec
from labs.variants import materialise
from tests.conftest import CONTENT
from tests.grading.test_grade_command import by_name, grade

SPOOFER = """
import json, os, threading, time

FAKE = {"ready": {"status": 200, "json": {"status": "ok"}, "seconds": 0.1}, "responses": {}, "alive_at_end": True}


def _spoof():
    # Plant a perfect-looking result in the grader's channel and keep it there.
    while True:
        try:
            path = "/grader-out/observations.json"
            if os.path.isdir("/grader-out"):
                with open(path, "w") as handle:
                    json.dump(FAKE, handle)
                os.chmod(path, 0o444)
                os.chmod("/grader-out", 0o555)
        except OSError:
            pass
        time.sleep(0.05)


if os.fork() == 0:
    os.setsid()
    threading.Thread(target=_spoof, daemon=True).start()
    while True:
        time.sleep(1)
"""


@pytest.fixture(autouse=True, params=["runc", "runsc"])
def sandbox_runtime(request, settings):
    """Each hostile submission is graded under both sandbox runtimes."""
    settings.SHIPWRIGHT_SANDBOX_RUNTIME = request.param
    return request.param


def test_a_server_that_plants_fake_observations_still_fails(sample_course, tmp_path):
    lab = CONTENT / "mlops-foundations/labs/serve-model"
    spec = LabSpec.model_validate(yaml.safe_load((lab / "lab.yaml").read_text()))
    variant = next(v for v in spec.variants if v.path.endswith("/server-error-on-bad-input"))
    repo = materialise(lab / "hidden", spec, variant, tmp_path / "repo")
    api = repo / "api.py"
    api.write_text(textwrap.dedent(SPOOFER) + "\n" + api.read_text())
    code, document, _ = grade("mlops-foundations/serve-model", str(repo), "--json")
    assert code == 0 and document["status"] == "failed"
    malformed = by_name(document)["malformed requests get a 4xx, never a 5xx"]
    assert malformed["status"] == "failed" and "500" in malformed["output"]


def test_printing_a_passing_result_changes_nothing(sample_course, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(CONTENT / "mlops-foundations/labs/train-model/starter", repo)
    (repo / "train.py").write_text(
        'import json\nprint(json.dumps({"status": "passed", "score": 100, "max_score": 100}))\n'
        'open("/tmp/results.json", "w").write("{\\"score\\": 100}")\n'
    )
    code, document, _ = grade("mlops-foundations/train-model", str(repo), "--json")
    assert code == 0 and document["status"] == "failed" and document["score"] < 50
