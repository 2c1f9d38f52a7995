"""Grades the learner's Kubernetes manifests without a cluster: YAML parsing, schema
validation against a pinned Kubernetes version (kubernetes-validate, offline), and
named policy rules in the spirit of kube-linter and Polaris.

Runs in a grader-owned stage of shipwright-lab-prod:py311 as `python -I`, so nothing
in the learner's repository (a `yaml.py`, a `kubernetes_validate/`, PYTHONPATH) is
imported. The manifests are data: read with yaml.safe_load, size-capped, and walked
with a node budget so an alias bomb cannot exhaust the stage. Writes one observation
per check: True, or a sentence that names the rule and the object that breaks it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
HEALTH_PATH = "/health"
MAX_FILES = 40
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 50_000
API_VERSION = re.compile(r"^(?:[a-z0-9.-]+/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$")
KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}$")
REQUIRED_KINDS = ("Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler")
POLICY_KEYS = ("replicas", "rolling_update", "image_tag", "probes", "resources", "non_root",
               "read_only_root", "service_selects", "hpa_target", "config_used")
CHECK_KEYS = ("schema", "objects", *POLICY_KEYS)


class Unreadable(Exception):
    pass


def count_nodes(value, budget: list[int]) -> None:
    """Walks a loaded document, failing once it holds more than MAX_NODES values:
    YAML aliases can make a 1 kB file expand to billions of them."""
    budget[0] -= 1
    if budget[0] < 0:
        raise Unreadable(f"expands to more than {MAX_NODES:,} values (YAML anchors and aliases?)")
    if isinstance(value, dict):
        for key, item in value.items():
            count_nodes(key, budget)
            count_nodes(item, budget)
    elif isinstance(value, list):
        for item in value:
            count_nodes(item, budget)


def load_manifests(folder: Path) -> list[tuple[str, dict]]:
    if not folder.is_dir() or folder.is_symlink():
        raise Unreadable(f"no folder {folder.name}/ with your manifests")
    # A Kustomize base's kustomization.yaml is kustomize's input, not a Kubernetes object.
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and not p.is_symlink()
                   and p.name not in ("kustomization.yaml", "kustomization.yml"))
    if not files:
        raise Unreadable(f"no .yaml or .yml file under {folder.name}/")
    if len(files) > MAX_FILES:
        raise Unreadable(f"{len(files)} YAML files under {folder.name}/; at most {MAX_FILES}")
    documents = []
    for path in files:
        name = path.relative_to(folder.parent).as_posix()
        if path.stat().st_size > MAX_FILE_BYTES:
            raise Unreadable(f"{name} is larger than {MAX_FILE_BYTES // 1024} kB")
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise Unreadable(f"{name} is not valid YAML: {str(exc).splitlines()[0]}") from None
        budget = [MAX_NODES]
        for index, document in enumerate(loaded):
            if document is None:
                continue
            try:
                count_nodes(document, budget)
            except Unreadable as exc:
                raise Unreadable(f"{name} {exc}") from None
            where = f"{name} (document {index + 1})"
            if not isinstance(document, dict):
                raise Unreadable(f"{where} is not a mapping")
            api_version, kind = document.get("apiVersion"), document.get("kind")
            if not isinstance(api_version, str) or not API_VERSION.match(api_version):
                raise Unreadable(f"{where} has no valid apiVersion")
            if not isinstance(kind, str) or not KIND.match(kind):
                raise Unreadable(f"{where} has no valid kind")
            metadata = document.get("metadata")
            if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
                raise Unreadable(f"{where} ({kind}) has no metadata.name")
            documents.append((where, document))
    return documents


def label(document: dict) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def schema_errors(documents: list[tuple[str, dict]]) -> list[str]:
    errors = []
    for where, document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.absolute_path) or "(top level)"
            errors.append(f"{where} {label(document)} at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: {exc.message}")
    return errors


def containers(deployment: dict) -> list[dict]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def pod_spec(deployment: dict) -> dict:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


def rule(name: str, problems: list[str]) -> bool | str:
    return True if not problems else f"{name}: " + "; ".join(problems[:3]) + (" …" if len(problems) > 3 else "")


def policy(documents: list[tuple[str, dict]]) -> dict[str, bool | str]:
    by_kind: dict[str, list[dict]] = {}
    for _, document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    deployments = by_kind.get("Deployment", [])
    out: dict[str, bool | str] = {}

    missing = [kind for kind in REQUIRED_KINDS if kind not in by_kind]
    out["objects"] = rule("required-objects", [f"no {kind}" for kind in missing])
    if not deployments:
        for key in POLICY_KEYS:
            out[key] = "no Deployment to check"
        return out

    problems = []
    for d in deployments:
        replicas = (d.get("spec") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 2:
            problems.append(f"{label(d)} runs {replicas} replica(s); at least 2")
    out["replicas"] = rule("minimum-two-replicas", problems)

    problems = []
    for d in deployments:
        strategy = (d.get("spec") or {}).get("strategy") or {}
        if strategy.get("type") != "RollingUpdate":
            problems.append(f"{label(d)} has no strategy.type: RollingUpdate")
    out["rolling_update"] = rule("rolling-update-strategy", problems)

    problems = []
    for d in deployments:
        for c in containers(d):
            image = str(c.get("image", ""))
            name_part = image.split("@", 1)[0].rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in name_part or name_part.endswith(":latest"):
                problems.append(f"container {c.get('name')} in {label(d)} uses {image or 'no image'!r}: pin a tag other than latest")
    out["image_tag"] = rule("no-latest-tag", problems)

    problems = []
    for d in deployments:
        for c in containers(d):
            for probe in ("readinessProbe", "livenessProbe"):
                http = (c.get(probe) or {}).get("httpGet") or {}
                if http.get("path") != HEALTH_PATH:
                    problems.append(f"container {c.get('name')} in {label(d)} has no {probe} with httpGet on {HEALTH_PATH}")
    out["probes"] = rule("readiness-and-liveness-probes", problems)

    problems = []
    for d in deployments:
        for c in containers(d):
            resources = c.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (resources.get(part) or {}).get(resource):
                        problems.append(f"container {c.get('name')} in {label(d)} has no {part}.{resource}")
    out["resources"] = rule("requests-and-limits", problems)

    problems = []
    for d in deployments:
        pod_level = (pod_spec(d).get("securityContext") or {}).get("runAsNonRoot")
        for c in containers(d):
            own = (c.get("securityContext") or {}).get("runAsNonRoot")
            if (own if own is not None else pod_level) is not True:
                problems.append(f"container {c.get('name')} in {label(d)} may run as root (runAsNonRoot is not true)")
    out["non_root"] = rule("run-as-non-root", problems)

    problems = []
    for d in deployments:
        for c in containers(d):
            if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"container {c.get('name')} in {label(d)} has a writable root filesystem")
    out["read_only_root"] = rule("read-only-root-filesystem", problems)

    problems = [] if by_kind.get("Service") else ["no Service to check"]
    for service in by_kind.get("Service", []):
        selector = (service.get("spec") or {}).get("selector") or {}
        matched = [
            d for d in deployments
            if selector and all(((d["spec"].get("template") or {}).get("metadata") or {}).get("labels", {}).get(k) == v
                                for k, v in selector.items())
        ]
        if not matched:
            problems.append(f"{label(service)} selects no Deployment's pods (selector {selector})")
            continue
        ports = {p.get("name") for c in containers(matched[0]) for p in c.get("ports") or []} | {
            p.get("containerPort") for c in containers(matched[0]) for p in c.get("ports") or []}
        for port in (service.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if target not in ports:
                problems.append(f"{label(service)} sends traffic to port {target!r}, which no container declares")
    out["service_selects"] = rule("service-matches-deployment", problems)

    problems = [] if by_kind.get("HorizontalPodAutoscaler") else ["no HorizontalPodAutoscaler to check"]
    deployment_names = {d["metadata"]["name"] for d in deployments}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        spec = hpa.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment" or target.get("name") not in deployment_names:
            problems.append(f"{label(hpa)} does not scale one of your Deployments")
        if not isinstance(spec.get("minReplicas"), int) or spec["minReplicas"] < 2:
            problems.append(f"{label(hpa)} may scale below 2 replicas (minReplicas)")
        if isinstance(spec.get("maxReplicas"), int) and spec["maxReplicas"] <= spec.get("minReplicas", 1):
            problems.append(f"{label(hpa)} leaves no room to scale (maxReplicas ≤ minReplicas)")
    out["hpa_target"] = rule("autoscaler-targets-deployment", problems)

    config_names = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    problems = []
    for d in deployments:
        used = set()
        for c in containers(d):
            used |= {(e.get("configMapRef") or {}).get("name") for e in c.get("envFrom") or []}
            used |= {((e.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name") for e in c.get("env") or []}
        used |= {(v.get("configMap") or {}).get("name") for v in pod_spec(d).get("volumes") or []}
        if not used & config_names:
            problems.append(f"{label(d)} uses none of your ConfigMaps")
    out["config_used"] = rule("configmap-is-used", problems)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifests", default="k8s")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    observations: dict[str, bool | str] = {}
    try:
        documents = load_manifests(Path(args.manifests))
    except Unreadable as exc:
        observations["parsed"] = str(exc)
        for key in CHECK_KEYS:
            observations[key] = "not checked: the manifests could not be read"
    else:
        observations["parsed"] = True
        errors = schema_errors(documents)
        observations["schema"] = True if not errors else (
            f"{len(errors)} object(s) fail the Kubernetes {KUBERNETES_VERSION} schema: " + "; ".join(errors[:3]))
        observations.update(policy(documents))
    Path(args.out).write_text(json.dumps(observations))


if __name__ == "__main__":
    main()
