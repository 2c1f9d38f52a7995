#!/usr/bin/env python
"""The web container's health probe: GET /healthz on the local gunicorn.

It asks as a client behind the TLS proxy would (a configured host name, the proxy's
X-Forwarded-Proto), so DJANGO_ALLOWED_HOSTS and the HTTPS redirect need no exception.
Exit 0 when the site answers 200 (database and broker reachable), 1 otherwise.
"""

import os
import sys
import urllib.request

hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
host = next((h.lstrip(".") for h in hosts if h != "*"), "localhost")
request = urllib.request.Request("http://127.0.0.1:8000/healthz", headers={"Host": host, "X-Forwarded-Proto": "https"})
try:
    with urllib.request.urlopen(request, timeout=8) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
    print(f"healthz: {exc}", file=sys.stderr)
    sys.exit(1)
