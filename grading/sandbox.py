"""Run untrusted lab code in Docker containers: one `Sandbox` per grading run.

No Django here: callers pass everything (image, limits, paths, labels).

Layout of a run (all named ``shipwright-<run_id>-*`` and labelled
``shipwright.run=<run_id>``, ``shipwright.created=<epoch>``):

- the workspace is a tmpfs-backed local volume (``size=<workspace_mb>m,mode=1777``),
  kept mounted by a "holder" container (``sleep infinity``) for the whole run, so every
  stage container sees the same files. A container that mounted such a volume alone
  would get a fresh, empty tmpfs. Writes past the size fail with ENOSPC; the host disk
  is never touched (tmpfs pages are charged to the writing container's memory).
- the workspace root is owned by root with mode 1777 (sticky), like /tmp: the learner
  (uid 1000) creates and deletes their own files, but cannot delete, rename or replace
  official files (owned by root, mode 0444) or the root-owned sticky directories that
  hold them.
- files enter the workspace through short-lived "setup" containers: the payload is
  `put_archive`-d into the setup container's own (disk) root filesystem, never into a
  tmpfs mount, then copied into the volume by `tar` (as uid 1000) or by a small Python
  script (as root with CHOWN/DAC_OVERRIDE/FOWNER only, for official files). This works
  whether or not the engine runs on the worker's host.
- each stage runs in a fresh container: network "none" (loopback only), read-only root,
  uid 1000, all capabilities dropped, no-new-privileges, memory = memory + swap, CPU
  quota, pids limit, size-capped /tmp, log driver "none" (output is streamed over an
  attach socket and capped in memory, so nothing a learner prints lands on disk).
  When PID 1 exits the kernel kills everything left in the container's PID namespace.
- a grader stage (``grader_out=True``) gets /grader-out on its own small tmpfs volume
  held by a second holder, so `read_grader_out` can read it after the stage exited.
- a platform probe that runs learner code (``as_grader=True``) runs as root in the
  container with every capability dropped but SETUID, SETGID and KILL, and starts the
  learner's processes as uid 1000 (setuid to a non-zero uid drops all their
  capabilities). Its /grader-out is root's, mode 0755: learner code cannot write the
  channel, signal the probe, or open /proc/<probe>/mem (different uid; ptrace and
  process_vm_* are refused by seccomp anyway).
- files come back out with the archive API of a holder: every path component is
  `stat`-ed first (the engine's stat does not follow a final symlink) and anything that
  is not a directory (for parents) or a regular file (for the target) counts as absent.

Errors: `SandboxUnavailable` is the platform's (engine unreachable, image missing,
engine API failure): retry the run. Every other `SandboxError` is about the learner's
input (`SnapshotRejected`, `FileTooLarge`) and is a result. A learner's failing, slow
or greedy code is never an exception: it is a `StageResult`.

Deviations from the first sketch of the interface:
- `read_file`/`read_grader_out` raise `FileTooLarge` (a `SandboxError`) for a file
  larger than ``max_bytes`` instead of returning None, so the caller can say so.
- `load_tar` raises `SnapshotRejected` when the snapshot does not fit the workspace or
  is not a readable tar archive.
- `StageResult.cpu_s` and `peak_memory_mb` are sampled from the engine's stats stream
  while the stage runs (Docker drops a container's cgroup when it exits): None for a
  stage too short to be sampled (under about a second).
- `pids_limit_hit` is inferred from the output (EAGAIN from fork/clone/thread start):
  the engine does not report pids-limit events.
- `image_digest` returns the image ID (``sha256:`` digest of the image config), which
  locally built images always have; registry RepoDigests are not used.
- ``assets_dir`` must be a path on the engine's host (it is bind-mounted).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import requests
import urllib3

logger = logging.getLogger(__name__)

SANDBOX_UID = 1000
WORKSPACE = "/workspace"
GRADER_DIR = "/grader"
GRADER_OUT = "/grader-out"
GRADER_OUT_MB = 32
# What a probe running as the grader may do beyond an unprivileged process: start
# learner processes as SANDBOX_UID, and stop them all before it reports.
GRADER_CAPABILITIES = ["SETUID", "SETGID", "KILL"]
LABEL_RUN = "shipwright.run"
LABEL_CREATED = "shipwright.created"
LABEL_ROLE = "shipwright.role"
# Set by the caller (labels=...): which submission, attempt and deployment a run
# belongs to, so `reap_leftovers` can remove what no live claim owns.
LABEL_SUBMISSION = "shipwright.submission"
LABEL_ATTEMPT = "shipwright.attempt"
LABEL_INSTANCE = "shipwright.instance"
# Carried by the learner build base (docker/learner/base.Dockerfile) and so by every
# layer built on it: the build cache.
LABEL_LEARNER_BASE = "org.shipwright.learner-base"
SETUP_TIMEOUT_S = 120
STATS_DELAY_S = 1.0
# How long the engine may take to answer a non-waiting API call.
API_TIMEOUT_S = 60
# runc's own init process (a Go program) lives in the container's cgroups from the
# engine's create to its start. Under CPU or memory pressure its runtime starts a few
# more OS threads; past the pids limit it dies, the kernel logs "fork rejected by pids
# controller" for that cgroup and the start fails with "cannot start a stopped
# process". Containers that run only our code get room for it; and a container that
# dies that way is recreated, a bounded number of times.
HOLDER_PIDS = 32
# Under gVisor (runsc) the host's pids limit is pids * FACTOR + OVERHEAD (see _host_config).
RUNSC_PIDS_FACTOR = 4
RUNSC_PIDS_OVERHEAD = 128
SETUP_PIDS = 32
START_ATTEMPTS = 4
_START_RACE_MARKERS = ("cannot start a stopped process",)

# The seccomp profile every sandbox container runs under: the engine family's
# default allowlist (Debian's copy of the containers project's profile, package
# golang-github-containers-common), made stricter where learner code could reach
# another process or widen the kernel's surface. Docker's built-in default allows
# ptrace on kernels since 4.8; with it, a learner process could attach to a grader
# probe running as the same uid and rewrite what it reports.
DEFAULT_SECCOMP_BASE = "/usr/share/containers/seccomp.json"
SECCOMP_DENIED = frozenset(
    {
        # Reading or steering another process.
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_getfd",
        "kcmp",
        # New namespaces (an unprivileged user namespace hands out capabilities inside it)
        # and mounts: Docker's default allows these only with CAP_SYS_ADMIN, which we drop.
        "unshare",
        "setns",
        "mount",
        "mount_setattr",
        "umount",
        "umount2",
        "pivot_root",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "move_mount",
        "open_tree",
        # The kernel keyring (not namespaced).
        "keyctl",
        "add_key",
        "request_key",
        # Replaced below by a rule that refuses namespace flags.
        "clone",
        "clone3",
    }
)
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET: clone is allowed when none of these flags is set.
_CLONE_NAMESPACE_FLAGS = 0x7E020000
_ENOSYS = 38
_seccomp_cache: dict[tuple[str, bool], str] = {}


def seccomp_profile(base_path: str = DEFAULT_SECCOMP_BASE, *, gvisor: bool = False) -> str:
    """The sandbox's seccomp profile (JSON, as the engine takes it): the base
    allowlist without SECCOMP_DENIED, plus clone without namespace flags and clone3
    answered ENOSYS (so the C library falls back to clone, whose flags can be
    filtered). Raises SandboxUnavailable when the base profile is missing: a
    sandbox never runs without it.

    `gvisor`: the profile for runsc (with --oci-seccomp it filters inside gVisor's
    kernel). That gVisor answers every seccomp errno with EPERM whatever errnoRet
    says, and the C library falls back to clone only on ENOSYS: no thread would
    start. So clone3 is let through to gVisor, which has none and answers ENOSYS."""
    key = (base_path, gvisor)
    if key in _seccomp_cache:
        return _seccomp_cache[key]
    try:
        base = json.loads(Path(base_path).read_text())
    except (OSError, ValueError) as exc:
        raise SandboxUnavailable(
            f"seccomp base profile {base_path} is unreadable ({exc}); install Debian's "
            "golang-github-containers-common or set SHIPWRIGHT_SECCOMP_BASE"
        ) from exc
    if base.get("defaultAction") not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"):
        raise SandboxUnavailable(f"seccomp base profile {base_path} is not an allowlist")
    rules = []
    for rule in base.get("syscalls", []):
        names = [n for n in rule.get("names", []) if n not in SECCOMP_DENIED]
        if not names:
            continue
        if rule.get("action") == "SCMP_ACT_ALLOW" and (rule.get("includes") or {}).get("caps"):
            continue  # only for capabilities the sandbox never has
        rules.append({**rule, "names": names})
    rules.append(
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": _CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
            "excludes": {"arches": ["s390", "s390x"]},
        }
    )
    rules.append(
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": _CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
            "includes": {"arches": ["s390", "s390x"]},
        }
    )
    if gvisor:
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ALLOW"})
    else:
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": _ENOSYS})
    profile = json.dumps({**base, "syscalls": rules}, separators=(",", ":"))
    _seccomp_cache[key] = profile
    return profile


# Resource limits of every process in a sandbox: no core dumps (a crash must not
# write the process's memory to the workspace), a bounded number of open files, and
# no single file larger than the workspace (fsize, set per container).
NOFILE_LIMIT = 4096
# A stage killed by SIGKILL exits 128 + 9: the OOM killer's signal (or ours, at the time limit).
SIGKILL_EXIT = 137
# How long to wait for the engine's "oom" event of a SIGKILLed stage (see Sandbox._oom_event).
OOM_EVENT_WAIT_S = 1.0

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
# Go's os.FileMode type bits (dir, symlink, named pipe, socket, device, char device,
# irregular), as sent in the archive API's X-Docker-Container-Path-Stat header.
_GO_MODE_DIR = 1 << 31
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 25) | (1 << 24) | (1 << 26) | (1 << 21) | (1 << 19)
# What a fork, clone or thread start prints when the pids cgroup refuses it.
_PIDS_MARKERS = (
    b"Resource temporarily unavailable",
    b"can't start new thread",
    b"fork: retry",
    b"Cannot fork",
)


@dataclass(frozen=True)
class Limits:
    time_s: float = 300
    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 128
    workspace_mb: int = 512
    tmp_mb: int = 64
    output_kb: int = 1024

    def __post_init__(self) -> None:
        for field in ("time_s", "memory_mb", "cpus", "pids", "workspace_mb", "tmp_mb", "output_kb"):
            if not getattr(self, field) > 0:
                raise ValueError(f"Limits.{field} must be positive")


@dataclass(frozen=True)
class StageResult:
    exit_code: int | None  # None when the stage was killed for its time limit
    output: str  # stdout and stderr merged, head and tail kept
    output_truncated_bytes: int
    timed_out: bool
    oom_killed: bool
    duration_s: float
    cpu_s: float | None
    peak_memory_mb: float | None
    pids_limit_hit: bool


@dataclass(frozen=True)
class BuildResult:
    image: str | None  # the run's tag of the built image; None when the build failed
    image_id: str | None
    output: str  # the builder's output, head and tail kept
    output_truncated_bytes: int
    error: str  # the engine's error message of a failed build
    timed_out: bool
    duration_s: float
    oom_killed: bool


def prune_build_cache(*, older_than_s: float, client: docker.DockerClient | None = None) -> int:
    """Removes the learner build cache (layers built on the learner base image, whose
    label they inherit) left without a tag for longer than `older_than_s`: the
    intermediate layers each run's build leaves for the next (Sandbox.build_image).
    Other images on the engine are never touched. Returns how many were removed."""
    try:
        pruned = _client(client).api.prune_images(
            filters={"dangling": True, "label": LABEL_LEARNER_BASE, "until": f"{int(older_than_s)}s"}
        )
    except _ENGINE_ERRORS as exc:
        raise _unavailable(exc) from exc
    return len(pruned.get("ImagesDeleted") or [])


class SandboxError(Exception):
    """Base class. Only `SandboxUnavailable` is the platform's fault."""


