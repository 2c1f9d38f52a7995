"""A small fixed-window rate limit per client for the public verify endpoints.

Counts live in the Django cache (Redis in production), keyed by a hash of the
client address so no address is stored in clear.
"""

from __future__ import annotations

import functools
import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from config.client import client_ip

TOO_MANY = "Too many requests: try again in a minute."


def _client(request: HttpRequest) -> str:
    # Behind a proxy this is the client, not the proxy (SHIPWRIGHT_TRUSTED_PROXIES):
    # otherwise every employer would share the proxy's one bucket.
    address = client_ip(request)
    return hashlib.sha256(f"{settings.SECRET_KEY}:{address}".encode()).hexdigest()[:32]


def rate_limited(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        limit, window = settings.SHIPWRIGHT_VERIFY_RATE_LIMIT
        bucket = int(time.time() // window)
        key = f"ratelimit:verify:{_client(request)}:{bucket}"
        cache.add(key, 0, timeout=window + 5)
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1
        if count > limit:
            response = HttpResponse(TOO_MANY, status=429, content_type="text/plain")
            response["Retry-After"] = str(window)
            return response
        return view(request, *args, **kwargs)

    return wrapper
