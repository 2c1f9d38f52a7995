"""The verify rate limit is shared by every process: processes claim requests from
the count in Redis in blocks, and together never serve more than the limit."""

from __future__ import annotations

import multiprocessing

import pytest
from django.conf import settings

from certificates import ratelimit

# A window far longer than the test, so that it does not end halfway.
WINDOW_S = 86_400


def _serve(client: str, limit: int, attempts: int, results) -> None:
    results.put(sum(ratelimit.rate_limit_admits(client, limit, WINDOW_S) for _ in range(attempts)))


@pytest.mark.parametrize("limit", [5, 50, 1000])
def test_processes_together_serve_at_most_the_limit(limit):
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.fail("the tests run with a Redis cache (SHIPWRIGHT_CACHE_URL or REDIS_URL)")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_serve, args=("one-client", limit, limit, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    # Each process asked until refused, so it used every request it had claimed.
    assert sum(results.get(timeout=5) for _ in workers) == limit
    # Over its limit, the client is refused here too.
    assert not ratelimit.rate_limit_admits("one-client", limit, WINDOW_S)
