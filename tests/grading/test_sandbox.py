"""The sandbox against the real Docker engine and the real lab image (no mocks).

Needs the engine (docker/engine.sh) and the image (docker/build-images.sh); without
them every test fails with a message saying so, rather than skipping.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from grading.sandbox import (
    LABEL_CREATED,
    LABEL_RUN,
    FileTooLarge,
    Limits,
    Sandbox,
    SandboxUnavailable,
    SnapshotRejected,
    engine_available,
    image_digest,
    reap_leftovers,
)

pytestmark = pytest.mark.docker

IMAGE = "shipwright-lab:py311"
SMALL = Limits(time_s=20, memory_mb=256, cpus=1.0, pids=64, workspace_mb=16, tmp_mb=16, output_kb=64)


@pytest.fixture(scope="module", autouse=True)
def engine() -> docker.DockerClient:
    if not engine_available():
        pytest.fail("Docker engine not reachable: start it with `bash docker/engine.sh`", pytrace=False)
    try:
        image_digest(IMAGE)
    except SandboxUnavailable:
        pytest.fail(f"{IMAGE} missing: build it with `bash docker/build-images.sh`", pytrace=False)
    return docker.from_env()


def _run_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


# Every test that takes `sandbox` runs under both runtimes the engine offers: runc
# (the default) and runsc (gVisor, registered by docker/engine.sh). Where gVisor's
# kernel words a refusal differently, the test says so next to the assertion.
RUNTIMES = ["runc", "runsc"]


@pytest.fixture(params=RUNTIMES)
def sandbox(request) -> Iterator[Sandbox]:
    with Sandbox(run_id=_run_id(), image=IMAGE, workspace_mb=SMALL.workspace_mb, runtime=request.param) as sb:
        yield sb


def _py(code: str) -> list[str]:
    return ["python", "-c", code]


def _targz(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "snapshot.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _run_objects(client: docker.DockerClient, run_id: str) -> tuple[list, list]:
    label = f"{LABEL_RUN}={run_id}"
    return (
        client.containers.list(all=True, filters={"label": label}),
        client.volumes.list(filters={"label": label}),
    )


def test_a_stage_reports_its_exit_code_and_merged_output(sandbox: Sandbox) -> None:
    result = sandbox.run(
        name="hello",
        argv=_py("import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"),
        limits=SMALL,
    )
    assert result.exit_code == 3
    assert "to stdout" in result.output and "to stderr" in result.output
    assert not result.timed_out and not result.oom_killed and result.output_truncated_bytes == 0
    assert 0 < result.duration_s < SMALL.time_s


def test_a_stage_runs_as_the_learner_in_the_workspace_with_a_private_home(sandbox: Sandbox) -> None:
    result = sandbox.run(
        name="whoami", argv=_py("import os; print(os.getuid(), os.getcwd(), os.environ['HOME'])"), limits=SMALL
    )
    assert result.output.split() == ["1000", "/workspace", "/tmp"]


def test_a_stage_that_never_ends_is_killed_at_its_time_limit(sandbox: Sandbox) -> None:
    result = sandbox.run(name="spin", argv=_py("while True: pass"), limits=Limits(time_s=2, memory_mb=128))
    assert result.timed_out
    assert result.exit_code is None
    assert 2 <= result.duration_s < 6


def test_a_memory_hog_is_killed_and_reported_as_oom(sandbox: Sandbox) -> None:
    hog = "chunks = []\nwhile True: chunks.append(bytearray(16 * 2**20))"
    result = sandbox.run(name="hog", argv=_py(hog), limits=Limits(time_s=20, memory_mb=64))
    assert result.oom_killed
    assert result.exit_code == 137
    assert not result.timed_out


def test_exit_137_without_the_oom_killer_is_not_reported_as_out_of_memory(sandbox: Sandbox) -> None:
    """Exit 137 without the engine's OOM flag is looked up in the engine's event log
    (gVisor's OOM event can reach the engine after the exit): a stage that exits 137
    on its own is not reported as out of memory."""
    result = sandbox.run(name="fake-kill", argv=_py("raise SystemExit(137)"), limits=SMALL)
    assert result.exit_code == 137
    assert not result.oom_killed
    assert not result.timed_out


def test_a_fork_bomb_is_contained_by_the_pids_limit(sandbox: Sandbox) -> None:
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('forks', n, e)\n"
    )
    result = sandbox.run(name="bomb", argv=_py(bomb), limits=Limits(time_s=20, memory_mb=256, pids=24))
    assert result.exit_code == 0, result.output
    forks = int(result.output.split()[1])
    assert forks < 24
    assert result.pids_limit_hit
    # The sleeping children died with the stage; the next one starts normally.
    assert sandbox.run(name="after", argv=["true"], limits=SMALL).exit_code == 0


def test_the_network_has_only_loopback_and_nothing_outside_is_reachable(sandbox: Sandbox) -> None:
    # connect() fails locally with ENETUNREACH: with no interface but lo there is no
    # route, so no packet ever leaves.
    code = (
        "import os, socket\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
        "s = socket.socket(); s.settimeout(2)\n"
        "try:\n"
        "    s.connect(('1.1.1.1', 53)); print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print('refused:', e.strerror)\n"
    )
    result = sandbox.run(name="net", argv=_py(code), limits=SMALL)
    # Under gVisor too: it uses the namespace the engine made (--network=host), and
    # that namespace has only lo.
    assert result.output.splitlines() == ["['lo']", "refused: Network is unreachable"]
    assert result.duration_s < 5


def test_loopback_works_inside_a_stage(sandbox: Sandbox) -> None:
    code = (
        "import socket\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()\n"
        "c.sendall(b'ping'); print(a.recv(4).decode())\n"
    )
    assert sandbox.run(name="lo", argv=_py(code), limits=SMALL).output.strip() == "ping"


def test_the_root_filesystem_is_read_only(sandbox: Sandbox) -> None:
    code = (
        "for path in ('/etc/evil', '/usr/lib/evil', '/opt/venv/evil'):\n"
        "    try:\n"
        "        open(path, 'w'); print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print(e.strerror)\n"
    )
    result = sandbox.run(name="rofs", argv=_py(code), limits=SMALL)
    # gVisor refuses the same write to its read-only root with EACCES.
    refusal = "Read-only file system" if sandbox.runtime is None else "Permission denied"
    assert result.output.splitlines() == [refusal] * 3


def test_writing_past_the_workspace_size_fails_with_enospc_and_spares_the_host_disk(sandbox: Sandbox) -> None:
    code = (
        "import errno\n"
        "written = 0\n"
        "try:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(200):\n"
        "            f.write(b'x' * 2**20); f.flush(); written += 2**20\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno], written // 2**20)\n"
    )
    free_before = shutil.disk_usage("/var/lib/docker").free
    result = sandbox.run(name="fill", argv=_py(code), limits=SMALL)
    free_after = shutil.disk_usage("/var/lib/docker").free
    error, megabytes = result.output.split()
    assert error == "ENOSPC"
    assert int(megabytes) <= SMALL.workspace_mb
    # 200 MB were attempted; the workspace is tmpfs, so the disk did not take them.
    assert free_before - free_after < 100 * 2**20


def test_huge_output_keeps_head_and_tail_and_counts_what_was_cut(sandbox: Sandbox) -> None:
    code = "import sys\nprint('FIRST-LINE')\nsys.stdout.write('x' * 3_000_000)\nprint()\nprint('LAST-LINE')\n"
    limits = Limits(time_s=20, memory_mb=256, output_kb=4)
    result = sandbox.run(name="loud", argv=_py(code), limits=limits)
    assert result.exit_code == 0
    assert result.output.startswith("FIRST-LINE")
    assert result.output.rstrip().endswith("LAST-LINE")
    printed = len("FIRST-LINE\n") + 3_000_000 + len("\nLAST-LINE\n")
    if sandbox.runtime is None:
        assert result.output_truncated_bytes == printed - 4096
    else:
        # This gVisor (Debian's runsc 20221219) passes on one pipe's worth (64 KiB) of a
        # single huge write() and drops the rest: head and tail survive, the count of
        # what was cut is then a lower bound (bench/README.md, "gVisor").
        assert 0 < result.output_truncated_bytes <= printed - 4096
    assert f"[... {result.output_truncated_bytes} bytes of output cut ...]" in result.output
    assert len(result.output) < 4096 + 100


def test_invalid_utf8_and_nul_bytes_in_output_become_valid_text(sandbox: Sandbox) -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok\\xff\\xfe\\x00end')"
    result = sandbox.run(name="bytes", argv=_py(code), limits=SMALL)
    assert result.output == "ok\ufffd\ufffd\ufffdend"


def test_read_file_does_not_follow_symlinks(sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "os.symlink('/etc/passwd', 'model.pkl')\n"
        "os.symlink('/etc', 'etc')\n"
        "os.makedirs('real'); open('real/metrics.json', 'w').write('{}')\n"
        "os.symlink('real', 'alias')\n"
    )
    assert sandbox.run(name="links", argv=_py(code), limits=SMALL).exit_code == 0
    assert sandbox.read_file("model.pkl", max_bytes=10_000) is None
    assert sandbox.read_file("etc/passwd", max_bytes=10_000) is None
    assert sandbox.read_file("alias/metrics.json", max_bytes=10_000) is None
    assert sandbox.read_file("real", max_bytes=10_000) is None
    assert sandbox.read_file("missing.txt", max_bytes=10_000) is None
    assert sandbox.read_file("real/metrics.json", max_bytes=10_000) == b"{}"


def test_read_file_refuses_a_file_larger_than_max_bytes(sandbox: Sandbox) -> None:
    sandbox.run(name="big", argv=_py("open('big', 'wb').write(b'x' * 5000)"), limits=SMALL)
    assert sandbox.read_file("big", max_bytes=5000) == b"x" * 5000
    with pytest.raises(FileTooLarge):
        sandbox.read_file("big", max_bytes=4999)


def test_files_written_by_one_stage_are_seen_by_the_next(sandbox: Sandbox) -> None:
    first = sandbox.run(name="write", argv=_py("open('model.pkl', 'w').write('trained')"), limits=SMALL)
    second = sandbox.run(name="read", argv=["cat", "model.pkl"], limits=SMALL)
    assert first.exit_code == 0 and second.output == "trained"


def test_a_snapshot_is_loaded_into_the_workspace_owned_by_the_learner(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load_tar(_targz(tmp_path, {"train.py": b"print('trained')\n", "src/util.py": b"X = 1\n"}))
    result = sandbox.run(
        name="train",
        # Python's os.stat, not coreutils' stat: that runsc refuses statx(AT_NO_AUTOMOUNT).
        argv=_py(
            "import os, runpy\nrunpy.run_path('train.py')\nfor p in ('train.py', 'src/util.py'): print(os.stat(p).st_uid, p)"
        ),
        limits=SMALL,
    )
    assert result.output.splitlines() == ["trained", "1000 train.py", "1000 src/util.py"]


def test_a_snapshot_larger_than_the_workspace_is_rejected(sandbox: Sandbox, tmp_path: Path) -> None:
    big = _targz(tmp_path, {"weights.bin": b"\0" * (SMALL.workspace_mb + 4) * 2**20})
    with pytest.raises(SnapshotRejected, match="does not fit"):
        sandbox.load_tar(big)


def test_official_files_replace_the_learners_copy_and_cannot_be_changed(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load_tar(_targz(tmp_path, {"data/train.csv": b"learner's fake data\n", "data/notes.txt": b"mine\n"}))
    sandbox.add_readonly_files({"data/train.csv": b"official\n"})
    attack = (
        "import os, shutil\n"
        "def attempt(label, f):\n"
        "    try:\n"
        "        f(); print(label, 'DONE')\n"
        "    except OSError as e:\n"
        "        print(label, 'denied')\n"
        "attempt('write', lambda: open('data/train.csv', 'w').write('x'))\n"
        "attempt('delete', lambda: os.remove('data/train.csv'))\n"
        "attempt('rename', lambda: os.rename('data/train.csv', 'data/old.csv'))\n"
        "attempt('chmod', lambda: os.chmod('data/train.csv', 0o666))\n"
        "attempt('move-dir', lambda: os.rename('data', 'data2'))\n"
        "attempt('remove-dir', lambda: shutil.rmtree('data'))\n"
        "attempt('add-beside', lambda: open('data/extra.csv', 'w').write('ok'))\n"
    )
    result = sandbox.run(name="attack", argv=_py(attack), limits=SMALL)
    verdicts = dict(line.split() for line in result.output.splitlines())
    assert verdicts == {
        "write": "denied",
        "delete": "denied",
        "rename": "denied",
        "chmod": "denied",
        "move-dir": "denied",
        "remove-dir": "denied",  # removes the learner's own notes.txt, then stops at ours
        "add-beside": "DONE",
    }
    assert sandbox.read_file("data/train.csv", max_bytes=100) == b"official\n"


def test_official_files_replace_a_symlinked_directory_without_following_it(sandbox: Sandbox) -> None:
    sandbox.run(name="plant", argv=["ln", "-s", "/tmp", "data"], limits=SMALL)
    sandbox.add_readonly_files({"data/train.csv": b"official\n"})
    assert sandbox.read_file("data/train.csv", max_bytes=100) == b"official\n"


def test_background_processes_left_by_a_stage_are_gone_afterwards(sandbox: Sandbox) -> None:
    spawn = (
        "import subprocess\n"
        "subprocess.Popen(['sh', '-c', 'while true; do echo tick >> ticks; sleep 0.05; done'],\n"
        "                 start_new_session=True)\n"
        "import time; time.sleep(0.3)\n"
    )
    assert sandbox.run(name="spawn", argv=_py(spawn), limits=SMALL).exit_code == 0
    first = sandbox.read_file("ticks", max_bytes=100_000)
    time.sleep(0.5)
    assert first and sandbox.read_file("ticks", max_bytes=100_000) == first


def test_nothing_of_the_run_remains_after_the_context_exits(engine: docker.DockerClient, tmp_path: Path) -> None:
    run_id = _run_id()
    tmp_path.chmod(0o755)
    with Sandbox(run_id=run_id, image=IMAGE, workspace_mb=8) as sb:
        sb.run(name="x", argv=["true"], limits=SMALL, assets_dir=tmp_path, grader_out=True)
        containers, volumes = _run_objects(engine, run_id)
        assert containers and volumes  # the holders and their volumes, while running
    assert _run_objects(engine, run_id) == ([], [])


def test_nothing_of_the_run_remains_after_an_exception(engine: docker.DockerClient) -> None:
    run_id = _run_id()
    with pytest.raises(RuntimeError, match="grader crashed"):
        with Sandbox(run_id=run_id, image=IMAGE, workspace_mb=8) as sb:
            sb.run(name="x", argv=["sleep", "0.1"], limits=SMALL)
            raise RuntimeError("grader crashed")
    assert _run_objects(engine, run_id) == ([], [])


def test_assets_are_read_only_at_grader_and_grader_out_is_fresh_and_readable(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "holdout.csv").write_text("hidden\n")
    tmp_path.chmod(0o755)  # pytest makes it 0700; the sandbox user must read it
    code = (
        "import json, os\n"
        "data = open('/grader/holdout.csv').read().strip()\n"
        "try:\n"
        "    open('/grader/holdout.csv', 'w'); ro = False\n"
        "except OSError:\n"
        "    ro = True\n"
        "before = os.listdir('/grader-out')\n"
        "json.dump({'data': data, 'ro': ro, 'before': before}, open('/grader-out/observations.json', 'w'))\n"
    )
    first = sandbox.run(name="grade", argv=_py(code), limits=SMALL, assets_dir=tmp_path, grader_out=True)
    assert first.exit_code == 0, first.output
    assert sandbox.read_grader_out() == b'{"data": "hidden", "ro": true, "before": []}'
    second = sandbox.run(name="grade2", argv=_py(code), limits=SMALL, assets_dir=tmp_path, grader_out=True)
    assert second.exit_code == 0
    assert b'"before": []' in (sandbox.read_grader_out() or b"")
    assert (tmp_path / "holdout.csv").read_text() == "hidden\n"
    # A stage without assets does not see them.
    seen = sandbox.run(name="learner", argv=_py("import os; print(os.listdir('/grader'))"), limits=SMALL)
    assert seen.output.strip() == "[]"


def test_unreadable_assets_are_refused_before_anything_runs(sandbox: Sandbox, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ValueError, match="not readable by the sandbox user"):
        sandbox.run(name="grade", argv=["true"], limits=SMALL, assets_dir=tmp_path)


def test_an_unreachable_engine_raises_sandbox_unavailable(tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no-such.sock", version="1.41")
    assert not engine_available(client)
    with pytest.raises(SandboxUnavailable):
        with Sandbox(run_id=_run_id(), image=IMAGE, workspace_mb=8, client=client):
            pass
    with pytest.raises(SandboxUnavailable):
        image_digest(IMAGE, client=client)


def test_a_missing_image_raises_sandbox_unavailable() -> None:
    with pytest.raises(SandboxUnavailable, match="missing"):
        with Sandbox(run_id=_run_id(), image="shipwright-lab:no-such-tag", workspace_mb=8):
            pass
    with pytest.raises(SandboxUnavailable):
        image_digest("shipwright-lab:no-such-tag")


def test_image_digest_is_the_image_id(engine: docker.DockerClient) -> None:
    assert image_digest(IMAGE) == engine.images.get(IMAGE).id
    assert image_digest(IMAGE).startswith("sha256:")


def test_reap_leftovers_removes_an_orphan_but_not_a_live_run(engine: docker.DockerClient) -> None:
    orphan = _run_id()
    long_ago = str(int(time.time()) - 7200)
    labels = {LABEL_RUN: orphan, LABEL_CREATED: long_ago}
    engine.volumes.create(f"shipwright-{orphan}-workspace", labels=labels)
    engine.containers.create(IMAGE, ["sleep", "infinity"], name=f"shipwright-{orphan}-holder", labels=labels)
    with Sandbox(run_id=_run_id(), image=IMAGE, workspace_mb=8) as live:
        assert reap_leftovers(older_than_s=3600) >= 2
        assert _run_objects(engine, orphan) == ([], [])
        assert live.run(name="still-here", argv=["true"], limits=SMALL).exit_code == 0


def test_limits_reject_non_positive_values() -> None:
    with pytest.raises(ValueError):
        Limits(time_s=0)
    with pytest.raises(ValueError):
        Sandbox(run_id="bad id with spaces", image=IMAGE, workspace_mb=8)


class _DiesBeforeStart:
    """The engine's answer when a container's init process died between create and
    start (runc's init hit the container's pids limit under load): the first start of
    each container named here fails the way the engine fails."""

    def __init__(self, api, names: tuple[str, ...]) -> None:
        self.api, self.names, self.failed = api, names, []
        self._start = api.start
        api.start = self.start

    def start(self, cid, *args, **kwargs):
        name = self.api.inspect_container(cid)["Name"].lstrip("/")
        role = next((n for n in self.names if name.endswith(n)), None)
        if role is not None and role not in self.failed:
            self.failed.append(role)
            response = requests.Response()
            response.status_code = 500
            raise docker.errors.APIError(
                "500 Server Error", response=response, explanation="cannot start a stopped process: unknown"
            )
        return self._start(cid, *args, **kwargs)


def test_a_container_that_dies_before_its_start_is_recreated_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = docker.from_env()
    dying = _DiesBeforeStart(client.api, ("-holder", "-setup-load", "-grader-out-holder-1", "-stage-write"))
    run_id = _run_id()
    with Sandbox(run_id=run_id, image=IMAGE, workspace_mb=8, client=client) as sb:
        sb.load_tar(_targz(tmp_path, {"hello.txt": b"hi"}))
        result = sb.run(
            name="write",
            argv=_py("import shutil; print('copied'); shutil.copy('hello.txt', '/grader-out/observations.json')"),
            limits=SMALL,
            grader_out=True,
        )
        assert result.exit_code == 0 and result.output.strip() == "copied"
        assert sb.read_grader_out() == b"hi"
    assert sorted(dying.failed) == sorted(["-holder", "-setup-load", "-grader-out-holder-1", "-stage-write"])
    assert "died before it started" in caplog.text
    assert _run_objects(client, run_id) == ([], [])


def test_a_container_that_keeps_dying_before_its_start_is_the_platforms_error() -> None:
    client = docker.from_env()
    response = requests.Response()
    response.status_code = 500

    def always_dies(cid, *args, **kwargs):
        raise docker.errors.APIError("500", response=response, explanation="cannot start a stopped process: unknown")

    client.api.start = always_dies
    run_id = _run_id()
    with pytest.raises(SandboxUnavailable, match="cannot start a stopped process"):
        with Sandbox(run_id=run_id, image=IMAGE, workspace_mb=8, client=client):
            pass
    assert _run_objects(docker.from_env(), run_id) == ([], [])


def test_many_sandboxes_started_at_once_and_back_to_back_all_run(tmp_path: Path) -> None:
    """The container-start race of issue 8: runs in parallel, each with a holder, a
    set-up container, a grader-out holder and two stages, while two processes keep
    both cores busy. Every run must complete and see its own files."""
    from concurrent.futures import ThreadPoolExecutor

    snapshot = _targz(tmp_path, {"in.txt": b"payload"})

    def one(_: int) -> tuple[int | None, bytes | None, str]:
        with Sandbox(run_id=_run_id(), image=IMAGE, workspace_mb=8) as sb:
            sb.load_tar(snapshot)
            first = sb.run(
                name="obs",
                argv=_py("import shutil; shutil.copy('in.txt', '/grader-out/observations.json')"),
                limits=SMALL,
                grader_out=True,
            )
            observed = sb.read_grader_out()
            second = sb.run(name="cat", argv=["cat", "in.txt"], limits=SMALL)
            return first.exit_code, observed, second.output

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(one, range(24)))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert results == [(0, b"payload", "payload")] * 24


def test_a_stage_after_the_workspace_holder_stopped_is_the_platforms_error(
    sandbox: Sandbox, engine: docker.DockerClient
) -> None:
    sandbox.run(name="write", argv=_py("open('kept.txt', 'w').write('x')"), limits=SMALL)
    engine.containers.get(f"shipwright-{sandbox.run_id}-holder").kill()
    # Without its holder the volume would mount as a fresh, empty tmpfs: files gone.
    with pytest.raises(SandboxUnavailable, match="workspace holder .* stopped"):
        sandbox.run(name="read", argv=["cat", "kept.txt"], limits=SMALL)
    with pytest.raises(SandboxUnavailable, match="workspace holder .* stopped"):
        sandbox.read_file("kept.txt", max_bytes=100)


def test_a_grader_output_holder_that_stops_during_a_stage_is_the_platforms_error(
    sandbox: Sandbox, engine: docker.DockerClient
) -> None:
    kill_holder = "import json, time; open('/grader-out/observations.json', 'w').write('{}'); time.sleep(15)"
    holder = f"shipwright-{sandbox.run_id}-grader-out-holder-1"

    def stop_holder_soon() -> None:
        for _ in range(100):
            try:
                engine.containers.get(holder).kill()
                return
            except docker.errors.NotFound:
                time.sleep(0.1)

    import threading

    killer = threading.Thread(target=stop_holder_soon)
    killer.start()
    with pytest.raises(SandboxUnavailable, match="grader output holder .* stopped"):
        sandbox.run(name="probe", argv=_py(kill_holder), limits=SMALL, grader_out=True)
    killer.join()


# --- hardening: seccomp and resource limits (issue 9) ---------------------------------


def test_learner_code_cannot_ptrace_nor_make_namespaces(sandbox):
    """Docker's default profile allows ptrace on kernels since 4.8: a learner process
    could attach to a grader probe of the same uid and rewrite what it reports."""
    result = sandbox.run(
        name="escape",
        argv=_py(
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def tried(name, *args):\n"
            "    r = getattr(libc, name)(*args); print(name, r, ctypes.get_errno())\n"
            "tried('ptrace', 0, 0, 0, 0)\n"  # PTRACE_TRACEME
            "tried('ptrace', 16, os.getppid(), 0, 0)\n"  # PTRACE_ATTACH to the parent
            "tried('unshare', 0x10000000)\n"  # CLONE_NEWUSER
            "tried('process_vm_readv', os.getppid(), 0, 0, 0, 0, 0)\n"
        ),
        limits=SMALL,
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" ", 1) for line in result.output.strip().splitlines())
    assert lines["ptrace"] == "-1 1"  # EPERM, both calls
    assert result.output.count("ptrace -1 1") == 2
    assert lines["unshare"] == "-1 1"
    assert lines["process_vm_readv"] == "-1 1"


def test_threads_and_processes_still_start_under_the_profile(sandbox):
    result = sandbox.run(
        name="threads",
        argv=_py(
            "import threading, subprocess, multiprocessing\n"
            "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
            "print(subprocess.run(['python', '-c', 'print(\"child\")'], capture_output=True, text=True).stdout.strip())\n"
            "with multiprocessing.get_context('fork').Pool(2) as pool: print(sum(pool.map(abs, [-1, -2])))\n"
        ),
        limits=SMALL,
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["thread", "child", "3"]


def test_no_core_dumps_few_open_files_and_no_file_larger_than_the_workspace(sandbox):
    result = sandbox.run(
        name="limits",
        argv=_py(
            "import resource\n"
            "for name in ('RLIMIT_CORE', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE'):\n"
            "    print(name, *resource.getrlimit(getattr(resource, name)))\n"
        ),
        limits=SMALL,
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" ", 1) for line in result.output.strip().splitlines())
    assert lines["RLIMIT_CORE"] == "0 0"
    assert lines["RLIMIT_NOFILE"] == "4096 4096"
    # The workspace and /tmp are 16 MiB here: a file fills them first (ENOSPC, see above).
    assert lines["RLIMIT_FSIZE"] == f"{17 * 2**20} {17 * 2**20}"


def test_a_missing_seccomp_base_is_a_platform_error_not_an_unconfined_run(tmp_path):
    with pytest.raises(SandboxUnavailable, match="seccomp base profile"):
        with Sandbox(run_id=_run_id(), image=IMAGE, workspace_mb=16, seccomp_base=str(tmp_path / "missing.json")) as sb:
            sb.run(name="never", argv=["true"], limits=SMALL)