class SandboxUnavailable(SandboxError):
    """The engine is unreachable, the image is missing or the engine failed: retry."""


class SnapshotRejected(SandboxError):
    """The submission's snapshot could not be loaded (too big for the workspace, corrupt)."""


class FileTooLarge(SandboxError):
    def __init__(self, path: str, size: int, max_bytes: int) -> None:
        super().__init__(f"{path} is {size} bytes, more than {max_bytes}")
        self.path, self.size, self.max_bytes = path, size, max_bytes


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    if client is not None:
        return client
    try:
        # Negotiates the API version (Debian's engine 20.10 speaks 1.41).
        return docker.from_env(timeout=API_TIMEOUT_S)
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"Docker engine unreachable: {exc}") from exc


def _unavailable(exc: Exception) -> SandboxUnavailable:
    return SandboxUnavailable(f"Docker engine error: {exc}")


# Everything the engine can throw at us that is not the learner's doing.
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def engine_available(client: docker.DockerClient | None = None) -> bool:
    try:
        return bool(_client(client).ping())
    except (SandboxUnavailable, *_ENGINE_ERRORS):
        return False


def engine_runtimes(client: docker.DockerClient | None = None) -> set[str]:
    """The OCI runtimes the engine knows (runc, and runsc once registered)."""
    return set((_client(client).info().get("Runtimes") or {}).keys())


def image_digest(image: str, client: docker.DockerClient | None = None) -> str:
    try:
        return str(_client(client).api.inspect_image(image)["Id"])
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailable(f"image {image} is missing") from exc
    except _ENGINE_ERRORS as exc:
        raise _unavailable(exc) from exc


