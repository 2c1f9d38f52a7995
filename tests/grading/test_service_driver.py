"""A lab's traffic driver (service.driver) as the service probe runs it, in the lab
image: what it returns joins the observations; its failure is recorded as
driver_error, never a crash that would lose the probe's record."""

from __future__ import annotations

import json

import docker
import pytest

from grading import learner_files
from grading.runner import PROBES_DIR

pytestmark = pytest.mark.docker

IMAGE = "shipwright-lab:py311"
LEARNER_FILES = learner_files.__file__
DRIVERS = {
    "counts": "def drive(client):\n    return {'counted': True, 'client': client}\n",
    "raises": "def drive(client):\n    raise RuntimeError('a bug in the lab')\n",
    "list": "def drive(client):\n    return ['not', 'a', 'dict']\n",
    "clash": "def drive(client):\n    return {'responses': {}}\n",
    "object": "def drive(client):\n    return {'when': object()}\n",
}
# As the probe runs: python -s -E, its folder (the probes and learner_files.py, copied
# beside them by the runner) first on sys.path.
RUN = """
import json, sys
sys.path[:0] = ["/probes", "/libraries"]
import service_probe
names = %r
print(json.dumps({name: service_probe._drive(f"/drivers/{name}.py", 3, {"responses"}) for name in names}))
"""


@pytest.fixture(scope="module")
def driven(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("drivers")
    for name, body in DRIVERS.items():
        (folder / f"{name}.py").write_text(body)
    folder.chmod(0o755)
    output = docker.from_env().containers.run(
        IMAGE,
        ["python", "-s", "-E", "-c", RUN % list(DRIVERS)],
        network_mode="none",
        read_only=True,
        user="1000:1000",
        volumes={
            str(PROBES_DIR): {"bind": "/probes", "mode": "ro"},
            str(LEARNER_FILES): {"bind": "/libraries/learner_files.py", "mode": "ro"},
            str(folder): {"bind": "/drivers", "mode": "ro"},
        },
        remove=True,
    )
    return json.loads(output)


def test_what_the_driver_returns_joins_the_observations(driven):
    assert driven["counts"] == {"counted": True, "client": 3}


@pytest.mark.parametrize(
    "name, problem",
    [
        ("raises", "RuntimeError: a bug in the lab"),
        ("list", "drive() returned list, not a dict"),
        ("clash", "drive() returned keys the probe records itself: ['responses']"),
        ("object", "is not JSON serializable"),
    ],
)
def test_a_failing_driver_is_recorded_as_driver_error(driven, name, problem):
    assert list(driven[name]) == ["driver_error"]
    assert problem in driven[name]["driver_error"]
