"""HOSTILE on purpose: try every way out of a build step; print what happened."""

import socket

TARGETS = [("pypi.org", 443), ("1.1.1.1", 53), ("172.17.0.1", 2375), ("10.0.2.2", 22), ("127.0.0.1", 5432), ("127.0.0.1", 6379)]
for host, port in TARGETS:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"REACHED {host}:{port}")
    except OSError as exc:
        print(f"blocked {host}:{port}: {type(exc).__name__}")
try:
    socket.socket(socket.AF_UNIX).connect("/var/run/docker.sock")
    print("REACHED the engine socket")
except OSError as exc:
    print(f"blocked the engine socket: {type(exc).__name__}")
