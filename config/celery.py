"""The Celery app. Workers start with `celery -A config worker`."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shipwright")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="shipwright.ping")
def ping(value: str = "pong") -> str:
    """A trivial round trip used by health checks and the test suite."""
    return value


@app.task(name="shipwright.echo_to_redis")
def echo_to_redis(key: str, value: str) -> None:
    """Writes `value` to a Redis key: lets the test suite observe a real worker."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).set(key, value, ex=300)


# Problems the system checks find (no signing key, no Docker engine, a missing lab
# image) are logged as errors when a worker is ready, with the command that fixes
# each, so an operator sees them at once rather than at a learner's last lab. The
# worker keeps running: submissions wait and are retried until the engine answers.
STARTUP_PROBLEM_LOG = "Shipwright is not ready to %s: %s (%s) %s"


@worker_ready.connect
def report_configuration_problems(sender=None, **kwargs) -> list:
    import logging

    from django.core.checks import WARNING, run_checks
    from django.db import connections

    log = logging.getLogger("shipwright.startup")
    try:
        problems = [m for m in run_checks(tags=["shipwright"], databases=["default"]) if m.level >= WARNING]
    finally:
        connections.close_all()  # opened in the main process only for this
    for message in problems:
        what = "issue certificates" if message.id.startswith("certificates.") else "grade submissions"
        log.error(STARTUP_PROBLEM_LOG, what, message.msg, message.id, message.hint or "")
    return problems
