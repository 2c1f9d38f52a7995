"""What the host decides about a learner's Dockerfile and the image it built, without
the engine: which base images a Dockerfile may name (and the local image each one is),
the Dockerfile as the builder gets it, which instruction a failed build stopped at, and
the secret scan of an image's history and of the files its own layers added.

The engine side (the build itself, under limits, and running the image) is
`grading.sandbox.Sandbox.build_image` and `Sandbox.run_image_service`; the design and
why the classic builder is used: docs/grading.md, "Building the learner's image".
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from dockerfile_parse import DockerfileParser

from labs.lab_spec import BUILD_BASES as LOCAL_BASES

INDEX_IMAGE = "shipwright-index:py311"
INDEX_PORT = 3141

FROM_NOT_ALLOWED = "line {line}: FROM {name} is not allowed here; this lab's Dockerfile may start FROM {allowed}"
FROM_VARIABLE = "line {line}: FROM {name} uses a build variable; name the base image itself ({allowed})"
COPY_FROM_IMAGE = "line {line}: {instruction} --from={source} names an image; --from may only name an earlier stage of this Dockerfile"
NO_FROM = "{path} has no FROM instruction"
NO_DOCKERFILE = "no {path} at the repository root (or it is not a regular file)"
BUILDKIT_ONLY = "line {line}: {instruction} {flag} needs BuildKit, which the grader's builder is not"


class DockerfileRejected(Exception):
    """The Dockerfile names something the grader will not build (a base image the lab
    does not allow, an image in COPY --from): the learner's failure, in words."""


@dataclass(frozen=True)
class Instruction:
    """One instruction of the learner's Dockerfile, as the builder numbers its steps."""

    step: int  # 1-based, as in the builder's "Step N/M"
    line: int  # 1-based line in the Dockerfile
    text: str  # the instruction as written (continuation lines joined)


def instructions(dockerfile: str) -> list[Instruction]:
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()), env_replace=False)
    items = [item for item in parser.structure if item["instruction"] != "COMMENT"]
    return [
        Instruction(step=n, line=item["startline"] + 1, text=f"{item['instruction']} {item['value']}".strip())
        for n, item in enumerate(items, 1)
    ]


def prepare_dockerfile(dockerfile: str, *, allowed: Iterable[str], path: str = "Dockerfile") -> str:
    """The Dockerfile the builder gets: each FROM of an allowed base rewritten to the
    local image that stands for it, everything else as written. Raises
    DockerfileRejected for a FROM the lab does not allow (any local image could
    otherwise be read: the platform's own images hold its code), a FROM built from a
    variable, a COPY --from naming an image, and BuildKit-only flags.

    The rewrite is line-exact (only the image name of a FROM line changes), so the
    builder's step numbers and the learner's line numbers still match."""
    allowed = list(allowed)
    shown = ", ".join(allowed) or "(none)"
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()), env_replace=False)
    lines = dockerfile.splitlines(keepends=True)
    stages: list[str] = []
    problems = []
    any_from = False
    for item in parser.structure:
        kind, value, line = item["instruction"], item["value"], item["startline"] + 1
        words = value.split()
        if kind == "FROM":
            any_from = True
            flags = [w for w in words if w.startswith("--")]
            rest = [w for w in words if not w.startswith("--")]
            name = rest[0] if rest else ""
            if "$" in name:
                problems.append(FROM_VARIABLE.format(line=line, name=name, allowed=shown))
            elif name.lower() in stages:
                pass  # an earlier stage of this Dockerfile
            elif name not in allowed:
                problems.append(FROM_NOT_ALLOWED.format(line=line, name=name or "(nothing)", allowed=shown))
            else:
                local = LOCAL_BASES[name]
                start, end = item["startline"], item["endline"]
                for index in range(start, end + 1):
                    if name in lines[index]:
                        lines[index] = lines[index].replace(name, local, 1)
                        break
            if flags:
                problems.append(BUILDKIT_ONLY.format(line=line, instruction="FROM", flag=flags[0]))
            if len(rest) >= 3 and rest[1].lower() == "as":
                stages.append(rest[2].lower())
            else:
                stages.append(str(len(stages)))
        elif kind in ("COPY", "ADD"):
            for word in words:
                if word.startswith("--from="):
                    source = word.split("=", 1)[1].lower()
                    if source not in stages:
                        problems.append(COPY_FROM_IMAGE.format(line=line, instruction=kind, source=source))
                elif word.startswith("--") and word.split("=", 1)[0] not in ("--chown", "--from"):
                    problems.append(BUILDKIT_ONLY.format(line=line, instruction=kind, flag=word.split("=", 1)[0]))
        elif kind == "RUN" and words and words[0].startswith("--"):
            problems.append(BUILDKIT_ONLY.format(line=line, instruction="RUN", flag=words[0].split("=", 1)[0]))
    if not any_from:
        problems.append(NO_FROM.format(path=path))
    if problems:
        raise DockerfileRejected("\n".join(problems))
    return "".join(lines)


