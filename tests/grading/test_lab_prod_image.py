"""The production lab image (docker/lab-prod/, built by `make images`): MLflow with
its SQLite store and registry, prometheus_client, kubernetes-validate and promtool,
offline, as the sandbox runs it (no network, read-only root, uid 1000). MLflow's
tracking store, registry and pyfunc loading are exercised end to end by the lab
track-experiments (tests/test_lab_check.py), the only user of them."""

from __future__ import annotations

import docker
import pytest

IMAGE = "shipwright-lab-prod:py311"

METRICS = """
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
import kubernetes_validate
registry = CollectorRegistry()
Counter("http_requests_total", "requests", ["route"], registry=registry).labels(route="/predict").inc()
Histogram("latency_seconds", "latency", registry=registry).observe(0.02)
text = generate_latest(registry).decode()
assert 'http_requests_total{route="/predict"} 1.0' in text, text
kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "1.33.0", strict=True)
print("prometheus_client and kubernetes_validate ok")
"""

RULES = """groups:
  - name: t
    rules:
      - alert: HighErrorRate
        expr: sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05
        for: 10m
"""


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    client.images.get(IMAGE)  # built by `make images`; missing is a failure, not a skip
    return client


def run(engine, command: list[str]) -> str:
    output = engine.containers.run(
        IMAGE,
        command,
        network_mode="none",
        read_only=True,
        user="1000:1000",
        tmpfs={"/tmp": "size=256m", "/workspace": "size=256m,uid=1000,gid=1000"},
        working_dir="/workspace",
        remove=True,
        stdout=True,
        stderr=True,
    )
    return output.decode()


def test_prometheus_client_and_kubernetes_validate_import_and_work(engine):
    assert "prometheus_client and kubernetes_validate ok" in run(engine, ["python", "-c", METRICS])


def test_promtool_checks_rules_in_the_image(engine):
    script = f"cat > /tmp/alerts.yml <<'EOF'\n{RULES}EOF\npromtool check rules /tmp/alerts.yml"
    output = run(engine, ["sh", "-c", script])
    assert "SUCCESS: 1 rules found" in output


def test_the_first_image_s_packages_are_unchanged(engine):
    # The extra packages sit on the first image without replacing any of its pins.
    output = run(
        engine,
        ["sh", "-c", "python -m pip check && python -c 'import sklearn, pandas, fastapi; print(sklearn.__version__)'"],
    )
    assert "No broken requirements found." in output
    assert "1.9.1" in output