def reap_leftovers(
    *,
    older_than_s: float,
    run_ids: set[str] | None = None,
    orphans_of: str | None = None,
    live_claims: set[tuple[str, str]] | None = None,
    orphan_grace_s: float = 120.0,
    client: docker.DockerClient | None = None,
) -> int:
    """Remove containers, then volumes, labelled by a sandbox and older than that;
    whatever their age, those of the runs named in `run_ids` (runs whose worker
    died); and, with `orphans_of` (a deployment's LABEL_INSTANCE), that deployment's
    objects older than `orphan_grace_s` whose (submission, attempt) labels are not in
    `live_claims` (reference runs, earlier attempts, dead runs).

    Idempotent; returns how many objects were removed. A volume still used by a
    container that is too young to reap stays (the engine refuses to remove it).
    """
    api = _client(client).api
    now = time.time()
    cutoff = now - older_than_s
    doomed = run_ids or set()
    live = live_claims or set()
    removed = 0

    def expired(labels: dict[str, str], fallback: float) -> bool:
        created = _created(labels, fallback)
        if labels.get(LABEL_RUN) in doomed or created <= cutoff:
            return True
        return (
            orphans_of is not None
            and labels.get(LABEL_INSTANCE) == orphans_of
            and LABEL_SUBMISSION in labels
            and (labels[LABEL_SUBMISSION], labels.get(LABEL_ATTEMPT, "")) not in live
            and created <= now - orphan_grace_s
        )

    try:
        for c in api.containers(all=True, filters={"label": LABEL_RUN}):
            if expired(c.get("Labels") or {}, c.get("Created", 0)):
                try:
                    api.remove_container(c["Id"], force=True, v=True)
                    removed += 1
                except docker.errors.NotFound:
                    pass
        for image in api.images(all=True, filters={"label": LABEL_RUN}):
            # A run's built image (its containers are gone by now); noprune: the layers
            # below are the build cache, pruned by age (prune_build_cache).
            if expired(image.get("Labels") or {}, image.get("Created", 0)):
                if _remove_run_image(api, image):
                    removed += 1
        for v in api.volumes(filters={"label": LABEL_RUN}).get("Volumes") or []:
            if expired(v.get("Labels") or {}, 0):
                try:
                    api.remove_volume(v["Name"], force=True)
                    removed += 1
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    logger.info("volume %s not reaped: %s", v["Name"], exc)
    except _ENGINE_ERRORS as exc:
        raise _unavailable(exc) from exc
    if removed:
        logger.info("reaped %d leftover sandbox objects", removed)
    return removed


def count_containers(*, instance: str | None = None, client: docker.DockerClient | None = None) -> int:
    """Sandbox containers on this engine (running or not), optionally of one
    deployment (its LABEL_INSTANCE): what `/metrics` reports per grading host."""
    label = LABEL_RUN if instance is None else f"{LABEL_INSTANCE}={instance}"
    try:
        return len(_client(client).api.containers(all=True, filters={"label": label}))
    except _ENGINE_ERRORS as exc:
        raise _unavailable(exc) from exc


def _remove_run_image(api: docker.APIClient, image: dict[str, Any]) -> bool:
    """Remove a run's built image (noprune: the layers below are the build cache). An
    image that a later build used as a cached parent cannot be deleted while its child
    exists: then only its tags go, and the untagged layer is left to prune_build_cache."""
    try:
        api.remove_image(image["Id"], force=True, noprune=True)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            raise
    for tag in image.get("RepoTags") or []:
        if tag and tag != "<none>:<none>":
            try:
                api.remove_image(tag, noprune=True)
            except docker.errors.NotFound:
                pass
    return True


def _created(labels: dict[str, str], fallback: float) -> float:
    try:
        return float(labels[LABEL_CREATED])
    except (KeyError, ValueError):
        return float(fallback)


