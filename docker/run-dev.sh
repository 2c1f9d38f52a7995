#!/usr/bin/env bash
# Serves the site, a grading (and signing) worker, the intake worker and the reaper's
# worker (with beat) on the embedded defaults; Ctrl-C stops them all.
set -uo pipefail
PY=${1:-.venv/bin/python}
mkdir -p var
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping Shipwright..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup INT TERM EXIT
# On one machine the grading worker also signs (the certificates queue): every process
# here shares var/ and its key anyway. In production the signer role does it alone.
"$PY" -m celery -A config worker -n grading@%h -Q grading,low,default,certificates --concurrency 1 --loglevel INFO &
pids+=($!)
# Intake (unpacking uploads, cloning git URLs) has its own worker: a submission is
# checked at once even while a long grading run holds the grading worker.
"$PY" -m celery -A config worker -n intake@%h -Q intake --concurrency 1 --loglevel INFO &
pids+=($!)
# The reaper has its own queue and worker: a grading backlog must not delay it.
"$PY" -m celery -A config worker -n maintenance@%h -B --schedule var/celerybeat-schedule \
  -Q maintenance --concurrency 1 --loglevel INFO &
pids+=($!)
echo "Shipwright is running at http://127.0.0.1:8000 (Ctrl-C to stop)."
"$PY" manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait -n
