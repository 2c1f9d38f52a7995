import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

# One client per process; each probe is one PING on its pooled connection.
_broker: redis.Redis | None = None


def _broker_ok() -> bool:
    global _broker
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return True  # the embedded file-system broker of `make run` is a local folder
    if _broker is None:
        _broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(_broker.ping())
    except redis.RedisError as exc:
        logger.warning("healthz: broker unreachable: %s", exc)
        return False


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError as exc:
        logger.warning("healthz: database unreachable: %s", exc)
        return False


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and container probes: no login, no session, two round trips.

    200 "ok" when the database and the broker answer; 503 naming which did not (the
    reason goes to the log, not to the anonymous caller)."""
    failing = [name for name, ok in (("database", _database_ok()), ("broker", _broker_ok())) if not ok]
    if failing:
        return HttpResponse(f"unavailable: {', '.join(failing)}", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
