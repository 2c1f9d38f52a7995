# Shipwright: `make run` serves the site with a worker; `make test` runs every test.
# Both install what is missing first (Debian, as root).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.sha256
REQ_HASH = $(shell cat requirements.txt requirements.lock requirements-dev.txt | sha256sum | cut -c1-64)

export DOCKER_API_VERSION ?= 1.41

.PHONY: run test venv system-deps services engine images bench lint migrate content demo-users clean

system-deps:
	@bash docker/system-deps.sh

venv: system-deps
	@if ! $(PY) -m pip --version >/dev/null 2>&1; then rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	@if [ "$$(cat $(STAMP) 2>/dev/null)" != "$(REQ_HASH)" ]; then \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock && \
	  $(PY) -m pip install --quiet -r requirements-dev.txt && \
	  echo "$(REQ_HASH)" > $(STAMP); \
	fi

services:
	@bash docker/ensure-services.sh

engine: system-deps
	@bash docker/engine.sh

images: engine
	@bash docker/build-images.sh
	@bash docker/build-deploy-images.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

run: venv engine images
	@mkdir -p var
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 $(PY) manage.py import_content content/
	DJANGO_DEBUG=1 $(PY) manage.py generate_signing_key --if-missing
	DJANGO_DEBUG=1 $(PY) manage.py generate_lti_key --if-missing
	DJANGO_DEBUG=1 $(PY) manage.py create_demo_users
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo
	@DJANGO_DEBUG=1 bash docker/run-dev.sh $(PY)

test: venv services engine images
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	DJANGO_DEBUG=1 $(VENV)/bin/mypy grading certificates labs lti
	promtool check config --syntax-only docker/prometheus/prometheus.yml
	promtool check rules docker/prometheus/alerts.yml
	promtool test rules docker/prometheus/alerts.test.yml
	DJANGO_DEBUG=1 DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

bench: venv services engine images
	$(PY) bench/sandbox_overhead.py
	$(PY) bench/grading_latency.py
	$(PY) bench/verify_throughput.py
	$(PY) bench/capstone_overhead.py
	$(PY) bench/sandbox_runtimes.py
	$(PY) bench/gradebook_page.py
	$(PY) bench/image_build.py

clean:
	rm -rf var/test .pytest_cache
