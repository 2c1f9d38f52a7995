#!/usr/bin/env bash
# Build the production image shipwright-app:latest (docker/app/Dockerfile) and, on a
# machine without a registry, local stand-ins for postgres:16 and redis:7
# (idempotent, fast when up to date; run after docker/build-images.sh, which makes the
# debootstrapped base).
#
#   1. base: python:3.11-slim when the engine has it (BASE_IMAGE forces one); otherwise
#      shipwright-python:3.11 = shipwright-base:bookworm + git, fonts, CA certificates
#      (docker/local/appbase.Dockerfile) + the host's CPython 3.11 in /usr/local
#      (docker/local/python.Dockerfile; Debian's 3.11.2 is too old for the code);
#   2. wheelhouse: docker/.wheelhouse-app, requirements.lock downloaded on the host with
#      its hashes for CPython 3.11 on manylinux x86_64;
#   3. app image: `docker build --network none`, skipped when its input hash matches;
#   4. unless SHIPWRIGHT_SKIP_LOCAL_SERVICES=1, or postgres:16 / redis:7 are present:
#      shipwright-postgres:local and shipwright-redis:local (docker/local/).
#
# Containers here have no network (dockerd --bridge=none), so apt cannot run in an
# ordinary build: the images of steps 1 and 4 install Debian packages in a build with
# --network host (the host reaches the Debian mirror); they hold nothing but Debian
# packages and a short entrypoint. The app image's build itself stays offline.
#
# Environment: APP_IMAGE (default shipwright-app:latest), BASE_IMAGE, SHIPWRIGHT_FORCE=1.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
APP_IMAGE="${APP_IMAGE:-shipwright-app:latest}"
LOCAL_BASE="shipwright-base:bookworm"
APP_BASE="shipwright-appbase:bookworm"
PY_BASE="shipwright-python:3.11"
WHEELHOUSE="$HERE/.wheelhouse-app"
LOCK="$ROOT/requirements.lock"
# shellcheck source=docker/lib.sh
. "$HERE/lib.sh"
have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
label() { "$DOCKER" image inspect --format "{{ index .Config.Labels \"org.shipwright.input-hash\" }}" "$1" 2>/dev/null || true; }

require_engine build-deploy-images

