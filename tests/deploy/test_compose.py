"""compose.yaml on this host, as an operator runs it: the stack comes up with secrets
from files, the site answers /healthz, a submission is graded by a worker container
(its sandboxes on the host's engine), the health probe tells when the broker is gone,
and `down -v` leaves nothing: no container, network, volume or sandbox.

Images: docker/build-deploy-images.sh (make images runs it; cached, a few seconds
when nothing changed). Without a registry, local stand-ins replace postgres:16 and
redis:7 through SHIPWRIGHT_POSTGRES_IMAGE / SHIPWRIGHT_REDIS_IMAGE.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
APP_UID = 10001
UP_TIMEOUT_S = 300
GRADE_TIMEOUT_S = 300


def _compose_cli() -> list[str]:
    """Compose v2 (`docker compose`) where installed, else Debian's docker-compose (v1)."""
    if subprocess.run([DOCKER, "compose", "version"], capture_output=True).returncode == 0:
        return [DOCKER, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed (docker/system-deps.sh installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _docker(*args: str) -> str:
    return subprocess.run([DOCKER, *args], check=True, capture_output=True, text=True).stdout


def _have_image(name: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", name], capture_output=True).returncode == 0


def _get(url: str, host: str = "localhost") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.project = f"swdeploy{os.getpid()}"
        self.port = _free_port()
        self.assets = Path(tempfile.mkdtemp(prefix=f"{self.project}-assets-", dir="/var/tmp"))
        os.chown(self.assets, APP_UID, APP_UID)
        secrets = tmp / "secrets"
        secrets.mkdir(mode=0o700)
        (secrets / "django_secret_key").write_text(os.urandom(32).hex() + "\n")
        (secrets / "postgres_password").write_text(os.urandom(12).hex() + "\n")
        for f in secrets.iterdir():
            f.chmod(0o644)
        self.env = {
            **os.environ,
            "DOCKER_API_VERSION": os.environ.get("DOCKER_API_VERSION", "1.41"),
            "COMPOSE_PROJECT_NAME": self.project,
            "SHIPWRIGHT_SECRETS_DIR": str(secrets),
            "SHIPWRIGHT_HOST_ASSET_DIR": str(self.assets),
            "SHIPWRIGHT_DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "SHIPWRIGHT_HTTP_PORT": str(self.port),
            "SHIPWRIGHT_ALLOWED_HOSTS": "localhost",
            "SHIPWRIGHT_SANDBOX_INSTANCE": self.project,
            "SHIPWRIGHT_WORKER_STOP_GRACE": "30s",
            "SHIPWRIGHT_POSTGRES_IMAGE": "postgres:16" if _have_image("postgres:16") else "shipwright-postgres:local",
            "SHIPWRIGHT_REDIS_IMAGE": "redis:7" if _have_image("redis:7") else "shipwright-redis:local",
        }
        self.cli = [*_compose_cli(), "-f", str(REPO / "compose.yaml"), "-p", self.project]

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        run = subprocess.run(
            [*self.cli, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and run.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed:\n{run.stdout}\n{run.stderr}")
        return run

    def manage_py(self, code: str) -> str:
        return self.compose("exec", "-T", "web", "python", "manage.py", "shell", "-c", code).stdout

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False).stdout

    def healthz(self) -> tuple[int, str]:
        try:
            return _get(f"http://127.0.0.1:{self.port}/healthz")
        except OSError as exc:  # not listening yet
            return 0, str(exc)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while (status := self.healthz())[0] != 200:
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz never answered 200 (last: {status}):\n{self.logs()}")
            time.sleep(2)

    def leftovers(self) -> dict[str, str]:
        project = f"label=com.docker.compose.project={self.project}"
        sandbox = f"label=shipwright.instance={self.project}"
        return {
            "containers": _docker("ps", "-aq", "--filter", project),
            "networks": _docker("network", "ls", "-q", "--filter", project),
            "volumes": _docker("volume", "ls", "-q", "--filter", project),
            "sandbox containers": _docker("ps", "-aq", "--filter", sandbox),
            "sandbox volumes": _docker("volume", "ls", "-q", "--filter", sandbox),
        }

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
        # Sandboxes are the host engine's, not compose's: a run cut short by `down`
        # leaves its holder until the reaper of this deployment, which is gone now.
        for kind in ("container", "volume"):
            listing = "ps -aq" if kind == "container" else "volume ls -q"
            ids = _docker(*listing.split(), "--filter", f"label=shipwright.instance={self.project}").split()
            if ids:
                subprocess.run([DOCKER, kind, "rm", "-f", *ids], capture_output=True)
        shutil.rmtree(self.assets, ignore_errors=True)


@pytest.fixture(scope="module")
def images():
    subprocess.run(["bash", str(REPO / "docker" / "build-deploy-images.sh")], check=True, cwd=REPO)


GRADE = """
import json, time
from accounts.models import User
from courses.importer import content_import
from labs.models import Lab
from grading import services
from grading.models import Submission
content_import("content")
lab = Lab.objects.get(course__slug="mlops-foundations", slug="train-model")
user = User.objects.create_user(email="compose@example.com")
# Uploaded as the web form does: stored and left `received` for the intake container,
# which unpacks it and queues it for a worker container.
import io, tarfile
archive = io.BytesIO()
with tarfile.open(fileobj=archive, mode="w:gz") as tar:
    tar.add("content/mlops-foundations/labs/train-model/hidden/reference", arcname=".")
archive.seek(0)
s = services.submission_receive(user=user, lab=lab, upload=archive, upload_name="solution.tar.gz", enforce_limits=False)
deadline = time.monotonic() + %d
while s.status not in Submission.FINISHED and time.monotonic() < deadline:
    time.sleep(2)
    s.refresh_from_db()
stages = [
    {"stage": r.name, "s": round(r.duration_s, 1), "cpu_s": r.cpu_s, "peak_mb": r.peak_memory_mb}
    for r in s.stage_runs.order_by("pk")
]
print(json.dumps({"status": s.status, "score": s.score, "claimed_by": s.claimed_by, "error": s.error_message, "stages": stages}))
"""


def test_the_compose_stack_grades_a_submission_and_leaves_nothing_behind(images, tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.compose("up", "-d", "--no-build", "--scale", "worker=2", timeout=UP_TIMEOUT_S)
        stack.wait_healthy()
        status, body = stack.healthz()
        assert (status, body) == (200, "ok")
        # The site itself, through gunicorn and WhiteNoise, with production settings
        # (behind its TLS proxy: X-Forwarded-Proto says https).
        request = urllib.request.Request(
            f"http://127.0.0.1:{stack.port}/", headers={"Host": "localhost", "X-Forwarded-Proto": "https"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200 and "Shipwright" in page

        # A submission uploaded in the web container goes through the intake container
        # and is graded by a worker container.
        outcome = json.loads(stack.manage_py(GRADE % GRADE_TIMEOUT_S).strip().splitlines()[-1])
        assert outcome["status"] == "passed", f"{outcome}\n{stack.logs()}"
        print("graded:", json.dumps(outcome))  # shown with -s: sizing figures for docs/operations.md
        workers = {cid[:12] for cid in stack.compose("ps", "-q", "worker").stdout.split()}
        assert len(workers) == 2
        assert outcome["claimed_by"].split("@", 1)[1] in workers, outcome
        # The issuer's key is mounted where it signs (the signer), never on a grading worker.
        signers = stack.compose("ps", "-q", "signer").stdout.split()
        assert len(signers) == 1
        for cid, expected in [(cid, False) for cid in stack.compose("ps", "-q", "worker").stdout.split()] + [
            (signers[0], True)
        ]:
            mounts = json.loads(_docker("inspect", "--format", "{{json .Mounts}}", cid))
            assert any(m["Destination"] == "/var/lib/shipwright/signing-keys" for m in mounts) is expected, cid

        # The probe names the broker when Redis is gone, and recovers with it.
        stack.compose("stop", "redis")
        assert stack.healthz() == (503, "unavailable: broker")
        stack.compose("start", "redis")
        stack.wait_healthy()
    finally:
        stack.down()
    assert stack.leftovers() == dict.fromkeys(stack.leftovers(), "")
    assert not stack.assets.exists()
