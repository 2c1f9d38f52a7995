"""A small fixed-window rate limit per client for the public verify endpoints.

Counts live in the cache's Redis database in production, keyed by a hash of the
client address so no address is stored in clear: one round trip per request (INCR
and EXPIRE pipelined). Without Redis (`make run`: a per-process LocMemCache) the
cache's own counter is used.
"""

from __future__ import annotations

import functools
import hashlib
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from config.client import client_ip

TOO_MANY = "Too many requests: try again in a minute."
_REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
# One client (and connection pool) per process and cache location.
_clients: dict[str, redis.Redis] = {}


def _client(request: HttpRequest) -> str:
    # Behind a proxy this is the client, not the proxy (SHIPWRIGHT_TRUSTED_PROXIES):
    # otherwise every employer would share the proxy's one bucket.
    address = client_ip(request)
    return hashlib.sha256(f"{settings.SECRET_KEY}:{address}".encode()).hexdigest()[:32]


def _redis() -> redis.Redis | None:
    """A client of the cache's Redis database, or None when the cache is not Redis."""
    backend = settings.CACHES["default"]
    if backend["BACKEND"] != _REDIS_CACHE:
        return None
    location = backend["LOCATION"]
    if location not in _clients:
        _clients[location] = redis.Redis.from_url(location)
    return _clients[location]


def _count(key: str, timeout: int) -> int:
    """This request's number in its window's count."""
    client = _redis()
    if client is None:
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key)
        except ValueError:  # expired between the two calls
            return 1
    # The cache's FLUSHDB (tests clear the cache) clears these counters too.
    pipe = client.pipeline(transaction=False)
    pipe.incr(f"shipwright:{key}")
    pipe.expire(f"shipwright:{key}", timeout)
    count, _ = pipe.execute()
    return int(count)


def rate_limited(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        limit, window = settings.SHIPWRIGHT_VERIFY_RATE_LIMIT
        bucket = int(time.time() // window)
        if _count(f"ratelimit:verify:{_client(request)}:{bucket}", window + 5) > limit:
            response = HttpResponse(TOO_MANY, status=429, content_type="text/plain")
            response["Retry-After"] = str(window)
            return response
        return view(request, *args, **kwargs)

    return wrapper
