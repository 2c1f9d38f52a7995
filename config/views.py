import hmac
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

# How long a probe waits for the broker. The PING runs in a thread of its own: a
# broker host that no longer resolves (a stopped container) can hang name resolution
# far longer than redis-py's socket timeouts, and a probe must answer in time.
BROKER_TIMEOUT_S = 3.0
_broker: redis.Redis | None = None
_broker_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz")
_broker_lock = threading.Lock()
_broker_check: Future | None = None


def _ping_broker() -> bool:
    global _broker
    if _broker is None:
        _broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(_broker.ping())
    except redis.RedisError as exc:
        logger.warning("healthz: broker unreachable: %s", exc)
        return False


def _broker_ok() -> bool:
    global _broker_check
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return True  # the embedded file-system broker of `make run` is a local folder
    with _broker_lock:
        # A check still hanging from an earlier probe is waited on, not doubled.
        if _broker_check is None or _broker_check.done():
            _broker_check = _broker_pool.submit(_ping_broker)
        check = _broker_check
    try:
        return check.result(timeout=BROKER_TIMEOUT_S)
    except FutureTimeout:
        logger.warning("healthz: broker did not answer within %s s", BROKER_TIMEOUT_S)
        return False


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError as exc:
        logger.warning("healthz: database unreachable: %s", exc)
        return False


def livez(request: HttpRequest) -> HttpResponse:
    """Liveness: this process answers (nothing else is asked). For a container
    orchestrator's liveness probe, which must not restart web processes because the
    database is down, and the baseline "minimal view" of bench/verify_throughput.py."""
    return HttpResponse("ok", content_type="text/plain")


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and container probes: no login, no session, two round trips.

    200 "ok" when the database and the broker answer; 503 naming which did not (the
    reason goes to the log, not to the anonymous caller)."""
    failing = [name for name, ok in (("database", _database_ok()), ("broker", _broker_ok())) if not ok]
    if failing:
        return HttpResponse(f"unavailable: {', '.join(failing)}", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape target: the whole deployment's grading and certificate
    metrics (they live in the database and the broker, so any web process answers
    for every host). Only for a scraper with `SHIPWRIGHT_METRICS_TOKEN` as bearer
    token; without a configured token the endpoint does not exist."""
    from certificates.metrics import CertificatesCollector
    from grading.metrics import GradingCollector

    token = settings.SHIPWRIGHT_METRICS_TOKEN
    if not token:
        raise Http404
    presented = request.headers.get("Authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GradingCollector())
    registry.register(CertificatesCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
