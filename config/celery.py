"""The Celery app. Workers start with `celery -A config worker`."""

import os

from celery import Celery

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
