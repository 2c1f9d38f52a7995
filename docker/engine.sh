#!/usr/bin/env bash
# Make sure a Docker engine is running on this machine (idempotent; run as root).
#
# - installs Debian's docker.io when dockerd is missing;
# - starts dockerd without a bridge or iptables rules when `docker info` fails:
#   lab containers use network_mode "none" only, so the engine needs no networking,
#   and builds run with --network none;
# - waits until the engine answers, or fails with a clear message.
#
# Debian's engine is 20.10 (API 1.41) while /usr/local/bin/docker may be a newer
# client: we pin DOCKER_API_VERSION so the CLI and the Python SDK both negotiate 1.41.
# Callers that source nothing should export DOCKER_API_VERSION=1.41 themselves, or use
# /usr/bin/docker.
#
# Environment: SHIPWRIGHT_DOCKERD_LOG (default /var/log/shipwright-dockerd.log),
#              SHIPWRIGHT_DOCKERD_TIMEOUT seconds (default 60).
set -euo pipefail

LOG="${SHIPWRIGHT_DOCKERD_LOG:-/var/log/shipwright-dockerd.log}"
TIMEOUT="${SHIPWRIGHT_DOCKERD_TIMEOUT:-60}"
export DOCKER_API_VERSION="${DOCKER_API_VERSION:-1.41}"

# Prefer Debian's client: it matches the engine's API version.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
    echo "engine: installing docker.io from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
    DOCKER=/usr/bin/docker
fi

# gVisor (runsc) as a second runtime, with --network=host and --oci-seccomp (the
# sandbox's seccomp profile then binds learner code inside gVisor too: no ptrace).
# --network=host makes gVisor use the network namespace the engine gives the container
# rather than a stack of its own; every sandbox container is created with network mode
# "none", so that namespace holds only its own loopback and there is still no route
# out. It lets a probe container that joins the namespace (the service probe beside a
# learner's built image) reach the server, which gVisor's own stack would hide.
# Returns 0 when daemon.json changed (a running engine must reload it).
register_runsc() {
    command -v runsc >/dev/null 2>&1 || return 1
    mkdir -p /etc/docker
    python3 - "$(command -v runsc)" <<'PY'
import json, pathlib, sys
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text() or "{}") if path.exists() else {}
want = {"path": sys.argv[1], "runtimeArgs": ["--network=host", "--oci-seccomp"]}
if config.get("runtimes", {}).get("runsc") == want:
    sys.exit(1)
config.setdefault("runtimes", {})["runsc"] = want
path.write_text(json.dumps(config, indent=2) + "\n")
PY
}

if "$DOCKER" info >/dev/null 2>&1; then
    if register_runsc; then
        # SIGHUP: the engine rereads daemon.json's runtimes; containers keep running.
        kill -HUP "$(pidof dockerd)"
        for _ in $(seq 20); do
            "$DOCKER" info --format '{{json .Runtimes}}' | grep -q runsc && break
            sleep 0.5
        done
        echo "engine: registered the runsc runtime (gVisor)"
    fi
    echo "engine: already running ($("$DOCKER" version --format '{{.Server.Version}}'))"
    exit 0
fi
register_runsc || true

DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"
mkdir -p "$(dirname "$LOG")"
echo "engine: starting $DOCKERD (log: $LOG)"
# setsid: the daemon must outlive the shell (and the Make target) that started it.
setsid "$DOCKERD" --bridge=none --iptables=false --ip-masq=false >>"$LOG" 2>&1 </dev/null &

deadline=$((SECONDS + TIMEOUT))
until "$DOCKER" info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "engine: dockerd did not answer within ${TIMEOUT}s; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.5
done
echo "engine: running ($("$DOCKER" version --format '{{.Server.Version}}'), API ${DOCKER_API_VERSION})"
