"""A small fixed-window rate limit per client for the public verify endpoints.

Counts live in the cache's Redis database in production (without Redis, as in
`make run`, in the cache itself), keyed by a hash of the client address so no
address is stored in clear, and shared by every process: at most `limit` requests
per client and window are served, wherever they land.

A process claims requests from the shared count in blocks (INCRBY, one round trip)
and serves a client from its block without asking Redis again. A block is a single
request on a client's first request here and whenever the client is near its limit,
so a visitor opening a few pages costs one round trip each, as before; it grows to
BLOCK_MAX only while the client is far from the limit (a crawler, many employers
behind one proxy: the traffic that loads the server). Requests claimed by one
process and not used there are lost to that client for the rest of the window: near
the limit blocks are single requests, so this stays a few requests per process. A
client found over its limit is refused without a round trip until the window ends.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from config.client import client_ip

TOO_MANY = "Too many requests: try again in a minute."
# The most requests one process claims at a time for one client, and the share of
# the room left under the limit that it may claim at once.
BLOCK_MAX = 64
BLOCK_SHARE = 16
# Clients tracked per process and window before the table is emptied (then every
# client's next request claims afresh: nothing is lost but round trips).
MAX_CLIENTS = 10_000

_REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
# One client (and connection pool) per process and cache location.
_redis_clients: dict[str, redis.Redis] = {}


@dataclass
class _Block:
    left: int  # requests this process may still serve without asking
    total: int  # the shared count when this process last claimed


_blocks: dict[str, _Block] = {}
_blocks_window = -1
_lock = threading.Lock()


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
    if location not in _redis_clients:
        _redis_clients[location] = redis.Redis.from_url(location)
    return _redis_clients[location]


def _claim(key: str, requests: int, timeout: int) -> int:
    """Add `requests` to the shared count under `key`; the count after."""
    client = _redis()
    if client is None:
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key, requests)
        except ValueError:  # expired between the two calls
            return requests
    # One round trip. The cache's FLUSHDB (tests clear the cache) clears these too.
    pipe = client.pipeline(transaction=False)
    pipe.incrby(f"shipwright:{key}", requests)
    pipe.expire(f"shipwright:{key}", timeout)
    total, _ = pipe.execute()
    return int(total)


def rate_limit_admits(client: str, limit: int, window: int) -> bool:
    """Whether this request is within the client's `limit` for the current window."""
    global _blocks_window
    current = int(time.time() // window)
    with _lock:
        if current != _blocks_window or len(_blocks) >= MAX_CLIENTS:
            _blocks.clear()
            _blocks_window = current
        block = _blocks.get(client)
        if block is not None:
            if block.left > 0:
                block.left -= 1
                return True
            if block.total >= limit:  # counts only grow within a window
                return False
        size = 1 if block is None else min(BLOCK_MAX, max(1, (limit - block.total) // BLOCK_SHARE))
    total = _claim(f"ratelimit:verify:{client}:{current}", size, window + 5)
    # Of the requests just claimed, those numbered up to the limit may be served.
    granted = max(0, min(size, limit - (total - size)))
    with _lock:
        if _blocks_window == current:
            block = _blocks.setdefault(client, _Block(left=0, total=0))
            block.left += max(0, granted - 1)
            block.total = max(block.total, total)
    return granted > 0


def forget_counts() -> None:
    """Forget this process's blocks: for when the shared counts were cleared (a
    test's cache.clear())."""
    with _lock:
        _blocks.clear()


def rate_limited(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        limit, window = settings.SHIPWRIGHT_VERIFY_RATE_LIMIT
        if not rate_limit_admits(_client(request), limit, window):
            response = HttpResponse(TOO_MANY, status=429, content_type="text/plain")
            response["Retry-After"] = str(window)
            return response
        return view(request, *args, **kwargs)

    return wrapper