# An image made from FILE on top of BASE with the host's network (apt only), skipped when
# FILE, BASE and the other inputs are unchanged.
build_local() {
    local tag="$1" file="$2" base="$3"; shift 3
    local hash
    hash="$( { cat "$HERE/local/$file" "$@"; "$DOCKER" image inspect --format '{{.Id}}' "$base"; } | sha256sum | cut -d' ' -f1)"
    if [ "$(label "$tag")" = "$hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
        done_step "input hash ${hash:0:12} unchanged, skipped"; return
    fi
    "$DOCKER" build --quiet --network host --force-rm --build-arg BASE_IMAGE="$base" \
        --label org.shipwright.input-hash="$hash" -f "$HERE/local/$file" -t "$tag" "$HERE/local" >/dev/null
    done_step "input hash ${hash:0:12}, $("$DOCKER" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

# --- 1. base image ---------------------------------------------------------------
step "app base image"
if [ -n "${BASE_IMAGE:-}" ]; then
    done_step "BASE_IMAGE=$BASE_IMAGE given"
elif have python:3.11-slim; then
    BASE_IMAGE=python:3.11-slim; done_step "python:3.11-slim present"
else
    have "$LOCAL_BASE" || { echo "build-deploy-images: $LOCAL_BASE missing; run docker/build-images.sh first" >&2; exit 1; }
    build_local "$APP_BASE" appbase.Dockerfile "$LOCAL_BASE"
    # Debian's python3 is 3.11.2: too old (tarfile filters). The host's CPython 3.11,
    # built on this same Debian release, goes to /usr/local as in python:3.11-slim.
    step "app Python base image $PY_BASE"
    py="${HOST_PYTHON311:-$(command -v python3.11 || true)}"
    prefix="$("$py" -c 'import sys; assert sys.version_info[:2] == (3, 11) and sys.version_info >= (3, 11, 4); print(sys.base_prefix)' 2>/dev/null)" \
        || { echo "build-deploy-images: need a host CPython 3.11.4+ (HOST_PYTHON311=/path/to/python3.11), or python:3.11-slim in the engine" >&2; exit 1; }
    ctx="$HERE/.build/python"
    rm -rf "$ctx"; mkdir -p "$ctx/usr-local"
    tar -C "$prefix" --exclude='lib/python3.11/test' --exclude='lib/python3.11/site-packages/*' \
        --exclude='__pycache__' --exclude='lib/python3.11/idlelib' --exclude='lib/python3.11/tkinter' \
        --exclude='lib/python3.11/config-3.11-x86_64-linux-gnu/*.a' -c bin include lib share \
        | tar -C "$ctx/usr-local" -x
    cp "$HERE/local/python.Dockerfile" "$ctx/Dockerfile"
    hash="$( { "$py" -VV; echo "$prefix"; cat "$HERE/local/python.Dockerfile"; "$DOCKER" image inspect --format '{{.Id}}' "$APP_BASE"; } | sha256sum | cut -d' ' -f1)"
    if [ "$(label "$PY_BASE")" = "$hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
        done_step "input hash ${hash:0:12} unchanged, skipped"
    else
        "$DOCKER" build --quiet --network none --force-rm --build-arg BASE_IMAGE="$APP_BASE" \
            --label org.shipwright.input-hash="$hash" -t "$PY_BASE" "$ctx" >/dev/null
        done_step "$("$py" -V), input hash ${hash:0:12}"
    fi
    rm -rf "$ctx"
    BASE_IMAGE="$PY_BASE"
fi

# --- 2. wheelhouse -----------------------------------------------------------------
step "app wheelhouse"
platforms=()
for tag in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 \
           manylinux_2_27 manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014 \
           manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")   # bookworm has glibc 2.36
done
# The interpreter the app image runs here is the host's (step 1b copies it), so wheels
# are chosen for its exact version (some need 3.11.5 or later).
pyver="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
wh_hash="$( { sha256sum "$LOCK" | cut -d' ' -f1; echo "${platforms[*]} $pyver"; } | sha256sum | cut -d' ' -f1)"
if [ -f "$WHEELHOUSE/.stamp" ] && [ "$(cat "$WHEELHOUSE/.stamp")" = "$wh_hash" ]; then
    done_step "up to date, skipped"
else
    rm -rf "$WHEELHOUSE"; mkdir -p "$WHEELHOUSE"
    python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
        --python-version "$pyver" --implementation cp --abi cp311 "${platforms[@]}" \
        -d "$WHEELHOUSE" -r "$LOCK" 2> >(grep -v 'is ignored: it is neither' >&2)
    echo "$wh_hash" > "$WHEELHOUSE/.stamp"
    done_step "$(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
fi

# --- 3. app image ------------------------------------------------------------------
step "app image $APP_IMAGE"
base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE")"
# Everything the build context holds (.dockerignore), by content.
input_hash="$( { cd "$ROOT" && git ls-files -co --exclude-standard -- manage.py requirements.lock config accounts \
    courses labs grading certificates lti content docker/app .dockerignore | sort | xargs -d '\n' sha256sum 2>/dev/null; \
    cat "$WHEELHOUSE/.stamp"; echo "$base_id"; } | sha256sum | cut -d' ' -f1)"
if [ "$(label "$APP_IMAGE")" = "$input_hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
    done_step "input hash ${input_hash:0:12} unchanged, skipped"
else
    old_id="$("$DOCKER" image inspect --format '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)"
    "$DOCKER" build --quiet --network none --force-rm \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg INPUT_HASH="$input_hash" \
        -f "$HERE/app/Dockerfile" -t "$APP_IMAGE" "$ROOT" >/dev/null
    # Smoke test: every app imports and the deploy checks find no error (warnings about
    # the engine and the signing key are expected here: neither is in this container).
    smoke="$("$DOCKER" run --rm --network none --read-only --tmpfs /tmp -e DJANGO_SECRET_KEY=smoke \
        -e DJANGO_ALLOWED_HOSTS=smoke "$APP_IMAGE" python manage.py check --deploy --fail-level ERROR 2>&1)" \
        || { echo "$smoke" >&2; echo "build-deploy-images: $APP_IMAGE failed its smoke test" >&2; exit 1; }
    # The app image this build replaced is now untagged: drop it (a container still
    # using it keeps it; the untagged venv stage stays as the next build's cache).
    if [ -n "$old_id" ] && [ "$old_id" != "$("$DOCKER" image inspect --format '{{.Id}}' "$APP_IMAGE")" ]; then
        timeout 60 "$DOCKER" rmi "$old_id" >/dev/null 2>&1 || true
    fi
    done_step "input hash ${input_hash:0:12}, $("$DOCKER" image inspect --format '{{.Size}}' "$APP_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
fi

# --- 4. local PostgreSQL and Redis -------------------------------------------------
if [ -z "${SHIPWRIGHT_SKIP_LOCAL_SERVICES:-}" ]; then
    step "shipwright-postgres:local"
    if have postgres:16; then done_step "postgres:16 present, not needed"; else
        have "$LOCAL_BASE" || { echo "build-deploy-images: $LOCAL_BASE missing; run docker/build-images.sh first" >&2; exit 1; }
        build_local shipwright-postgres:local postgres.Dockerfile "$LOCAL_BASE" "$HERE/local/postgres-entrypoint.sh"
    fi
    step "shipwright-redis:local"
    if have redis:7; then done_step "redis:7 present, not needed"; else
        build_local shipwright-redis:local redis.Dockerfile "$LOCAL_BASE"
    fi
fi

echo "build-deploy-images: $APP_IMAGE ready in $((SECONDS - total_start)) s"
