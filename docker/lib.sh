# Shared by docker/build-images.sh and docker/build-deploy-images.sh (sourced, not run):
# the Docker client to use, the classic builder, and timed steps.
export DOCKER_API_VERSION="${DOCKER_API_VERSION:-1.41}"
# Debian's client matches the 20.10 engine; the classic builder needs no buildx plugin.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_BUILDKIT=0

step_start=0
step() { step_start=$SECONDS; echo "==> $*"; }
done_step() { echo "    done in $((SECONDS - step_start)) s${1:+ ($1)}"; }
total_start=$SECONDS

# Fails with a clear message when the engine does not answer ($1: the caller's name).
require_engine() {
    "$DOCKER" info >/dev/null 2>&1 || { echo "$1: Docker engine not reachable; run docker/engine.sh first" >&2; exit 1; }
}
