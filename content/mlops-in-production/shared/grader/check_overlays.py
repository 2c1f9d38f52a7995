"""Renders the learner's Kustomize overlays (`k8s/overlays/staging` and
`k8s/overlays/production`) with kustomize and checks what they render: each overlay
is valid for Kubernetes 1.33 and passes the same named policy rules as the base
(check_manifests.py, loaded from this folder as a library), and production differs
from staging as required.

Runs in a grader-owned stage of shipwright-lab-prod:py311 as `python -I`. Before
kustomize runs, every kustomization reachable from an overlay is read as data and
each `resources`/`bases`/`components` entry must be a relative path to a folder or
file inside `k8s/`: a URL (a remote base kustomize would fetch with git) or a path
that leaves `k8s/` is refused by name. kustomize then runs with
`--load-restrictor LoadRestrictionsRootOnly`, no plugins or Helm, a time limit and a
cap on its output; the rendered YAML gets the node budget of check_manifests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

OVERLAYS = ("staging", "production")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE = "/usr/local/bin/kustomize"
TIME_LIMIT_S = 30
MAX_OUTPUT_BYTES = 2 * 1024 * 1024
MAX_KUSTOMIZATION_BYTES = 64 * 1024
MAX_KUSTOMIZATIONS = 20
PRODUCTION_MIN_REPLICAS = 3
REFERENCE_FIELDS = ("resources", "bases", "components")
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[a-z][a-z0-9+.-]*::|git@|github\.com/|gitlab\.com/|bitbucket\.org/)", re.I)
KEYS = ("rendered", "valid", "differs")


def load_check_manifests():
    """check_manifests.py, beside this script (with -I the script's folder is not on sys.path)."""
    spec = importlib.util.spec_from_file_location("check_manifests", Path(__file__).with_name("check_manifests.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cm = load_check_manifests()


class Refused(Exception):
    pass


def kustomization_file(folder: Path) -> Path | None:
    found = [folder / name for name in KUSTOMIZATION_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise Refused(f"{folder.as_posix()} has more than one kustomization file")
    return found[0] if found else None


def read_kustomization(path: Path, shown: str) -> dict:
    if path.is_symlink() or path.stat().st_size > MAX_KUSTOMIZATION_BYTES:
        raise Refused(f"{shown} is a link or larger than {MAX_KUSTOMIZATION_BYTES // 1024} kB")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        cm.count_nodes(loaded, [cm.MAX_NODES])
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise Refused(f"{shown} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except cm.Unreadable as exc:
        raise Refused(f"{shown} {exc}") from None
    if not isinstance(loaded, dict):
        raise Refused(f"{shown} is not a mapping")
    return loaded


def vet(overlay: Path, root: Path) -> dict:
    """Follows every kustomization reachable from `overlay`, refusing remote or escaping
    references before kustomize sees them; returns the overlay's own kustomization."""
    real_root = root.resolve()
    shown = lambda p: p.resolve().relative_to(real_root.parent).as_posix()  # noqa: E731
    pending, seen, first = [overlay], set(), None
    while pending:
        folder = pending.pop()
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        if len(seen) > MAX_KUSTOMIZATIONS:
            raise Refused(f"more than {MAX_KUSTOMIZATIONS} kustomizations reachable from {shown(overlay)}")
        path = kustomization_file(folder)
        if path is None:
            raise Refused(f"{shown(folder)}/ has no kustomization.yaml")
        document = read_kustomization(path, shown(path))
        first = document if first is None else first
        for field in REFERENCE_FIELDS:
            entries = document.get(field) or []
            if not isinstance(entries, list):
                raise Refused(f"{shown(path)}: {field} is not a list")
            for entry in entries:
                if not isinstance(entry, str) or not entry.strip():
                    raise Refused(f"{shown(path)}: {field} has an entry that is not a path: {entry!r}")
                if REMOTE.match(entry) or "?ref=" in entry or "//" in entry:
                    raise Refused(f"{shown(path)}: {field} entry {entry!r} is a remote URL; "
                                  "only folders and files inside k8s/ may be used")
                target = folder / entry
                if Path(entry).is_absolute() or not target.resolve().is_relative_to(real_root):
                    raise Refused(f"{shown(path)}: {field} entry {entry!r} points outside k8s/")
                if not target.exists():
                    raise Refused(f"{shown(path)}: {field} entry {entry!r} does not exist")
                if target.is_dir():
                    pending.append(target)
    return first


def kustomize_build(overlay: Path) -> str:
    """`kustomize build` with the root-only load restrictor, a time limit and an
    output cap; a failure is raised with kustomize's first error line."""
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "KUSTOMIZE_PLUGIN_HOME": os.path.join(home, "none")}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(
                    [KUSTOMIZE, "build", "--load-restrictor", "LoadRestrictionsRootOnly", str(overlay)],
                    stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, timeout=TIME_LIMIT_S, check=False)
            except subprocess.TimeoutExpired:
                raise Refused(f"kustomize build took longer than {TIME_LIMIT_S} s") from None
            if out.tell() > MAX_OUTPUT_BYTES:
                raise Refused(f"kustomize build rendered more than {MAX_OUTPUT_BYTES // 1024 // 1024} MB")
            if proc.returncode != 0:
                err.seek(0)
                lines = [line for line in err.read(4096).decode("utf-8", "replace").splitlines() if line.strip()]
                raise Refused("kustomize build failed: " + (lines[0] if lines else f"exit code {proc.returncode}"))
            out.seek(0)
            return out.read().decode("utf-8", "replace")


def parse_rendered(text: str, name: str) -> list[tuple[str, dict]]:
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise Refused(f"kustomize rendered unreadable YAML: {str(exc).splitlines()[0]}") from None
    budget = [cm.MAX_NODES]
    documents = []
    for document in loaded:
        if document is None:
            continue
        try:
            cm.count_nodes(document, budget)
        except cm.Unreadable as exc:
            raise Refused(f"the rendered overlay {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("kind"), str) \
                or not isinstance((document.get("metadata") or {}).get("name"), str):
            raise Refused("kustomize rendered an object without kind or metadata.name")
        documents.append((f"overlays/{name} (rendered)", document))
    if not documents:
        raise Refused("kustomize rendered no objects")
    return documents


def image_name(image: str) -> tuple[str, str | None]:
    """('registry/name', tag or None); a digest counts as a tag."""
    if "@" in image:
        return image.split("@", 1)[0], image.split("@", 1)[1]
    head, _, last = image.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        return (f"{head}/{last}" if head else last), tag
    return image, None


def differences(rendered: dict[str, list[tuple[str, dict]]], production_kustomization: dict) -> list[str]:
    problems = []
    for name in OVERLAYS:
        for _, document in rendered[name]:
            namespace = (document.get("metadata") or {}).get("namespace")
            if document["kind"] != "Namespace" and namespace != name:
                problems.append(f"{name}: {cm.label(document)} is in namespace {namespace or '(none)'!r}, not {name!r}")
    objects = [d for _, d in rendered["production"]]
    for d in (d for d in objects if d["kind"] == "Deployment"):
        replicas = (d.get("spec") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < PRODUCTION_MIN_REPLICAS:
            problems.append(f"production: {cm.label(d)} runs {replicas} replica(s); at least {PRODUCTION_MIN_REPLICAS}")
    for h in (d for d in objects if d["kind"] == "HorizontalPodAutoscaler"):
        minimum = (h.get("spec") or {}).get("minReplicas")
        if not isinstance(minimum, int) or minimum < PRODUCTION_MIN_REPLICAS:
            problems.append(f"production: {cm.label(h)} may scale below {PRODUCTION_MIN_REPLICAS} replicas (minReplicas)")
    pinned = {}
    images = production_kustomization.get("images") or []
    for entry in images if isinstance(images, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            tag = entry.get("digest") or entry.get("newTag")
            if isinstance(tag, str) and tag and tag != "latest":
                pinned[entry.get("newName") or entry["name"]] = tag
    used = {image_name(str(c.get("image", ""))) for d in objects if d["kind"] == "Deployment" for c in cm.containers(d)}
    if not pinned:
        problems.append("production: its kustomization.yaml pins no image tag under images: (newTag or digest, not latest)")
    else:
        for name, tag in sorted(used):
            if pinned.get(name) != tag:
                problems.append(f"production: image {name} is not pinned by the overlay's images: (renders tag {tag!r})")
    return problems


def observe(k8s: Path) -> dict[str, bool | str]:
    out: dict[str, bool | str] = {}
    if not (os.path.isfile(KUSTOMIZE) and os.access(KUSTOMIZE, os.X_OK)):
        for key in KEYS:
            out[key] = "kustomize is not available on this platform (the grading image has it on x86_64 only)"
        return out
    rendered: dict[str, list[tuple[str, dict]]] = {}
    kustomizations: dict[str, dict] = {}
    failures = []
    for name in OVERLAYS:
        overlay = k8s / "overlays" / name
        try:
            if not k8s.is_dir() or k8s.is_symlink() or not overlay.is_dir() or overlay.is_symlink():
                raise Refused(f"no folder k8s/overlays/{name}/")
            kustomizations[name] = vet(overlay, k8s)
            rendered[name] = parse_rendered(kustomize_build(overlay), name)
        except Refused as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        out["rendered"] = "; ".join(failures)
        out["valid"] = out["differs"] = "not checked: the overlays could not be rendered"
        return out
    out["rendered"] = True
    problems = []
    for name in OVERLAYS:
        for error in cm.schema_errors(rendered[name]):
            problems.append(f"{name}: {error}")
        for key, verdict in cm.policy(rendered[name]).items():
            if verdict is not True:
                problems.append(f"{name}: {verdict}")
    out["valid"] = True if not problems else "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
    problems = differences(rendered, kustomizations["production"])
    out["differs"] = True if not problems else "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k8s", default="k8s")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    Path(args.out).write_text(json.dumps(observe(Path(args.k8s))))


if __name__ == "__main__":
    main()
