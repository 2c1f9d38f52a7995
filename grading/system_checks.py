"""Django system checks for what grading needs from this machine: a Docker engine
that answers, and the lab images on it. (grading/judges/ is something else: the
kinds of checks that judge a learner's work.)

Registered by GradingConfig.ready under the `shipwright` tag, so they run for
`manage.py check`, `runserver` and every command that runs system checks, and the
worker runs them at start (config/celery.py) and logs what they find as errors.

They are Warnings, not Errors: an Error would stop every manage.py command
(`migrate`, `import_content`, `check` itself) on a machine without Docker, such as
a web-only host or a laptop, while nothing is lost: submissions wait in the queue
and are retried until the engine answers. The engine is asked once, with a short
timeout, so a hung engine costs a command at most ENGINE_TIMEOUT_S; when it
answers, the checks cost a few milliseconds.

The lab images of labs in the database are checked only when the caller passes
`databases` (Django's rule for checks that query); the default image always is.
"""

from __future__ import annotations

import os

import docker
import docker.errors
import requests
from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.db import DatabaseError

TAG = "shipwright"
ENGINE_TIMEOUT_S = 3
ENGINE_HINT = (
    "Start it with `bash docker/engine.sh` (as root; `make engine` does the same), or point DOCKER_HOST "
    "at a running engine. Until it answers, submissions wait in the queue."
)
IMAGE_HINT = (
    "Build it with `make images` (or `bash docker/build-images.sh`). Until then, submissions wait in the queue."
)

RUNTIME_HINT = (
    "Install Debian's runsc and register it (`make engine` does both), or set SHIPWRIGHT_SANDBOX_RUNTIME=runc. "
    "Until then, that runtime's submissions end in a platform error after their retries."
)
SECCOMP_HINT = "Install Debian's golang-github-containers-common (`make` does), or set SHIPWRIGHT_SECCOMP_BASE."

_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def lab_images(databases=None) -> list[str]:
    """The default lab image, and with `databases` every image a lab names."""
    images = [settings.SHIPWRIGHT_LAB_IMAGE]
    if databases:
        from labs.models import Lab

        try:
            named = Lab.objects.using(databases[0]).values_list("spec__image", flat=True).distinct()
            images += sorted({image for image in named if image} - set(images))
        except DatabaseError:
            pass  # not migrated yet: the default image is still checked
    return images


def sandbox_runtimes(databases=None) -> list[str]:
    """The site's sandbox runtime, and with `databases` every runtime a lab asks for."""
    runtimes = [settings.SHIPWRIGHT_SANDBOX_RUNTIME]
    if databases:
        from labs.models import Lab

        try:
            named = Lab.objects.using(databases[0]).values_list("spec__runtime", flat=True).distinct()
            runtimes += sorted({runtime for runtime in named if runtime} - set(runtimes))
        except DatabaseError:
            pass
    return runtimes


def check_seccomp_base(app_configs=None, **kwargs) -> list[CheckMessage]:
    """The seccomp allowlist every sandbox's profile derives from: without it, grading
    stops with a platform error (a sandbox never runs without its profile)."""
    if app_configs is not None and not any(config.label == "grading" for config in app_configs):
        return []
    from .sandbox import SandboxUnavailable, seccomp_profile

    try:
        seccomp_profile(settings.SHIPWRIGHT_SECCOMP_BASE)
    except SandboxUnavailable as exc:
        return [Warning(str(exc), hint=SECCOMP_HINT, id="grading.W004")]
    return []


def check_engine_and_images(app_configs=None, databases=None, **kwargs) -> list[CheckMessage]:
    if app_configs is not None and not any(config.label == "grading" for config in app_configs):
        return []
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_S)
    except _ENGINE_ERRORS as exc:
        return [_unreachable(exc)]
    try:
        client.ping()
        problems: list[CheckMessage] = []
        for image in lab_images(databases):
            try:
                client.api.inspect_image(image)
            except docker.errors.ImageNotFound:
                problems.append(
                    Warning(
                        f"The lab image {image} is missing from the Docker engine.", hint=IMAGE_HINT, id="grading.W002"
                    )
                )
        known = set((client.info().get("Runtimes") or {}).keys())
        for runtime in sandbox_runtimes(databases):
            if runtime not in known:
                problems.append(
                    Warning(
                        f"The sandbox runtime {runtime} is not registered with the Docker engine "
                        f"(it has {', '.join(sorted(known))}).",
                        hint=RUNTIME_HINT,
                        id="grading.W005",
                    )
                )
        return problems
    except _ENGINE_ERRORS as exc:
        return [_unreachable(exc)]
    finally:
        client.close()


def _unreachable(exc: Exception) -> Warning:
    return Warning(
        f"The Docker engine at {_engine_address()} does not answer: {exc}", hint=ENGINE_HINT, id="grading.W001"
    )