def _relative(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or any(part in ("..", ".", "") for part in path.split("/")):
        raise ValueError(f"not a plain relative path: {path!r}")
    return p


def _check_world_readable(root: Path) -> None:
    """The bind mount keeps host permissions: uid 1000 must be able to read the assets.

    (tempfile.mkdtemp makes 0700 directories; chmod them 0755 before a run.)
    """
    if not root.is_dir():
        raise ValueError(f"assets_dir {root} is not a directory")
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        needed = 0o005 if path.is_dir() else 0o004
        if mode & needed != needed:
            raise ValueError(f"assets_dir: {path} is not readable by the sandbox user (uid {SANDBOX_UID})")


def _tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _OutputCollector(threading.Thread):
    """Reads an attach stream to its end, keeping the first and last bytes only."""

    def __init__(self, stream: Any, cap_bytes: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.head_cap = cap_bytes // 2
        self.tail_cap = cap_bytes - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.pids_marker = False

    def run(self) -> None:
        try:
            for chunk in self.stream:
                self._add(chunk)
        except Exception:  # the stream breaks when the container is killed
            pass

    def _add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if not self.pids_marker and any(m in chunk for m in _PIDS_MARKERS):
            self.pids_marker = True
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    def text(self) -> tuple[str, int]:
        tail = bytes(self.tail[-self.tail_cap :]) if self.tail_cap else b""
        cut = self.total - len(self.head) - len(tail)
        data = bytes(self.head)
        if cut:
            data += f"\n[... {cut} bytes of output cut ...]\n".encode()
        data += tail
        # NUL is valid UTF-8 but not storable as text in PostgreSQL.
        return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), cut


class _StatsSampler(threading.Thread):
    """Keeps the last sample of the engine's stats stream for a running container.

    Asking for stats while the engine starts a container slows every stage by about
    0.2 s here, so sampling begins only once a stage has run for STATS_DELAY_S.
    """

    def __init__(self, api: docker.APIClient, container_id: str) -> None:
        super().__init__(daemon=True)
        self.api, self.container_id = api, container_id
        self.cpu_s: float | None = None
        self.peak_mb: float | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        if self.finished.wait(STATS_DELAY_S):
            return
        try:
            for s in self.api.stats(self.container_id, decode=True, stream=True):
                usage = (s.get("cpu_stats") or {}).get("cpu_usage") or {}
                if usage.get("total_usage"):
                    self.cpu_s = usage["total_usage"] / 1e9
                mem = s.get("memory_stats") or {}
                peak = mem.get("max_usage") or mem.get("usage")
                if peak:
                    self.peak_mb = max(self.peak_mb or 0.0, peak / 2**20)
        except Exception:  # ends with the container; best effort by design
            pass


_READONLY_SCRIPT = r"""
import json, os, shutil, stat
man = json.load(open("/tmp/shipwright-in/manifest.json"))
for index, rel in man:
    parts = rel.split("/")
    d = "/workspace"
    for p in parts[:-1]:
        q = os.path.join(d, p)
        try:
            st = os.lstat(q)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(q)  # a link or file where a directory belongs is replaced
            st = None
        if st is None:
            os.mkdir(q)
        os.chown(q, 0, 0)
        os.chmod(q, 0o1777)  # the learner may add files here but not remove ours
        d = q
    target = os.path.join(d, parts[-1])
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(target)
        else:
            os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "wb") as out, open(f"/tmp/shipwright-in/{index}", "rb") as src:
        shutil.copyfileobj(src, out)
    os.chown(target, 0, 0)
    os.chmod(target, 0o444)
"""


class Sandbox:
    """One grading run's containers and workspace. Use as a context manager.

    On exit every container and volume labelled with this run is killed and removed,
    whatever happened; leftovers of an earlier attempt with the same run_id are removed
    on entry, so a retried run starts clean.
    """

    def __init__(
        self,
        *,
        run_id: str,
        image: str,
        workspace_mb: int,
        labels: dict[str, str] | None = None,
        client: docker.DockerClient | None = None,
        seccomp_base: str = DEFAULT_SECCOMP_BASE,
        runtime: str | None = None,
    ) -> None:
        """`seccomp_base`: the allowlist `seccomp_profile` derives from. `runtime`: the
        engine's OCI runtime for the containers that run anything but `sleep` (None:
        the engine's default, runc; "runsc": gVisor, see docs/operations.md)."""
        if not _NAME_RE.match(run_id) or len(run_id) > 40:
            raise ValueError(f"run_id must match {_NAME_RE.pattern} (40 chars max): {run_id!r}")
        if workspace_mb <= 0:
            raise ValueError("workspace_mb must be positive")
        self.run_id = run_id
        self.image = image
        self.workspace_mb = workspace_mb
        self.seccomp_base = seccomp_base
        # None: the engine's default runtime (runc).
        self.runtime = runtime if runtime and runtime != "runc" else None
        self.extra_labels = dict(labels or {})
        self._given_client = client
        self._docker: docker.DockerClient | None = None
        self._containers: list[str] = []
        self._volumes: list[str] = []
        self.workspace_volume = f"shipwright-{run_id}-workspace"
        self._holder: str | None = None
        self._grader_out_holder: str | None = None
        self._grader_out_volume: str | None = None
        self._grader_out_count = 0

    # --- lifecycle -----------------------------------------------------------------

    @property
    def api(self) -> docker.APIClient:
        assert self._docker is not None, "use Sandbox as a context manager"
        return self._docker.api

    def _labels(self, role: str) -> dict[str, str]:
        return {
            **self.extra_labels,
            LABEL_RUN: self.run_id,
            LABEL_CREATED: str(int(time.time())),
            LABEL_ROLE: role,
        }

    def __enter__(self) -> Sandbox:
        self._docker = _client(self._given_client)
        try:
            self.api.inspect_image(self.image)
        except docker.errors.ImageNotFound as exc:
            self._close_client()
            raise SandboxUnavailable(f"image {self.image} is missing") from exc
        except _ENGINE_ERRORS as exc:
            self._close_client()
            raise _unavailable(exc) from exc
        if self.runtime:
            try:
                known = engine_runtimes(self._docker)
            except _ENGINE_ERRORS as exc:
                self._close_client()
                raise _unavailable(exc) from exc
            if self.runtime not in known:
                self._close_client()
                raise SandboxUnavailable(
                    f"the engine has no runtime {self.runtime!r} (it has {', '.join(sorted(known))}): "
                    "register it in /etc/docker/daemon.json (`make engine` does for runsc)"
                )
        try:
            self._remove_run_objects()
            self._create_volume(self.workspace_volume, self.workspace_mb)
            self._holder = self._start_holder("holder", self.workspace_volume, WORKSPACE)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, _ENGINE_ERRORS):
                raise _unavailable(exc) from exc
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._remove_run_objects()
        except Exception as cleanup_error:
            # Never mask the run's own outcome; reap_leftovers finds these later.
            logger.warning("sandbox %s: cleanup failed: %s", self.run_id, cleanup_error)
        finally:
            self._close_client()

    def _close_client(self) -> None:
        if self._docker is not None and self._given_client is None:
            self._docker.close()
        self._docker = None

    def _remove_run_objects(self) -> None:
        api = self.api
        ids = set(self._containers)
        ids.update(c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}))
        for cid in ids:
            try:
                api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
        self._containers.clear()
        # The run's built images (the label is the build's last step, so no cached layer
        # carries it). noprune: the layers below stay as the build cache, pruned by age
        # (prune_build_cache); only this run's tag and top layer go.
        for image in api.images(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}):
            _remove_run_image(api, image)
        names = set(self._volumes)
        names.update(
            v["Name"] for v in api.volumes(filters={"label": f"{LABEL_RUN}={self.run_id}"}).get("Volumes") or []
        )
        for name in names:
            for attempt in range(5):
                try:
                    api.remove_volume(name, force=True)
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError:  # "volume is in use" right after a removal
                    if attempt == 4:
                        raise
                    time.sleep(0.1 * (attempt + 1))
        self._volumes.clear()
        self._holder = self._grader_out_holder = self._grader_out_volume = None

    def _create_volume(self, name: str, size_mb: int, mode: str = "1777") -> None:
        self.api.create_volume(
            name,
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size_mb}m,mode={mode}"},
            labels=self._labels("volume"),
        )
        self._volumes.append(name)

    def _host_config(self, *, fsize_mb: int | None = None, runtime: str | None = None, **extra: Any) -> dict[str, Any]:
        # One MiB above the largest writable mount: a file that fills its mount gets
        # ENOSPC (a message the learner understands), and no file can grow past that.
        fsize = ((fsize_mb or self.workspace_mb) + 1) * 1024 * 1024
        gvisor = bool(runtime and runtime != "runc")
        profile = seccomp_profile(self.seccomp_base, gvisor=gvisor)
        ulimits = [
            docker.types.Ulimit(name="core", soft=0, hard=0),
            docker.types.Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT),
            docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
        ]
        if gvisor:
            extra["runtime"] = runtime
            pids = extra.get("pids_limit")
            if pids:
                # gVisor's tasks are not host processes one for one: the host's pids
                # limit counts the sandbox kernel's own threads and stubs, and a task
                # count that trips it kills the whole sandbox without a word. So the
                # sandbox kernel enforces the learner's limit (RLIMIT_NPROC, its tasks
                # per uid: fork fails with EAGAIN as under runc), and the host's limit,
                # with room for the sandbox kernel, stays as the backstop.
                ulimits.append(docker.types.Ulimit(name="nproc", soft=pids, hard=pids))
                extra["pids_limit"] = pids * RUNSC_PIDS_FACTOR + RUNSC_PIDS_OVERHEAD
        base: dict[str, Any] = dict(
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", f"seccomp={profile}"],
            ipc_mode="private",
            ulimits=ulimits,
        )
        base.update(extra)
        return self.api.create_host_config(**base)

    def _oom_event(self, cid: str, *, since: float) -> bool:
        """Whether the engine logged an "oom" event for the container. The engine
        sets State.OOMKilled only when the runtime's OOM event reaches it before the
        exit event; under gVisor it often comes a moment after, so a SIGKILL with no
        flag is looked up in the event log (waiting up to OOM_EVENT_WAIT_S for it)."""
        try:
            events = self.api.events(
                since=int(since) - 1,
                until=int(time.time() + OOM_EVENT_WAIT_S) + 1,
                filters={"container": cid, "event": "oom"},
                decode=True,
            )
            try:
                return any(True for _ in events)
            finally:
                events.close()
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False

    def _create(self, name: str, role: str, argv: list[str] | None, *, image: str | None = None, **kwargs: Any) -> str:
        full = f"shipwright-{self.run_id}-{name}"
        try:
            self.api.remove_container(full, force=True, v=True)  # a stale one from a crash
        except docker.errors.NotFound:
            pass
        container = self.api.create_container(
            image or self.image,
            command=argv,
            name=full,
            labels=self._labels(role),
            **kwargs,
        )
        cid = str(container["Id"])
        self._containers.append(cid)
        return cid

    def _create_and_start(
        self,
        name: str,
        role: str,
        argv: list[str] | None,
        *,
        before_start: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> str:
        """Creates and starts a container; one whose init died before its start (see
        START_ATTEMPTS) is removed and made again. `before_start(cid)` runs on each
        new container before it starts (put files in, attach to its output)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            cid = self._create(name, role, argv, **kwargs)
            if before_start is not None:
                before_start(cid)
            try:
                self.api.start(cid)
                return cid
            except docker.errors.APIError as exc:
                if attempt == START_ATTEMPTS or not any(m in str(exc) for m in _START_RACE_MARKERS):
                    raise
                logger.warning(
                    "sandbox %s: container %s died before it started (attempt %d of %d), recreating: %s",
                    self.run_id,
                    name,
                    attempt,
                    START_ATTEMPTS,
                    exc,
                )
                self._remove(cid)
        raise AssertionError("unreachable")

    def _start_holder(self, name: str, volume: str | None, target: str = "") -> str:
        """A `sleep` container that keeps `volume` mounted at `target` (or, without a
        volume, its network namespace alive for others to join)."""
        return self._create_and_start(
            name,
            "holder",
            ["sleep", "infinity"],
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            host_config=self._host_config(
                # The engine's init (docker-init, tini) as PID 1 forwards SIGTERM, so an
                # engine stop does not wait 10 s for each holder: `sleep` as PID 1
                # ignores TERM.
                init=True,
                mounts=[docker.types.Mount(target, volume, type="volume", no_copy=True)] if volume else [],
                mem_limit="32m",
                memswap_limit="32m",
                pids_limit=HOLDER_PIDS,
                log_config=docker.types.LogConfig(type="none"),
            ),
        )

    def _remove(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        if cid in self._containers:
            self._containers.remove(cid)

    # --- putting files in ------------------------------------------------------------

    def _setup(self, name: str, argv: list[str], payload: bytes, *, root: bool) -> tuple[int, str]:
        """Runs argv in a throwaway container with the payload tar extracted at /tmp."""

        def put_payload(cid: str) -> None:
            if not self.api.put_archive(cid, "/tmp", payload):
                raise SandboxUnavailable("engine refused the setup archive")

        cid = self._create_and_start(
            f"setup-{name}",
            "setup",
            argv,
            before_start=put_payload,
            user="0:0" if root else f"{SANDBOX_UID}:{SANDBOX_UID}",
            working_dir=WORKSPACE,
            host_config=self._host_config(
                runtime=self.runtime,
                # Writable root: put_archive goes to /tmp on the container's own layer.
                read_only=False,
                cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER"] if root else None,
                mounts=[docker.types.Mount(WORKSPACE, self.workspace_volume, type="volume", no_copy=True)],
                mem_limit="256m",
                memswap_limit="256m",
                pids_limit=SETUP_PIDS,
                log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m"}),
            ),
        )
        try:
            try:
                status = self.api.wait(cid, timeout=SETUP_TIMEOUT_S)
            except requests.exceptions.RequestException as exc:
                raise SandboxUnavailable(f"setup {name} did not finish: {exc}") from exc
            logs = self.api.logs(cid, stdout=True, stderr=True, tail=50)
            return int(status.get("StatusCode", -1)), logs.decode("utf-8", errors="replace")
        finally:
            self._remove(cid)

    def load_tar(self, tar_path: Path) -> None:
        """Extracts a .tar(.gz) snapshot into the workspace, as uid 1000."""
        data = Path(tar_path).read_bytes()
        payload = _tar_of({"shipwright-in/snapshot": data})
        try:
            code, logs = self._setup(
                "load",
                # Existing directories (the root-owned workspace root) keep their metadata.
                ["tar", "-xf", "/tmp/shipwright-in/snapshot", "-C", WORKSPACE, "--no-same-owner", "--no-overwrite-dir"],
                payload,
                root=False,
            )
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc
        if code != 0:
            # GNU tar reports a full disk as ENOSPC or as a short write.
            if "No space left on device" in logs or "Wrote only" in logs:
                raise SnapshotRejected(f"the submission does not fit in the {self.workspace_mb} MB workspace")
            raise SnapshotRejected(f"the submission archive could not be extracted: {logs.strip()[-500:]}")

    def add_readonly_files(self, files: dict[str, bytes]) -> None:
        """Places official files, replacing any copy; root-owned, mode 0444.

        Their parent directories become root-owned and sticky (1777): the learner can
        still add files beside them but cannot remove, rename or rewrite them.
        """
        if not files:
            return
        manifest = [[i, str(_relative(rel))] for i, rel in enumerate(files)]
        payload_files = {f"shipwright-in/{i}": data for i, data in enumerate(files.values())}
        payload_files["shipwright-in/manifest.json"] = json.dumps(manifest).encode()
        try:
            code, logs = self._setup(
                "official", ["python3", "-I", "-c", _READONLY_SCRIPT], _tar_of(payload_files), root=True
            )
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc
        if code != 0:
            if "No space left on device" in logs:
                raise SnapshotRejected(f"the official files do not fit in the {self.workspace_mb} MB workspace")
            raise SandboxUnavailable(f"placing official files failed: {logs.strip()[-500:]}")

    # --- running stages --------------------------------------------------------------

    def run(
        self,
        *,
        name: str,
        argv: list[str],
        limits: Limits,
        assets_dir: Path | None = None,
        grader_out: bool = False,
        env: dict[str, str] | None = None,
        as_grader: bool = False,
    ) -> StageResult:
        """`as_grader`: argv is a platform probe that starts learner code itself as
        SANDBOX_UID; it runs as root with GRADER_CAPABILITIES only (see the module
        docstring) and needs `grader_out`."""
        if as_grader and not grader_out:
            raise ValueError("as_grader needs grader_out")
        if not _NAME_RE.match(name):
            raise ValueError(f"stage name must match {_NAME_RE.pattern}: {name!r}")
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        try:
            self._ensure_holder(self._holder, "workspace")
            result = self._run(name, argv, limits, assets_dir, grader_out, env or {}, as_grader)
            # A holder that stopped while the stage ran took the shared files with it:
            # what the stage wrote went to a private, now discarded, tmpfs.
            self._ensure_holder(self._holder, "workspace")
            if grader_out:
                self._ensure_holder(self._grader_out_holder, "grader output")
            return result
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def _ensure_holder(self, cid: str | None, what: str) -> None:
        """A tmpfs volume stays shared between containers only while its holder keeps
        it mounted: once the holder stops, the next container to mount it gets a fresh,
        empty tmpfs and the archive API reads one too. Files then vanish without any
        error; that is the platform's failure (SandboxUnavailable), never a verdict."""
        if cid is None:
            return
        state = self.api.inspect_container(cid)["State"]
        if not state.get("Running"):
            oom = ", out of memory" if state.get("OOMKilled") else ""
            raise SandboxUnavailable(
                f"the {what} holder of run {self.run_id} stopped (exit {state.get('ExitCode')}{oom}): its files are lost"
            )

    def _run(
        self,
        name: str,
        argv: list[str],
        limits: Limits,
        assets_dir: Path | None,
        grader_out: bool,
        env: dict[str, str],
        as_grader: bool = False,
        network_of: str | None = None,
    ) -> StageResult:
        mounts = [docker.types.Mount(WORKSPACE, self.workspace_volume, type="volume", no_copy=True)]
        if assets_dir is not None:
            assets = Path(assets_dir).resolve()
            _check_world_readable(assets)
            mounts.append(docker.types.Mount(GRADER_DIR, str(assets), type="bind", read_only=True))
        if grader_out:
            volume = self._fresh_grader_out(mode="0755" if as_grader else "1777")
            mounts.append(docker.types.Mount(GRADER_OUT, volume, type="volume", no_copy=True))
        environment = {**env, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        memory = f"{limits.memory_mb}m"
        attached: dict[str, _OutputCollector] = {}

        def attach(cid: str) -> None:
            # Attach before start so no output is lost.
            stream = self.api.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
            attached["collector"] = _OutputCollector(stream, limits.output_kb * 1024)
            attached["collector"].start()

        cid = self._create_and_start(
            f"stage-{name}",
            "stage",
            argv,
            before_start=attach,
            user="0:0" if as_grader else f"{SANDBOX_UID}:{SANDBOX_UID}",
            working_dir=WORKSPACE,
            environment=environment,
            host_config=self._host_config(
                runtime=self.runtime,
                cap_add=GRADER_CAPABILITIES if as_grader else None,
                fsize_mb=max(self.workspace_mb, limits.tmp_mb),
                mounts=mounts,
                mem_limit=memory,
                memswap_limit=memory,  # no swap: memory + swap = memory
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                tmpfs={"/tmp": f"size={limits.tmp_mb}m,mode=1777"},
                # Nothing the learner prints is written to the host's disk.
                log_config=docker.types.LogConfig(type="none"),
                **({"network_mode": f"container:{network_of}"} if network_of else {}),
            ),
        )
        started = time.monotonic()
        started_at = time.time()
        try:
            collector = attached["collector"]
            sampler = _StatsSampler(self.api, cid)
            sampler.start()
            timed_out = False
            try:
                status = self.api.wait(cid, timeout=limits.time_s)
                exit_code: int | None = int(status["StatusCode"])
            except requests.exceptions.RequestException as exc:
                # The read timeout is the wall-clock limit. Its type cannot tell it from
                # a connection the engine (or anything in between) dropped: requests
                # raises a read timeout in the body as ConnectionError. The clock can:
                # the wait began after `started`, so a wait that broke before the limit
                # is the platform's failure, never the learner's timeout (once the
                # engine answered again at once, the stage was killed as "timed out").
                if time.monotonic() - started < limits.time_s:
                    raise SandboxUnavailable(f"the engine connection broke while stage {name} ran: {exc}") from exc
                # If the engine went away, inspect raises: the platform's failure too.
                state = self.api.inspect_container(cid)["State"]
                if state.get("Running"):
                    self.api.kill(cid)
                    timed_out, exit_code = True, None
                else:  # it finished in the same instant
                    exit_code = int(state.get("ExitCode", -1))
            duration = time.monotonic() - started
            sampler.finished.set()
            collector.join(timeout=5)
            oom = bool(self.api.inspect_container(cid)["State"].get("OOMKilled"))
            if not oom and not timed_out and exit_code == SIGKILL_EXIT:
                oom = self._oom_event(cid, since=started_at)
            output, cut = collector.text()
            sampler.join(timeout=0.05)
            return StageResult(
                exit_code=exit_code,
                output=output,
                output_truncated_bytes=cut,
                timed_out=timed_out,
                oom_killed=oom,
                duration_s=round(duration, 3),
                cpu_s=sampler.cpu_s,
                peak_memory_mb=round(sampler.peak_mb, 1) if sampler.peak_mb else None,
                pids_limit_hit=collector.pids_marker,
            )
        finally:
            self._remove(cid)

    def _fresh_grader_out(self, mode: str = "1777") -> str:
        """A new, empty, size-capped /grader-out, held mounted until the next one
        (root's; `mode` 1777 lets a uid-1000 grader script write it, 0755 only root)."""
        if self._grader_out_holder:
            self._remove(self._grader_out_holder)
        if self._grader_out_volume:
            self.api.remove_volume(self._grader_out_volume, force=True)
            self._volumes.remove(self._grader_out_volume)
        self._grader_out_count += 1
        n = self._grader_out_count
        volume = f"shipwright-{self.run_id}-grader-out-{n}"
        self._create_volume(volume, GRADER_OUT_MB, mode=mode)
        self._grader_out_volume = volume
        self._grader_out_holder = self._start_holder(f"grader-out-holder-{n}", volume, GRADER_OUT)
        return volume

    # --- building and running the learner's image ----------------------------------------

    def build_image(
        self,
        *,
        name: str,
        context: bytes,
        dockerfile: str,
        limits: Limits,
        index_image: str,
        index_port: int,
    ) -> BuildResult:
        """Builds a Dockerfile with the engine's classic builder, as untrusted work.

        `context` is an uncompressed tar holding `dockerfile`. The build's RUN steps
        join the network namespace of a "build box" (`index_image`, --network none,
        serving the package index on its loopback): they reach that index and nothing
        else. Their cgroups nest under the box's, so its memory, CPU and pids limits
        bound every step together; each step also gets the memory and CPU limits, no
        core dumps, nofile and a per-file size limit. The wall clock cancels the build
        (the engine kills the running step when the client goes away). Output is capped
        like a stage's. The image is tagged for this run and labelled with it: it is
        removed with the run (the layers below stay as the content-addressed build
        cache, see prune_build_cache). Never raises for the learner's failures."""
        if not _NAME_RE.match(name):
            raise ValueError(f"stage name must match {_NAME_RE.pattern}: {name!r}")
        try:
            info = self._docker.info() if self._docker else {}
            if info.get("CgroupDriver") != "cgroupfs" or str(info.get("CgroupVersion", "1")) != "1":
                raise SandboxUnavailable(
                    "image builds need the engine's cgroupfs driver on cgroup v1 (their steps nest "
                    f"under the build box's cgroup); this engine has {info.get('CgroupDriver')} on "
                    f"v{info.get('CgroupVersion')} (docs/grading.md)"
                )
            memory = f"{limits.memory_mb}m"
            box = self._create_and_start(
                f"build-box-{name}",
                "build-box",
                None,
                image=index_image,
                host_config=self._host_config(
                    init=True,
                    mem_limit=memory,
                    memswap_limit=memory,
                    nano_cpus=int(limits.cpus * 1e9),
                    pids_limit=limits.pids,
                    tmpfs={"/tmp": "size=8m"},
                    log_config=docker.types.LogConfig(type="none"),
                ),
            )
            self._wait_for_index(box, index_port)
            return self._build(name, box, context, dockerfile, limits)
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def _wait_for_index(self, box: str, port: int) -> None:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()"
        deadline = time.monotonic() + 10
        while True:
            run = self.api.exec_create(box, ["python3", "-I", "-c", probe], user="65534:65534")
            self.api.exec_start(run["Id"])
            if self.api.exec_inspect(run["Id"]).get("ExitCode") == 0:
                return
            if time.monotonic() > deadline:
                raise SandboxUnavailable("the build's package index did not start")
            time.sleep(0.1)

    def _build(self, name: str, box: str, context: bytes, dockerfile: str, limits: Limits) -> BuildResult:
        tag = f"shipwright-build-{self.run_id.lower()}:{name.lower()}"
        fsize = (self.workspace_mb + 1) * 1024 * 1024
        params = {
            "t": tag,
            "dockerfile": dockerfile,
            "rm": "1",
            "forcerm": "1",
            "pull": "0",
            "q": "0",
            "networkmode": f"container:{box}",
            "cgroupparent": f"/docker/{box}",
            "memory": str(limits.memory_mb * 2**20),
            "memswap": str(limits.memory_mb * 2**20),
            "cpuperiod": "100000",
            "cpuquota": str(int(limits.cpus * 100000)),
            "ulimits": json.dumps(
                [
                    {"Name": "core", "Soft": 0, "Hard": 0},
                    {"Name": "nofile", "Soft": NOFILE_LIMIT, "Hard": NOFILE_LIMIT},
                    {"Name": "fsize", "Soft": fsize, "Hard": fsize},
                ]
            ),
            "labels": json.dumps(self._labels("image")),
        }
        collector = _OutputCollector(iter(()), limits.output_kb * 1024)
        error = ""
        image_id = None
        timed_out = False
        started = time.monotonic()
        response = self.api._post(
            self.api._url("/build"),
            params=params,
            data=context,
            headers={"Content-Type": "application/x-tar"},
            stream=True,
            timeout=(API_TIMEOUT_S, limits.time_s + 5),
        )
        self.api._raise_for_status(response)
        # The wall clock: closing the connection cancels the build, and the engine
        # kills the step that is running.
        timer = threading.Timer(limits.time_s, response.close)
        timer.start()
        try:
            for message in self.api._stream_helper(response, decode=True):
                if "stream" in message:
                    collector._add(str(message["stream"]).encode())
                if "error" in message:
                    error = str((message.get("errorDetail") or {}).get("message") or message["error"])
                    collector._add(f"{error}\n".encode())
                aux = message.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            # Closing the response under a reader raises one of these, depending on where
            # the read was; before the limit, it was the engine's connection.
            if time.monotonic() - started < limits.time_s:
                raise SandboxUnavailable(f"the engine connection broke while stage {name} built: {exc}") from exc
            timed_out = True
        finally:
            timer.cancel()
            response.close()
        duration = time.monotonic() - started
        if not timed_out and time.monotonic() - started >= limits.time_s and image_id is None:
            timed_out = True
        output, cut = collector.text()
        # A step killed for memory: its own cgroup's OOM shows only as exit 137 in the
        # error; the box's flag says so when the steps together hit the box's limit.
        oom = bool(self.api.inspect_container(box)["State"].get("OOMKilled"))
        self._remove(box)
        if image_id and not error and not timed_out:
            return BuildResult(tag, image_id, output, cut, "", False, round(duration, 3), oom)
        return BuildResult(None, None, output, cut, error, timed_out, round(duration, 3), oom)

    def inspect_image(self, image: str) -> dict[str, Any]:
        try:
            return dict(self.api.inspect_image(image))
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def image_history(self, image: str) -> list[dict[str, Any]]:
        try:
            return list(self.api.history(image))
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def save_image(self, image: str) -> Any:
        """The `docker save` stream of an image (chunks of bytes)."""
        try:
            return self.api.get_image(image, chunk_size=1 << 20)
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def run_image_service(
        self,
        *,
        name: str,
        image: str,
        probe_argv: list[str],
        limits: Limits,
        assets_dir: Path | None,
        env: dict[str, str] | None = None,
        capture: Sequence[str] = (),
        max_capture_bytes: int = 1_000_000,
        health_wait_s: float = 10.0,
    ) -> tuple[StageResult, dict[str, Any]]:
        """Runs the learner's built image as `docker run` would (its USER, WORKDIR,
        ENV plus `env`, ENTRYPOINT and CMD) under the sandbox's limits (no network,
        read-only root with a size-capped /tmp, no capabilities, no-new-privileges,
        seccomp, memory, CPU, pids), and `probe_argv` beside it in the lab image, as
        uid 1000, sharing only a network namespace with it: the probe talks to the
        server over loopback, and nothing in the learner's image can touch the
        probe or /grader-out. A declared HEALTHCHECK is kept with a 1 s interval. If
        the server's container exits while the probe runs, the probe is told at once
        (SIGUSR1, see service_probe.py) instead of waiting out its ready timeout.

        `capture`: absolute paths under /tmp, read by the host from the container's
        /tmp once the server is gone (a regular file of at most `max_capture_bytes`,
        no symbolic link followed), into `seen["captured"]` (path -> bytes, or None when
        absent or not a regular file) and `seen["capture_errors"]` (path -> {"size", "limit"}
        of a file too large to read).

        Returns the probe's result and what the host saw of the learner's container:
        the uids of its processes (`docker top`), its state, health and output."""
        tmp_paths = [PurePosixPath(path).relative_to("/tmp") for path in capture]
        try:
            config = self.api.inspect_image(image).get("Config") or {}
            health = config.get("Healthcheck")
            kwargs: dict[str, Any] = {}
            if health and (health.get("Test") or ["NONE"])[0] != "NONE":
                kwargs["healthcheck"] = {
                    "test": health["Test"],
                    "interval": 1_000_000_000,
                    "timeout": min(int(health.get("Timeout") or 5e9), 5_000_000_000),
                    "retries": int(health.get("Retries") or 3),
                    "start_period": 0,
                }
            attached: dict[str, _OutputCollector] = {}

            def attach(cid: str) -> None:
                stream = self.api.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
                attached["collector"] = _OutputCollector(stream, limits.output_kb * 1024)
                attached["collector"].start()

            tmp: dict[str, Any] = {"tmpfs": {"/tmp": f"size={limits.tmp_mb}m,mode=1777"}}
            tmp_holder = tmp_volume = None
            if tmp_paths:
                # The archive API reads a container's root filesystem and its volumes,
                # never a tmpfs mount: /tmp is then a tmpfs volume of the same size, kept
                # mounted by a holder, so the host reads it after the server is gone.
                # Fresh and empty (no_copy): a file the image brought is no log.
                tmp_volume = f"shipwright-{self.run_id}-tmp-{name}"
                self._create_volume(tmp_volume, limits.tmp_mb)
                tmp_holder = self._start_holder(f"tmp-holder-{name}", tmp_volume, "/tmp")
                tmp = {"mounts": [docker.types.Mount("/tmp", tmp_volume, type="volume", no_copy=True)]}
            # The server and the probe join the network namespace of a holder, not
            # one another's: a probe cannot join a container that has already exited,
            # and a server that dies at once must be a result, not an engine error.
            net = self._start_holder(f"net-holder-{name}", None)
            memory = f"{limits.memory_mb}m"
            server = self._create_and_start(
                f"image-{name}",
                "image",
                None,
                image=image,
                before_start=attach,
                environment=dict(env or {}),
                host_config=self._host_config(
                    runtime=self.runtime,
                    fsize_mb=limits.tmp_mb,
                    mem_limit=memory,
                    memswap_limit=memory,
                    nano_cpus=int(limits.cpus * 1e9),
                    pids_limit=limits.pids,
                    log_config=docker.types.LogConfig(type="none"),
                    network_mode=f"container:{net}",
                    **tmp,
                ),
                **kwargs,
            )
            probe_done = threading.Event()
            watcher = threading.Thread(
                target=self._tell_probe_on_exit,
                args=(server, f"shipwright-{self.run_id}-stage-{name}", probe_done, limits.time_s),
                daemon=True,
            )
            watcher.start()
            try:
                result = self._run(name, probe_argv, limits, assets_dir, True, {}, False, network_of=net)
            finally:
                probe_done.set()
            seen: dict[str, Any] = {"image_user": config.get("User") or ""}
            state = self.api.inspect_container(server)["State"]
            if state.get("Running"):
                seen["uids"] = self._process_uids(server)
            deadline = time.monotonic() + health_wait_s
            # Until healthy or the deadline: a check that failed while the server was
            # still starting marks it unhealthy until the next check passes.
            while kwargs and (state.get("Health") or {}).get("Status") != "healthy" and time.monotonic() < deadline:
                time.sleep(0.5)
                state = self.api.inspect_container(server)["State"]
            seen.update(
                running=bool(state.get("Running")),
                exit_code=None if state.get("Running") else state.get("ExitCode"),
                oom_killed=bool(state.get("OOMKilled")),
            )
            if kwargs:
                log = (state.get("Health") or {}).get("Log") or []
                seen["health"] = {
                    "status": (state.get("Health") or {}).get("Status"),
                    "test": kwargs["healthcheck"]["test"],
                    "last": [
                        {"exit_code": entry.get("ExitCode"), "output": str(entry.get("Output") or "")[-500:]}
                        for entry in log[-3:]
                    ],
                }
            self._remove(server)
            self._remove(net)
            watcher.join(timeout=5)
            collector = attached["collector"]
            collector.join(timeout=5)
            seen["output"] = collector.text()[0][-4000:]
            if tmp_holder is not None and tmp_volume is not None:
                seen["captured"], seen["capture_errors"] = {}, {}
                for path, rel in zip(capture, tmp_paths, strict=True):
                    try:
                        seen["captured"][path] = self._read(tmp_holder, "/tmp", rel, max_capture_bytes, "/tmp")
                    except FileTooLarge as exc:
                        seen["captured"][path] = None
                        seen["capture_errors"][path] = {"size": exc.size, "limit": exc.max_bytes}
                self._remove(tmp_holder)
                try:
                    self.api.remove_volume(tmp_volume, force=True)
                    self._volumes.remove(tmp_volume)
                except docker.errors.APIError:
                    pass  # "in use" right after a removal: the run's end removes it
            return result, seen
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc

    def _tell_probe_on_exit(self, server: str, probe: str, probe_done: threading.Event, time_s: float) -> None:
        """Sends SIGUSR1 to the probe's container, every half second until the probe
        is done, once the server's container has exited: the probe (PID 1 of its
        container, so deaf to the signal until its handler is installed) then stops
        waiting for an answer that cannot come."""
        try:
            self.api.wait(server, timeout=time_s + 30)
        except _ENGINE_ERRORS:
            return  # removed, or the engine is gone: the probe ends on its own clock
        while not probe_done.wait(0.5):
            try:
                self.api.kill(probe, signal="SIGUSR1")
            except _ENGINE_ERRORS:
                pass  # not started yet, or already finished

    def _process_uids(self, cid: str) -> list[int]:
        """The uids of every process of a container, from the host (`docker top`)."""
        top = self.api.top(cid, ps_args="-o pid,uid")
        titles = [t.upper() for t in top.get("Titles") or []]
        column = titles.index("UID") if "UID" in titles else 0
        uids = []
        for row in top.get("Processes") or []:
            try:
                uids.append(int(row[column]))
            except (ValueError, IndexError):
                pass
        return sorted(set(uids))

    # --- getting files out -------------------------------------------------------------

    def read_file(self, path: str, *, max_bytes: int) -> bytes | None:
        """A regular file of the workspace, or None if missing or not a regular file.

        No symbolic link is followed, at any depth. Raises FileTooLarge past max_bytes.
        """
        assert self._holder is not None, "use Sandbox as a context manager"
        return self._read(self._holder, WORKSPACE, _relative(path), max_bytes, "workspace")

    def read_grader_out(self, name: str = "observations.json", *, max_bytes: int = 5_000_000) -> bytes | None:
        """A regular file from the last grader stage's /grader-out (None if absent)."""
        if self._grader_out_holder is None:
            return None
        return self._read(self._grader_out_holder, GRADER_OUT, _relative(name), max_bytes, "grader output")

    def _stat(self, cid: str, path: str) -> dict[str, Any] | None:
        api = self.api
        response = api.head(api._url("/containers/{0}/archive", cid), params={"path": path})
        if response.status_code == 404:
            return None
        api._raise_for_status(response)
        header = response.headers.get("X-Docker-Container-Path-Stat")
        if not header:
            raise SandboxUnavailable("engine sent no path stat")
        return dict(json.loads(base64.b64decode(header)))

    def _read(self, cid: str, root: str, rel: PurePosixPath, max_bytes: int, what: str) -> bytes | None:
        try:
            self._ensure_holder(cid, what)
            prefix = root
            for part in rel.parts[:-1]:
                prefix = f"{prefix}/{part}"
                st = self._stat(cid, prefix)
                if st is None or not (st["mode"] & _GO_MODE_DIR) or st.get("linkTarget"):
                    return None
            full = f"{root}/{rel}"
            st = self._stat(cid, full)
            if st is None or (st["mode"] & _GO_MODE_TYPE) or st.get("linkTarget"):
                return None
            if st["size"] > max_bytes:
                raise FileTooLarge(str(rel), int(st["size"]), max_bytes)
            stream, _ = self.api.get_archive(cid, full)
            raw = bytearray()
            for chunk in stream:
                raw += chunk
                if len(raw) > max_bytes + 1_048_576:  # headers and padding aside
                    raise FileTooLarge(str(rel), len(raw), max_bytes)
        except (FileTooLarge, SandboxUnavailable):
            raise
        except _ENGINE_ERRORS as exc:
            raise _unavailable(exc) from exc
        with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode="r:") as tar:
            member = tar.next()
            if member is None or not member.isreg():
                return None
            if member.size > max_bytes:
                raise FileTooLarge(str(rel), member.size, max_bytes)
            f = tar.extractfile(member)
            return f.read() if f is not None else None
