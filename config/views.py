import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def healthz(request: HttpRequest) -> HttpResponse:
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