_STEP = re.compile(r"^Step (\d+)/(\d+) : ", re.MULTILINE)


def failed_step(output: str, steps: list[Instruction]) -> Instruction | None:
    """The instruction a failed build stopped at: the last step the builder announced.

    The builder's progress lines share the stream with what RUN steps print, so a RUN
    could print a fake "Step N/M" line; that would only mislabel its own failure in
    its own feedback. Whether the build succeeded never rests on this text (it is the
    engine's error or image ID)."""
    last = None
    for match in _STEP.finditer(output):
        number = int(match.group(1))
        if 1 <= number <= len(steps):
            last = steps[number - 1]
    return last


# --- the secret scan of an image --------------------------------------------------

# Files of the learner's layers that the scan reads: text, not installed packages
# (their own test data is full of high-entropy strings), not too large.
SCAN_SKIP_PARTS = ("site-packages/", "dist-packages/", "__pycache__/", "/usr/share/", "usr/share/", "var/lib/")
SCAN_MAX_FILE = 256 * 1024
SCAN_MAX_TOTAL = 4 * 1024 * 1024


def history_text(history: list[dict[str, Any]]) -> dict[str, str]:
    """`docker history` as scannable text: one line per layer's instruction (ENV and
    ARG values and RUN command lines are where a baked-in token shows)."""
    lines = [str(entry.get("CreatedBy") or "") for entry in reversed(history)]
    return {"(image history)": "\n".join(lines)}


def layer_files(save_stream: Iterator[bytes], *, skip_layers: set[str]) -> dict[str, str]:
    """Text files added by each layer of a `docker save` stream (API 1.41 layout)
    whose diff ID is not in `skip_layers` (the base image's), as "layer N:path" ->
    text. Files deleted by a later layer are still in the layer that added them, and
    are read: a secret removed later is still in the image."""
    found: dict[str, str] = {}
    total = 0
    reader = _StreamReader(save_stream)
    with tarfile.open(fileobj=reader, mode="r|") as outer:
        for member in outer:
            if not member.name.endswith("/layer.tar") or not member.isfile():
                continue
            folder = member.name.split("/")[0]
            if _KNOWN_DIFF_IDS.get(folder) in skip_layers:
                continue  # a base layer seen before: the stream skips its bytes unread
            fileobj = outer.extractfile(member)
            if fileobj is None:
                continue
            digest = _Sha256Reader(fileobj)
            with tarfile.open(fileobj=digest, mode="r|") as layer:
                for entry in layer:
                    if not entry.isfile() or entry.size > SCAN_MAX_FILE or total > SCAN_MAX_TOTAL:
                        continue
                    if any(part in entry.name for part in SCAN_SKIP_PARTS):
                        continue
                    data = layer.extractfile(entry)
                    raw = data.read() if data is not None else b""
                    if b"\x00" in raw[:4096]:
                        continue
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    total += len(raw)
                    found[f"{member.name.split('/')[0][:12]}:/{entry.name}"] = text
            digest.drain()
            layer_id = "sha256:" + digest.hexdigest()
            # The folder's name is a v1 ID derived from the layer's whole chain: the same
            # folder name is always the same layer.
            if len(_KNOWN_DIFF_IDS) < 10_000:
                _KNOWN_DIFF_IDS[folder] = layer_id
            if layer_id in skip_layers:
                for key in [k for k in found if k.startswith(member.name.split("/")[0][:12] + ":")]:
                    total -= len(found.pop(key))
    return found


_KNOWN_DIFF_IDS: dict[str, str] = {}


class _StreamReader(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's streamed response)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _Sha256Reader(io.RawIOBase):
    """Hashes what is read through it (a layer's diff ID is the SHA-256 of its tar)."""

    def __init__(self, inner: IO[bytes]) -> None:
        import hashlib

        self._inner = inner
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self._inner.read(len(target))
        self._hash.update(data)
        target[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self._inner.read(1 << 20):
            pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def config_summary(image: dict[str, Any]) -> dict[str, Any]:
    """What the checks and the service stage need of an image's config (JSON-able)."""
    config = image.get("Config") or {}
    return {
        "id": image.get("Id"),
        "size_bytes": int(image.get("Size") or 0),
        "user": config.get("User") or "",
        "workdir": config.get("WorkingDir") or "",
        "env": list(config.get("Env") or []),
        "cmd": list(config.get("Cmd") or []),
        "entrypoint": list(config.get("Entrypoint") or []),
        "exposed": sorted((config.get("ExposedPorts") or {}).keys()),
        "healthcheck": json.loads(json.dumps(config.get("Healthcheck"))) if config.get("Healthcheck") else None,
        "layers": list((image.get("RootFS") or {}).get("Layers") or []),
    }


def is_root_user(user: str) -> bool:
    """An image's USER (name or uid, optionally :group) that means root."""
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")
