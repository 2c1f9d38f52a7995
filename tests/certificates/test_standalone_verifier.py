"""The verifier an employer downloads from the verify page runs with nothing of ours
installed: a Python without site-packages that sees only the libraries the file
declares (and what they depend on), never this repository or Django."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from certificates import services, standalone
from tests.certificates.test_issuing_and_verify_page import pass_lab
from tests.grading.tiny_lab import make_tiny_course


def _with_dependencies(names: Iterable[str]) -> list[metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        distribution = metadata.distribution(todo.pop())
        key = distribution.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def declared_only_site(target: Path) -> Path:
    """A directory holding (as links) only the distributions the standalone verifier
    declares, and their own dependencies."""
    target.mkdir()
    for distribution in _with_dependencies(standalone.DISTRIBUTIONS):
        tops = {f.parts[0] for f in distribution.files or [] if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def run_standalone(pyz: Path, site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the downloaded file with `python -S` (no site-packages: not the venv, not
    this repository) and only `site` on the path."""
    return subprocess.run(
        [sys.executable, "-S", str(pyz), *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return declared_only_site(tmp_path_factory.mktemp("standalone") / "site")


@pytest.fixture
def certificate(db, tmp_path, learner):
    from courses.importer import content_import
    from courses.models import Course

    content_import(make_tiny_course(tmp_path / "content"))
    course = Course.objects.get(slug="tiny-course")
    pass_lab(learner, course)
    return services.certificate_award_if_complete(user=learner, course=course)


@pytest.fixture
def download(certificate, employer, tmp_path):
    """Save what the verify page offers into tmp_path, as an employer would."""

    def save() -> Path:
        files = {
            standalone.FILENAME: "/verify/shipwright-verify.pyz",
            "credential.json": f"/verify/{certificate.public_id}/credential.json",
            "did.json": "/.well-known/did.json",
            "revocation.json": "/status/revocation",
            "suspension.json": "/status/suspension",
        }
        for name, url in files.items():
            response = employer.get(url)
            assert response.status_code == 200, url
            (tmp_path / name).write_bytes(response.content)
        return tmp_path

    return save


ARGS = (
    "credential.json",
    "--did",
    "did.json",
    "--status-list",
    "revocation.json",
    "--suspension-list",
    "suspension.json",
)


def test_the_python_it_runs_with_has_neither_django_nor_this_repository(site, tmp_path):
    probe = "import importlib.util as u; print(u.find_spec('django'), u.find_spec('certificates'), u.find_spec('pyld'))"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert result.stdout.startswith("None None ModuleSpec"), result.stdout + result.stderr


def test_the_downloaded_verifier_says_a_live_certificate_is_valid(site, download):
    folder = download()

    result = run_standalone(folder / standalone.FILENAME, site, *ARGS, cwd=folder)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[     passed]") == 6
    assert result.stdout.splitlines()[-1] == "verdict: valid"


def test_the_downloaded_verifier_rejects_a_tampered_credential(site, download):
    folder = download()
    credential = json.loads((folder / "credential.json").read_text())
    credential["credentialSubject"]["name"] = "Mallory"
    (folder / "credential.json").write_text(json.dumps(credential))

    result = run_standalone(folder / standalone.FILENAME, site, *ARGS, cwd=folder)

    assert result.returncode == 1
    assert "[     failed] signature valid:" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verdict: NOT VALID")


def test_the_downloaded_verifier_reads_a_revocation_from_the_signed_list(site, download, certificate):
    services.certificate_revoke(certificate=certificate, reason="Plagiarised capstone")
    folder = download()

    result = run_standalone(folder / standalone.FILENAME, site, *ARGS, cwd=folder)

    assert result.returncode == 1
    assert "[     failed] not revoked: revoked (bit" in result.stdout


def test_the_downloaded_verifier_reads_a_suspension_from_the_signed_list(site, download, certificate):
    services.certificate_suspend(certificate=certificate, reason="Under review")
    folder = download()

    result = run_standalone(folder / standalone.FILENAME, site, *ARGS, cwd=folder)

    assert result.returncode == 1
    assert "[     passed] not revoked:" in result.stdout
    assert "[     failed] not suspended: suspended (bit" in result.stdout


def test_offline_without_the_lists_it_says_the_status_was_not_checked(site, download):
    folder = download()

    result = run_standalone(
        folder / standalone.FILENAME,
        site,
        "credential.json",
        "--did",
        "did.json",
        "--suspension-list",
        "https://unreachable.invalid/status/suspension",
        "--offline",
        cwd=folder,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "verdict: signature valid; revocation status not checked (offline); suspension status not checked (offline)"
    )


def test_without_its_libraries_it_says_what_to_install(tmp_path, download):
    folder = download()
    (tmp_path / "empty").mkdir()

    result = run_standalone(folder / standalone.FILENAME, tmp_path / "empty", *ARGS, cwd=folder)

    assert result.returncode == 2
    assert "python -m pip install " + " ".join(standalone.requirements()) in result.stderr


def test_the_file_is_built_from_the_sites_own_verifier_modules():
    with zipfile.ZipFile(io.BytesIO(standalone.verifier_zipapp())) as archive:
        names = set(archive.namelist())
        repo = Path(__file__).resolve().parents[2] / "certificates"
        for module in standalone.MODULES:
            assert archive.read(f"certificates/{module}") == (repo / module).read_bytes()
    assert "certificates/contexts/ob-v3p0-context-3.0.3.json" in names
    assert standalone.verifier_zipapp() == standalone.verifier_zipapp.__wrapped__()  # reproducible bytes
