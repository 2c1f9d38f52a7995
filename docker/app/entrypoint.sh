#!/bin/sh
# The roles of the Shipwright image (docker/app/Dockerfile); any other command runs as is
# (`docker compose exec web python manage.py createsuperuser`).
#
#   web          gunicorn on :8000 (WEB_CONCURRENCY workers, default 2)
#   worker       a grading worker: queues grading, low, default (SHIPWRIGHT_WORKER_QUEUES)
#                (SHIPWRIGHT_WORKER_CONCURRENCY sandboxes at once, default 1)
#   intake       the intake worker: queue intake (unpacks uploads, clones git; no Docker)
#   maintenance  the reaper's worker: queue maintenance, concurrency 1
#   signer       the signing worker: queue certificates (issues and signs certificates;
#                the only worker that holds the issuer's key)
#   beat         the scheduler (exactly one per deployment)
#   migrate      migrations and the signing key, then exit (run before each upgrade)
#
# Roles that never sign say so, so the signing-key check does not ask them for a key
# they must not have (a sandbox escape on a grading host must find no key to take).
set -eu
cd /app
role="${1:-web}"
case "$role" in
worker | intake | maintenance | beat)
    export SHIPWRIGHT_SIGNS_CERTIFICATES="${SHIPWRIGHT_SIGNS_CERTIFICATES:-0}"
    ;;
esac
case "$role" in
web)
    exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 \
        --workers "${WEB_CONCURRENCY:-2}" --timeout "${GUNICORN_TIMEOUT:-60}" \
        --access-logfile - --error-logfile - --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
    ;;
worker)
    # SHIPWRIGHT_WORKER_QUEUES replaces the list (e.g. to add a queue a release introduces).
    exec celery -A config worker -n "grading@%h" \
        -Q "${SHIPWRIGHT_WORKER_QUEUES:-${SHIPWRIGHT_GRADING_QUEUE:-grading},${SHIPWRIGHT_LOW_QUEUE:-low},default}" \
        --concurrency "${SHIPWRIGHT_WORKER_CONCURRENCY:-1}" --loglevel "${LOG_LEVEL:-INFO}"
    ;;
intake)
    # Off the request path and off the grading workers: a long grading run never
    # keeps a new submission waiting in `received`.
    exec celery -A config worker -n "intake@%h" -Q "${SHIPWRIGHT_INTAKE_QUEUE:-intake}" \
        --concurrency "${SHIPWRIGHT_INTAKE_CONCURRENCY:-2}" --loglevel "${LOG_LEVEL:-INFO}"
    ;;
maintenance)
    exec celery -A config worker -n "maintenance@%h" -Q "${SHIPWRIGHT_MAINTENANCE_QUEUE:-maintenance}" \
        --concurrency 1 --loglevel "${LOG_LEVEL:-INFO}"
    ;;
signer)
    # Certificates only: never the grading queues (it must not run sandboxes) and it
    # needs no Docker socket.
    exec celery -A config worker -n "signer@%h" -Q "${SHIPWRIGHT_CERTIFICATES_QUEUE:-certificates}" \
        --concurrency "${SHIPWRIGHT_SIGNER_CONCURRENCY:-1}" --loglevel "${LOG_LEVEL:-INFO}"
    ;;
beat)
    exec celery -A config beat --schedule /tmp/celerybeat-schedule --loglevel "${LOG_LEVEL:-INFO}"
    ;;
migrate)
    python manage.py migrate --noinput
    python manage.py generate_lti_key --if-missing
    exec python manage.py generate_signing_key --if-missing
    ;;
*)
    exec "$@"
    ;;
esac
