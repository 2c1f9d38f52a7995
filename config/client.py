"""The client's address, behind a configured number of trusted reverse proxies.

Each proxy appends the address it received the request from to X-Forwarded-For, so
with N trusted proxies the client is the Nth address from the right of
`X-Forwarded-For` + `REMOTE_ADDR`. Anything further left was written by the client
itself and is ignored, so a spoofed header cannot pick another client's bucket.
With 0 (the default) the header is ignored and REMOTE_ADDR is the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's IP address as text ("" when none can be trusted)."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.SHIPWRIGHT_TRUSTED_PROXIES
    if trusted <= 0:
        return _valid(remote)
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    chain = [*forwarded, remote]
    # Too few hops: the request bypassed a proxy; the leftmost address is all we have.
    return _valid(chain[-(trusted + 1)] if len(chain) > trusted else chain[0])


def _valid(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""
