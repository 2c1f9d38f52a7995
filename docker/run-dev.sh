#!/usr/bin/env bash
# Serves the site and a grading worker on the embedded defaults; Ctrl-C stops both.
set -uo pipefail
PY=${1:-.venv/bin/python}
mkdir -p var/broker/queue var/broker/processed
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping Shipwright..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup INT TERM EXIT
"$PY" -m celery -A config worker -B --schedule var/celerybeat-schedule \
  -Q grading,low,default --concurrency 1 --loglevel INFO &
pids+=($!)
echo "Shipwright is running at http://127.0.0.1:8000 (Ctrl-C to stop)."
"$PY" manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait -n
