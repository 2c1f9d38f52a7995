"""Intake: every source becomes one deterministic snapshot, or is rejected with one
clear line and nothing left behind. Git tests use a real git server on 127.0.0.1."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import stat
import struct
import tarfile
import zipfile
from pathlib import Path
from unittest.mock import ANY

import pytest

from grading import intake
from grading.intake import IntakeError, IntakeLimits
from tests.grading.gitserver import GitServer, git

LIMITS = IntakeLimits()
REPO_FILES = {"train.py": b"print('training')\n", "data/readme.md": b"# data\n", "run.sh": b"#!/bin/sh\n"}
MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------
# Builders of real archives


def make_zip(path: Path, entries: list[tuple]) -> Path:
    """entries: (name, data) for files, (name, data, unix_mode) for anything else."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, *mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 9))
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode:
                info.create_system = 3
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)
    return path


def member(name: str, data: bytes = b"", *, type: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = type, linkname, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 1_700_000_000, 1000, 1000, "ada", "staff"
    if type == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def make_tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def upload(path: Path, dest: Path, *, lab_kind: str = "repo", limits: IntakeLimits = LIMITS, name: str | None = None):
    with open(path, "rb") as f:
        return intake.snapshot_from_upload(f, name or path.name, lab_kind=lab_kind, dest_dir=dest, limits=limits)


def contents(snapshot: intake.Snapshot) -> dict[str, object]:
    """name -> bytes for files, ("link", target) for links, "dir" for directories."""
    out: dict[str, object] = {}
    with tarfile.open(snapshot.path, "r:gz") as tf:
        for m in tf.getmembers():
            if m.isdir():
                out[m.name] = "dir"
            elif m.issym():
                out[m.name] = ("link", m.linkname)
            else:
                out[m.name] = tf.extractfile(m).read()
    return out


def rejected(call, dest: Path) -> str:
    """The message of the IntakeError raised by call(), after checking nothing was left."""
    with pytest.raises(IntakeError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert not dest.exists() or list(dest.iterdir()) == [], "a rejection left files behind"
    return message


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


# ---------------------------------------------------------------------------------------
# Accepted archives


def test_zip_and_tar_gz_with_the_same_content_give_the_same_snapshot(tmp_path, dest):
    as_zip = make_zip(tmp_path / "repo.zip", [("data/", b"", stat.S_IFDIR | 0o775), *REPO_FILES.items()])
    as_tar = make_tar_gz(
        tmp_path / "repo.tar.gz",
        [member(name, data, mode=0o600) for name, data in REPO_FILES.items() if name != "run.sh"]
        + [member("run.sh", REPO_FILES["run.sh"], mode=0o600)],
    )
    from_zip = upload(as_zip, dest)
    from_tar = upload(as_tar, dest)

    assert from_zip.sha256 == from_tar.sha256
    assert from_zip.path == from_tar.path == dest / f"{from_zip.sha256}.tar.gz"
    assert sorted(p.name for p in dest.iterdir()) == [from_zip.path.name]
    assert (from_zip.file_count, from_zip.unpacked_bytes) == (3, sum(len(d) for d in REPO_FILES.values()))
    assert (from_zip.source_kind, from_zip.source_name, from_zip.commit) == ("archive", "repo.zip", None)
    assert contents(from_zip) == {"data": "dir", **REPO_FILES}


def test_snapshot_tarball_is_normalised(tmp_path, dest):
    archive = make_tar_gz(
        tmp_path / "repo.tgz",
        [
            member("b.py", b"b", mode=0o4750),
            member("a.py", b"a", mode=0o600),
            member("sub", type=tarfile.DIRTYPE, mode=0o700),
            member("sub/link", type=tarfile.SYMTYPE, linkname="../a.py"),
        ],
    )
    snapshot = upload(archive, dest)

    raw = snapshot.path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert raw[3] & 0x08 == 0  # no file name in the gzip header
    with tarfile.open(snapshot.path, "r:gz") as tf:
        members = tf.getmembers()
    assert [m.name for m in members] == ["a.py", "b.py", "sub", "sub/link"]
    assert [(m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members] == [
        (0o644, 0, 0, 0, "", ""),
        (0o755, 0, 0, 0, "", ""),
        (0o755, 0, 0, 0, "", ""),
        (0o777, 0, 0, 0, "", ""),
    ]
    assert members[3].linkname == "../a.py"
    assert snapshot.size == len(raw)
    assert oct(stat.S_IMODE(snapshot.path.stat().st_mode)) == oct(0o444)


def test_the_same_archive_twice_reuses_one_snapshot(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", list(REPO_FILES.items()))
    first, second = upload(archive, dest), upload(archive, dest)
    assert first == second
    assert list(dest.iterdir()) == [first.path]


def test_a_reused_snapshot_is_touched_so_retention_spares_it_while_its_row_is_written(tmp_path, dest):
    import os

    archive = make_zip(tmp_path / "repo.zip", list(REPO_FILES.items()))
    first = upload(archive, dest)
    os.utime(first.path, (1_000_000, 1_000_000))  # as if written long ago
    second = upload(archive, dest)
    assert second.path == first.path
    assert second.path.stat().st_mtime > 1_000_000


def test_a_single_top_folder_is_stripped(tmp_path, dest):
    archive = make_zip(
        tmp_path / "repo.zip",
        [(f"my-repo/{name}", data) for name, data in REPO_FILES.items()] + [("__MACOSX/my-repo/._train.py", b"junk")],
    )
    assert contents(upload(archive, dest)) == {"data": "dir", **REPO_FILES}


def test_a_top_folder_beside_a_file_is_kept(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("my-repo/train.py", b"x"), ("notes.txt", b"y")])
    assert contents(upload(archive, dest)) == {"my-repo": "dir", "my-repo/train.py": b"x", "notes.txt": b"y"}


def test_junk_is_dropped_wherever_it_is(tmp_path, dest):
    archive = make_tar_gz(
        tmp_path / "repo.tar.gz",
        [
            member("train.py", b"x"),
            member(".git/config", b"[core]"),
            member("pkg/__pycache__/m.cpython-311.pyc", b"\0"),
            member("pkg/m.py", b"m"),
            member("pkg/.DS_Store", b"\0"),
            member("__MACOSX/._train.py", b"\0"),
        ],
    )
    assert contents(upload(archive, dest)) == {"pkg": "dir", "pkg/m.py": b"m", "train.py": b"x"}


def test_links_that_stay_inside_are_kept_as_links(tmp_path, dest):
    archive = make_zip(
        tmp_path / "repo.zip",
        [
            ("data/train.csv", b"a,b\n"),
            ("src/data", b"../data", stat.S_IFLNK | 0o777),
            ("latest.csv", b"data/train.csv", stat.S_IFLNK | 0o777),
        ],
    )
    assert contents(upload(archive, dest)) == {
        "data": "dir",
        "data/train.csv": b"a,b\n",
        "latest.csv": ("link", "data/train.csv"),
        "src": "dir",
        "src/data": ("link", "../data"),
    }


def test_windows_backslash_names_are_read_as_folders(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("src\\train.py", b"x"), ("README.md", b"r")])
    assert contents(upload(archive, dest)) == {"README.md": b"r", "src": "dir", "src/train.py": b"x"}


# ---------------------------------------------------------------------------------------
# Hostile archives: rejected with the entry named, nothing left behind

LINK = stat.S_IFLNK | 0o777

HOSTILE_TARS = [
    ("absolute path", [member("/etc/cron.d/evil", b"x")], 'archive entry "/etc/cron.d/evil" escapes the submission'),
    (
        "dot-dot",
        [member("ok.py", b"x"), member("../../etc/passwd", b"x")],
        'archive entry "../../etc/passwd" escapes the submission',
    ),
    ("dot-dot inside", [member("a/../../b", b"x")], 'archive entry "a/../../b" escapes the submission'),
    (
        "backslash dot-dot",
        [member("..\\..\\evil.bat", b"x")],
        'archive entry "..\\..\\evil.bat" escapes the submission',
    ),
    ("drive letter", [member("C:/Windows/evil", b"x")], 'archive entry "C:/Windows/evil" escapes the submission'),
    (
        "absolute symlink",
        [member("train.py", b"x"), member("data/link", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        'archive entry "data/link" is a link to "/etc/passwd", outside the submission',
    ),
    (
        "relative symlink escaping",
        [member("train.py", b"x"), member("data/up", type=tarfile.SYMTYPE, linkname="../..")],
        'archive entry "data/up" is a link to "../..", outside the submission',
    ),
    (
        "symlink escaping through another link",
        [
            member("train.py", b"x"),
            member("here", type=tarfile.SYMTYPE, linkname="."),
            member("out", type=tarfile.SYMTYPE, linkname="here/.."),
        ],
        'archive entry "out" is a link to "here/..", outside the submission',
    ),
    (
        "file written through a link",
        [
            member("train.py", b"x"),
            member("sub", type=tarfile.SYMTYPE, linkname="."),
            member("sub/evil.py", b"x"),
        ],
        'archive entry "sub" is used both as a directory and as a file or link',
    ),
    (
        "hard link",
        [member("train.py", b"x"), member("copy", type=tarfile.LNKTYPE, linkname="train.py")],
        'archive entry "copy" is a hard link',
    ),
    (
        "character device",
        [member("train.py", b"x"), member("dev/null", type=tarfile.CHRTYPE)],
        'archive entry "dev/null" is a device node',
    ),
    ("block device", [member("sda", type=tarfile.BLKTYPE)], 'archive entry "sda" is a device node'),
    ("fifo", [member("pipe", type=tarfile.FIFOTYPE)], 'archive entry "pipe" is a FIFO'),
    (
        "duplicate file",
        [member("train.py", b"x"), member("train.py", b"y")],
        'archive entry "train.py" appears more than once',
    ),
    (
        "control character",
        [member("bad\x1bname", b"x")],
        'archive entry "bad\\x1bname" has an unsafe name (control character or a part longer than 255 bytes)',
    ),
    (
        "nested too deep",
        [member("a/" * 100 + "f.py", b"x")],
        f'archive entry "{("a/" * 100 + "f.py")[:200]}…" is nested more than 100 folders deep',
    ),
    ("nothing but junk", [member(".git/HEAD", b"ref")], "archive contains no files"),
]


@pytest.mark.parametrize("members, message", [case[1:] for case in HOSTILE_TARS], ids=[c[0] for c in HOSTILE_TARS])
def test_hostile_tar_gz_is_rejected(tmp_path, dest, members, message):
    archive = make_tar_gz(tmp_path / "repo.tar.gz", members)
    assert rejected(lambda: upload(archive, dest), dest) == message


HOSTILE_ZIPS = [
    ("absolute path", [("/etc/passwd", b"x")], 'archive entry "/etc/passwd" escapes the submission'),
    ("dot-dot", [("../../etc/passwd", b"x")], 'archive entry "../../etc/passwd" escapes the submission'),
    ("backslash dot-dot", [("src\\..\\..\\evil", b"x")], 'archive entry "src\\..\\..\\evil" escapes the submission'),
    (
        "symlink escaping",
        [("train.py", b"x"), ("data/link", b"/etc/passwd", LINK)],
        'archive entry "data/link" is a link to "/etc/passwd", outside the submission',
    ),
    (
        "symlink to parent",
        [("train.py", b"x"), ("data/link", b"../../secret", LINK)],
        'archive entry "data/link" is a link to "../../secret", outside the submission',
    ),
    ("device node", [("dev/null", b"", stat.S_IFCHR | 0o666)], 'archive entry "dev/null" is a device node'),
    ("fifo", [("pipe", b"", stat.S_IFIFO | 0o666)], 'archive entry "pipe" is a FIFO'),
    (
        "file and folder of the same name",
        [("train.py", b"x"), ("train.py/x", b"y")],
        'archive entry "train.py" is used both as a directory and as a file or link',
    ),
]


@pytest.mark.parametrize("entries, message", [case[1:] for case in HOSTILE_ZIPS], ids=[c[0] for c in HOSTILE_ZIPS])
def test_hostile_zip_is_rejected(tmp_path, dest, entries, message):
    archive = make_zip(tmp_path / "repo.zip", entries)
    assert rejected(lambda: upload(archive, dest), dest) == message


def test_encrypted_zip_entry_is_rejected(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("secret.py", b"x")])
    raw = bytearray(archive.read_bytes())
    # zipfile cannot encrypt: set the "encrypted" bit in the local and central headers.
    raw[6] |= 0x1
    raw[raw.rindex(b"PK\x01\x02") + 8] |= 0x1
    archive.write_bytes(bytes(raw))
    assert rejected(lambda: upload(archive, dest), dest) == 'archive entry "secret.py" is encrypted'


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_too_many_entries_are_rejected(tmp_path, dest, kind):
    names = [f"f{i}.py" for i in range(4)]
    if kind == "zip":
        archive = make_zip(tmp_path / "repo.zip", [(n, b"x") for n in names])
    else:
        archive = make_tar_gz(tmp_path / "repo.tar.gz", [member(n, b"x") for n in names])
    limits = IntakeLimits(max_entries=3)
    assert rejected(lambda: upload(archive, dest, limits=limits), dest) == "archive has more than 3 entries"


def test_zip_bomb_is_rejected_before_it_is_expanded(tmp_path, dest):
    archive = make_zip(tmp_path / "bomb.zip", [("train.py", b"x"), ("big.bin", b"\0" * MiB)])
    assert archive.stat().st_size < 4096
    limits = IntakeLimits(unpacked_max_bytes=64 * 1024)
    assert rejected(lambda: upload(archive, dest, limits=limits), dest) == (
        'archive expands past the 64 KB limit (at archive entry "big.bin")'
    )


def test_zip_whose_headers_understate_the_size_is_rejected(tmp_path, dest):
    archive = make_zip(tmp_path / "bomb.zip", [("big.bin", b"\0" * MiB)])
    raw = bytearray(archive.read_bytes())
    # Claim 10 bytes in both the local header (offset 22) and the central directory (offset 24).
    struct.pack_into("<I", raw, 22, 10)
    central = raw.rindex(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 10)
    archive.write_bytes(bytes(raw))
    limits = IntakeLimits(unpacked_max_bytes=64 * 1024)
    message = rejected(lambda: upload(archive, dest, limits=limits), dest)
    assert message.startswith('"bomb.zip" is not a valid zip archive: ')


def test_tar_gz_bomb_is_rejected(tmp_path, dest):
    archive = make_tar_gz(tmp_path / "bomb.tar.gz", [member("train.py", b"x"), member("big.bin", b"\0" * MiB)])
    limits = IntakeLimits(unpacked_max_bytes=64 * 1024)
    assert rejected(lambda: upload(archive, dest, limits=limits), dest) == (
        'archive expands past the 64 KB limit (at archive entry "big.bin")'
    )


def test_tar_gz_with_a_huge_header_is_stopped_while_decompressing(tmp_path, dest):
    info, data = member("train.py", b"x")
    info.pax_headers = {"comment": "x" * MiB}
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(data))
    limits = IntakeLimits(unpacked_max_bytes=64 * 1024, max_entries=10)
    assert rejected(lambda: upload(archive, dest, limits=limits), dest) == (
        "archive expands past the 64 KB limit (in its headers)"
    )


def test_oversize_upload_is_rejected_while_streaming(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("big.bin", os.urandom(3000))])
    limits = IntakeLimits(upload_max_bytes=1000)
    assert rejected(lambda: upload(archive, dest, limits=limits), dest) == "upload is 3.1 KB; the limit is 1000 bytes"

    class EndlessBody(io.RawIOBase):  # a request body: no size, not seekable, never ending
        served = 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = 65536 if n is None or n < 0 else n
            self.served += n
            return b"\0" * n

    body = EndlessBody()
    assert (
        rejected(
            lambda: intake.snapshot_from_upload(body, "repo.zip", lab_kind="repo", dest_dir=dest, limits=limits), dest
        )
        == "upload is over 1000 bytes; the limit is 1000 bytes"
    )
    assert body.served <= 1000 + MiB  # stopped at the first chunk past the limit


@pytest.mark.parametrize(
    "size, text",
    [
        (int(52.1 * MiB), "52.1 MB"),
        (50 * MiB, "50 MB"),
        (50 * MiB + 1, "50.1 MB"),
        (200 * MiB, "200 MB"),
        (64 * 1024, "64 KB"),
        (1000, "1000 bytes"),
    ],
)
def test_sizes_in_messages_read_naturally(size, text):
    assert intake.format_size(size) == text


def test_zip_that_is_really_text_is_rejected(tmp_path, dest):
    fake = tmp_path / "upload.zip"
    fake.write_text("print('hello')\n")
    assert rejected(lambda: upload(fake, dest), dest) == '"upload.zip" is not a valid zip archive'


def test_tar_gz_declared_as_zip_is_rejected(tmp_path, dest):
    archive = make_tar_gz(tmp_path / "real.tar.gz", [member("train.py", b"x")])
    assert rejected(lambda: upload(archive, dest, name="upload.zip"), dest) == '"upload.zip" is not a valid zip archive'


def test_zip_declared_as_tar_gz_is_rejected(tmp_path, dest):
    archive = make_zip(tmp_path / "real.zip", [("train.py", b"x")])
    assert rejected(lambda: upload(archive, dest, name="repo.tgz"), dest) == '"repo.tgz" is not a valid tar.gz archive'


def test_truncated_zip_is_rejected(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("train.py", os.urandom(5000))])
    archive.write_bytes(archive.read_bytes()[:3000])
    assert rejected(lambda: upload(archive, dest), dest).startswith('"repo.zip" is not a valid zip archive: ')


def test_unsupported_upload_type_is_rejected(tmp_path, dest):
    rar = tmp_path / "repo.rar"
    rar.write_bytes(b"Rar!")
    assert rejected(lambda: upload(rar, dest), dest) == '"repo.rar" is not a .zip, .tar.gz or .tgz archive'


# ---------------------------------------------------------------------------------------
# Notebooks

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "def clean(df):\n    return df.dropna()",
        }
    ],
}


def test_notebook_upload_is_stored_as_submission_ipynb(tmp_path, dest):
    path = tmp_path / "My Work (final).ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    snapshot = upload(path, dest, lab_kind="notebook")
    assert contents(snapshot) == {"submission.ipynb": path.read_bytes()}
    assert (snapshot.source_kind, snapshot.source_name, snapshot.file_count) == ("notebook", path.name, 1)


def test_notebook_file_is_stored_as_submission_ipynb(tmp_path, dest):
    path = tmp_path / "solution.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    snapshot = intake.snapshot_from_notebook_file(path, dest_dir=dest, limits=LIMITS)
    assert contents(snapshot) == {"submission.ipynb": path.read_bytes()}
    assert snapshot.source_kind == "notebook"


@pytest.mark.parametrize(
    "text, reason",
    [
        (
            json.dumps({k: v for k, v in NOTEBOOK.items() if k != "cells"}),
            "The notebook is invalid and is missing an expected key: cells",
        ),
        ("not json", "Notebook does not appear to be JSON: 'not json'"),
    ],
)
def test_invalid_notebook_is_rejected_with_nbformats_reason(tmp_path, dest, text, reason):
    path = tmp_path / "work.ipynb"
    path.write_text(text)
    assert rejected(lambda: upload(path, dest, lab_kind="notebook"), dest) == (
        f'"work.ipynb" is not a valid notebook: {reason}'
    )


def test_notebook_lab_rejects_an_archive(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("a.ipynb", b"{}")])
    assert rejected(lambda: upload(archive, dest, lab_kind="notebook"), dest) == '"repo.zip" is not a .ipynb notebook'


# ---------------------------------------------------------------------------------------
# Directories and the manage.py grade dispatcher


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_directory_source_drops_git_and_caches(tmp_path, dest):
    root = write_tree(tmp_path / "repo", {**REPO_FILES, ".git/config": b"[core]", "__pycache__/x.pyc": b"\0"})
    os.chmod(root / "run.sh", 0o755)
    (root / "data" / "latest").symlink_to("readme.md")
    snapshot = intake.snapshot_from_directory(root, dest_dir=dest, limits=LIMITS)
    assert contents(snapshot) == {"data": "dir", "data/latest": ("link", "readme.md"), **REPO_FILES}
    assert (snapshot.source_kind, snapshot.source_name) == ("directory", str(root))
    with tarfile.open(snapshot.path, "r:gz") as tf:
        assert tf.getmember("run.sh").mode == 0o755


def test_directory_with_one_folder_is_not_stripped(tmp_path, dest):
    root = write_tree(tmp_path / "repo", {"src/train.py": b"x"})
    assert contents(intake.snapshot_from_directory(root, dest_dir=dest, limits=LIMITS)) == {
        "src": "dir",
        "src/train.py": b"x",
    }


def test_directory_with_a_link_out_is_rejected(tmp_path, dest):
    root = write_tree(tmp_path / "repo", {"train.py": b"x"})
    (root / "data").mkdir()
    (root / "data" / "link").symlink_to("/etc/passwd")
    assert rejected(lambda: intake.snapshot_from_directory(root, dest_dir=dest, limits=LIMITS), dest) == (
        'file "data/link" is a link to "/etc/passwd", outside the submission'
    )


def test_directory_with_a_fifo_is_rejected(tmp_path, dest):
    root = write_tree(tmp_path / "repo", {"train.py": b"x"})
    os.mkfifo(root / "pipe")
    assert rejected(lambda: intake.snapshot_from_directory(root, dest_dir=dest, limits=LIMITS), dest) == (
        'file "pipe" is a FIFO'
    )


def test_directory_past_the_caps_is_rejected(tmp_path, dest):
    root = write_tree(tmp_path / "repo", {"a.py": b"x" * 600, "b.py": b"x" * 600, "c.py": b"x"})
    assert (
        rejected(
            lambda: intake.snapshot_from_directory(root, dest_dir=dest, limits=IntakeLimits(unpacked_max_bytes=1000)),
            dest,
        )
        == 'directory expands past the 1000 bytes limit (at file "b.py")'
    )
    assert (
        rejected(lambda: intake.snapshot_from_directory(root, dest_dir=dest, limits=IntakeLimits(max_entries=2)), dest)
        == "directory has more than 2 entries"
    )


def test_dispatcher_picks_the_source_kind(tmp_path, dest):
    root = write_tree(tmp_path / "repo", REPO_FILES)
    archive = make_zip(tmp_path / "repo.zip", list(REPO_FILES.items()))
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))

    def grade(source, lab_kind="repo"):
        return intake.snapshot_from_path_or_url(str(source), lab_kind=lab_kind, dest_dir=dest, limits=LIMITS)

    assert grade(root).source_kind == "directory"
    assert grade(archive).source_kind == "archive"
    assert grade(archive).sha256 == grade(root).sha256
    assert grade(notebook, "notebook").source_kind == "notebook"


@pytest.mark.parametrize(
    "source, lab_kind, message",
    [
        ("missing.zip", "repo", '"missing.zip" does not exist'),
        ("nb.ipynb", "repo", intake.REPO_LAB_NEEDS_REPOSITORY),
        ("repo.zip", "notebook", "this lab takes a single .ipynb notebook"),
        (
            "notes.txt",
            "repo",
            '"notes.txt" is not a directory, .zip, .tar.gz, .tgz or .ipynb file, or an https:// git URL',
        ),
        ("git@github.com:ada/repo.git", "repo", "only https:// git URLs are accepted"),
        ("ssh://git@github.com/ada/repo.git", "repo", "only https:// git URLs are accepted"),
        ("ext::sh -c touch% /tmp/pwned", "repo", "only https:// git URLs are accepted"),
    ],
)
def test_dispatcher_rejects_the_wrong_source(tmp_path, dest, monkeypatch, source, lab_kind, message):
    monkeypatch.chdir(tmp_path)
    make_zip(tmp_path / "repo.zip", [("a.py", b"x")])
    (tmp_path / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setattr(intake.subprocess, "Popen", _no_git)
    assert (
        rejected(
            lambda: intake.snapshot_from_path_or_url(source, lab_kind=lab_kind, dest_dir=dest, limits=LIMITS), dest
        )
        == message
    )


def test_oversize_local_archive_is_rejected(tmp_path, dest):
    archive = make_zip(tmp_path / "repo.zip", [("big.bin", os.urandom(3000))])
    limits = IntakeLimits(upload_max_bytes=1000)
    assert (
        rejected(
            lambda: intake.snapshot_from_path_or_url(str(archive), lab_kind="repo", dest_dir=dest, limits=limits), dest
        )
        == '"repo.zip" is 3.1 KB; the limit is 1000 bytes'
    )


# ---------------------------------------------------------------------------------------
# Git URL policy: rejected before any connection


def _no_git(*args, **kwargs):
    raise AssertionError("git must not run for a rejected URL")


_REAL_GETADDRINFO = socket.getaddrinfo


def fake_dns(table: dict[str, list[str]]):
    """A resolver for the names in `table`; any other name is only parsed as a numeric
    address (AI_NUMERICHOST: "2130706433" is 127.0.0.1), so no query leaves the machine."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            return _REAL_GETADDRINFO(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        if not table[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]
        ]

    return getaddrinfo


DNS = {
    "github.com": ["140.82.121.3"],
    "internal.example": ["10.1.2.3"],
    "split.example": ["140.82.121.3", "192.168.1.20"],
    "metadata.example": ["169.254.169.254"],
    "v6metadata.example": ["fd00:ec2::254"],
    "nxdomain.example": [],
}

REJECTED_URLS = [
    ("file:///srv/repo.git", True, "only https:// git URLs are accepted"),
    ("ssh://git@github.com/ada/repo.git", True, "only https:// git URLs are accepted"),
    ("git://github.com/ada/repo.git", True, "only https:// git URLs are accepted"),
    ("ext::sh -c touch% /tmp/pwned", True, "only https:// git URLs are accepted"),
    ("git@github.com:ada/repo.git", True, "only https:// git URLs are accepted"),
    ("/srv/repo.git", True, "only https:// git URLs are accepted"),
    ("http://github.com/ada/repo.git", False, "only https:// git URLs are accepted"),
    ("http://github.com/ada/repo.git", True, "only https:// git URLs are accepted"),
    ("https://ada:hunter2@github.com/ada/repo.git", True, "git URLs must not contain credentials"),
    ("https://ghp_token@github.com/ada/repo.git", True, "git URLs must not contain credentials"),
    ("https://10.0.0.1/x.git", True, "10.0.0.1 resolves to a private address"),
    ("https://169.254.169.254/latest/meta-data", True, "169.254.169.254 resolves to a private address"),
    ("https://[fd00:ec2::254]/x.git", True, "fd00:ec2::254 resolves to a private address"),
    ("https://[::1]/x.git", False, "::1 resolves to a private address"),
    ("https://127.0.0.1/x.git", False, "127.0.0.1 resolves to a private address"),
    ("https://[::ffff:10.0.0.1]/x.git", True, "::ffff:10.0.0.1 resolves to a private address"),
    ("https://0.0.0.0/x.git", True, "0.0.0.0 resolves to a private address"),
    ("https://224.0.0.1/x.git", True, "224.0.0.1 resolves to a private address"),
    ("https://100.64.0.1/x.git", True, "100.64.0.1 resolves to a private address"),
    ("https://[64:ff9b::a00:1]/x.git", True, "64:ff9b::a00:1 resolves to a private address"),
    ("https://2130706433/x.git", False, "2130706433 resolves to a private address"),
    ("https://0x7f.1/x.git", False, "0x7f.1 resolves to a private address"),
    ("https://10.1/x.git", True, "10.1 resolves to a private address"),
    ("https://nxdomain.example/x.git", True, "nxdomain.example could not be resolved"),
    ("https://internal.example/x.git", True, "internal.example resolves to a private address"),
    ("https://split.example/x.git", True, "split.example resolves to a private address"),
    ("https://metadata.example/x.git", True, "metadata.example resolves to a private address"),
    ("https://v6metadata.example/x.git", True, "v6metadata.example resolves to a private address"),
    (
        "https://github.com/ada/repo.git#--upload-pack=touch",
        True,
        'git ref "--upload-pack=touch" is not a valid branch, tag or commit',
    ),
    ("https://github.com/ada/repo.git#a..b", True, 'git ref "a..b" is not a valid branch, tag or commit'),
    ("https://github.com/ada/repo.git#", True, 'git ref "" is not a valid branch, tag or commit'),
    ("https://github.com:99999/ada/repo.git", True, '"https://github.com:99999/ada/repo.git" is not a valid git URL'),
    ("https:///ada/repo.git", True, '"https:///ada/repo.git" is not a valid git URL'),
]


@pytest.mark.parametrize("url, allow_loopback, message", REJECTED_URLS)
def test_git_url_is_rejected_before_any_connection(dest, monkeypatch, url, allow_loopback, message):
    monkeypatch.setattr(intake.socket, "getaddrinfo", fake_dns(DNS))
    monkeypatch.setattr(intake.subprocess, "Popen", _no_git)
    monkeypatch.setattr(intake.subprocess, "run", _no_git)
    limits = IntakeLimits(allow_loopback_git=allow_loopback)
    assert rejected(lambda: intake.snapshot_from_git(url, dest_dir=dest, limits=limits), dest) == message


def test_public_https_url_passes_the_policy_and_is_pinned(monkeypatch):
    monkeypatch.setattr(intake.socket, "getaddrinfo", fake_dns(DNS))
    target = intake.check_git_url("https://github.com/ada/repo.git#v1.0", limits=LIMITS)
    assert (target.url, target.ref, target.is_commit, target.addresses) == (
        "https://github.com/ada/repo.git",
        "v1.0",
        False,
        ("140.82.121.3",),
    )
    assert "http.curloptResolve=github.com:443:140.82.121.3" in intake._git_argv(target, LIMITS)
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert intake.check_git_url(f"https://github.com/ada/repo.git#{sha}", limits=LIMITS).is_commit


# ---------------------------------------------------------------------------------------
# Git clones from a real server on 127.0.0.1

LOOPBACK = IntakeLimits(allow_loopback_git=True)


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    """Repositories: `lab` (main with two commits, a tag v1 on the first, a branch
    `feature`), `with-submodule`, `evil-submodule` (a command in .gitmodules),
    `escaping-link`, and `sub` (never to be fetched)."""
    base = tmp_path_factory.mktemp("git")
    root, work = base / "srv", base / "work"
    root.mkdir()
    work.mkdir()

    lab = write_tree(work / "lab", {"train.py": b"v1\n", "hooks/post-checkout": b"#!/bin/sh\ntouch /tmp/x\n"})
    git("init", "-q", "-b", "main", str(lab))
    git("add", ".", cwd=lab)
    git("commit", "-qm", "first", cwd=lab)
    git("tag", "v1", cwd=lab)
    first = git("rev-parse", "HEAD", cwd=lab)
    (lab / "train.py").write_bytes(b"v2\n")
    git("commit", "-qam", "second", cwd=lab)
    second = git("rev-parse", "HEAD", cwd=lab)
    git("checkout", "-qb", "feature", cwd=lab)
    (lab / "feature.py").write_bytes(b"f\n")
    git("add", ".", cwd=lab)
    git("commit", "-qm", "feature", cwd=lab)
    feature = git("rev-parse", "HEAD", cwd=lab)
    git("checkout", "-q", "main", cwd=lab)
    git("clone", "-q", "--bare", str(lab), str(root / "lab.git"))

    sub = write_tree(work / "sub", {"secret.py": b"s\n"})
    git("init", "-q", "-b", "main", str(sub))
    git("add", ".", cwd=sub)
    git("commit", "-qm", "sub", cwd=sub)
    git("clone", "-q", "--bare", str(sub), str(root / "sub.git"))

    server = GitServer(root)
    sub_sha = git("rev-parse", "HEAD", cwd=sub)
    for name, extra in (("with-submodule", ""), ("evil-submodule", "\tupdate = !touch /tmp/shipwright-pwned\n")):
        repo = write_tree(work / name, {"train.py": b"x\n"})
        git("init", "-q", "-b", "main", str(repo))
        (repo / ".gitmodules").write_text(f'[submodule "lib"]\n\tpath = lib\n\turl = {server.url("sub")}\n{extra}')
        git("update-index", "--add", "--cacheinfo", f"160000,{sub_sha},lib", cwd=repo)
        git("add", ".", cwd=repo)
        git("commit", "-qm", "submodule", cwd=repo)
        git("clone", "-q", "--bare", str(repo), str(root / f"{name}.git"))

    escaping = write_tree(work / "escaping-link", {"train.py": b"x\n"})
    (escaping / "data").mkdir()
    (escaping / "data" / "link").symlink_to("/etc/passwd")
    git("init", "-q", "-b", "main", str(escaping))
    git("add", ".", cwd=escaping)
    git("commit", "-qm", "link", cwd=escaping)
    git("clone", "-q", "--bare", str(escaping), str(root / "escaping-link.git"))

    with server:
        server.commits = {"first": first, "second": second, "feature": feature}
        yield server


@pytest.mark.parametrize(
    "ref, commit, files",
    [
        ("", "second", {"train.py": b"v2\n"}),
        ("#main", "second", {"train.py": b"v2\n"}),
        ("#feature", "feature", {"train.py": b"v2\n", "feature.py": b"f\n"}),
        ("#v1", "first", {"train.py": b"v1\n"}),
        ("#sha:first", "first", {"train.py": b"v1\n"}),
    ],
)
def test_git_clone_of_a_branch_tag_or_commit_records_the_commit(git_server, dest, ref, commit, files):
    if ref.startswith("#sha:"):
        ref = "#" + git_server.commits[ref.removeprefix("#sha:")]
    url = git_server.url("lab") + ref
    snapshot = intake.snapshot_from_git(url, dest_dir=dest, limits=LOOPBACK)
    assert snapshot.commit == git_server.commits[commit]
    assert (snapshot.source_kind, snapshot.source_name) == ("git", url)
    got = contents(snapshot)
    assert {k: v for k, v in got.items() if not k.startswith("hooks")} == files
    assert not any(name == ".git" or name.startswith(".git/") for name in intake.snapshot_member_names(snapshot.path))
    assert [p.name for p in dest.iterdir()] == [snapshot.path.name]


def test_git_ignores_hooks_templates_and_the_callers_git_config(git_server, dest, tmp_path, monkeypatch):
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "evil-hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "post-merge", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    template = tmp_path / "evil-template"
    (template / "hooks").mkdir(parents=True)
    (template / "hooks" / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (template / "hooks" / "post-checkout").chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n[init]\n\ttemplateDir = {template}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))

    snapshot = intake.snapshot_from_git(git_server.url("lab"), dest_dir=dest, limits=LOOPBACK)
    assert snapshot.commit == git_server.commits["second"]
    assert not marker.exists()


def test_git_does_not_fetch_or_run_submodules(git_server, dest):
    before = len(git_server.requests)
    snapshot = intake.snapshot_from_git(git_server.url("with-submodule"), dest_dir=dest, limits=LOOPBACK)
    assert contents(snapshot) == {".gitmodules": ANY, "train.py": b"x\n"}
    assert not any("/sub.git" in r for r in git_server.requests[before:])


def test_git_repo_with_a_command_in_gitmodules_is_refused_by_fsck(git_server, dest):
    url = git_server.url("evil-submodule")
    message = rejected(lambda: intake.snapshot_from_git(url, dest_dir=dest, limits=LOOPBACK), dest)
    assert message.startswith(f"could not clone {url}: object ")
    assert message.endswith(": gitmodulesUpdate: disallowed submodule update setting: !touch /tmp/shipwright-pwned")
    assert not Path("/tmp/shipwright-pwned").exists()


def test_git_repo_with_a_link_out_is_rejected(git_server, dest):
    assert (
        rejected(
            lambda: intake.snapshot_from_git(git_server.url("escaping-link"), dest_dir=dest, limits=LOOPBACK), dest
        )
        == 'file "data/link" is a link to "/etc/passwd", outside the submission'
    )


def test_git_clone_of_a_missing_repo_says_why(git_server, dest):
    url = git_server.url("missing")
    assert rejected(lambda: intake.snapshot_from_git(url, dest_dir=dest, limits=LOOPBACK), dest) == (
        f"could not clone {url}: repository '{url}/' not found"
    )


def test_git_clone_of_a_missing_branch_says_why(git_server, dest):
    url = git_server.url("lab") + "#nope"
    assert rejected(lambda: intake.snapshot_from_git(url, dest_dir=dest, limits=LOOPBACK), dest) == (
        f"could not clone {url}: Remote branch nope not found in upstream origin"
    )


def test_git_clone_past_the_time_limit_is_stopped(git_server, dest):
    limits = IntakeLimits(allow_loopback_git=True, git_timeout_s=0.01)
    assert rejected(lambda: intake.snapshot_from_git(git_server.url("lab"), dest_dir=dest, limits=limits), dest) == (
        "git clone timed out after 0.01 s"
    )


def test_git_clone_past_the_size_limit_is_stopped(git_server, dest):
    limits = IntakeLimits(allow_loopback_git=True, git_max_bytes=512)
    assert rejected(lambda: intake.snapshot_from_git(git_server.url("lab"), dest_dir=dest, limits=limits), dest) == (
        "repository is larger than the 512 bytes limit"
    )


def test_git_connects_to_the_checked_address_not_a_second_lookup(git_server, dest, monkeypatch):
    # The name is unknown to the system resolver: the clone can only succeed because git
    # is pinned (http.curloptResolve) to the address the policy checked.
    host = "git.shipwright.invalid"
    monkeypatch.setattr(intake.socket, "getaddrinfo", fake_dns({host: ["127.0.0.1"]}))
    target = intake.check_git_url(git_server.url("lab", host=host), limits=LOOPBACK)
    assert f"http.curloptResolve={host}:{git_server.port}:127.0.0.1" in intake._git_argv(target, LOOPBACK)
    snapshot = intake.snapshot_from_git(git_server.url("lab", host=host), dest_dir=dest, limits=LOOPBACK)
    assert snapshot.commit == git_server.commits["second"]


def test_http_is_refused_for_a_name_that_resolves_beyond_loopback(dest, monkeypatch):
    monkeypatch.setattr(intake.socket, "getaddrinfo", fake_dns({"mixed.example": ["127.0.0.1", "140.82.121.3"]}))
    monkeypatch.setattr(intake.subprocess, "Popen", _no_git)
    assert (
        rejected(lambda: intake.snapshot_from_git("http://mixed.example/x.git", dest_dir=dest, limits=LOOPBACK), dest)
        == "only https:// git URLs are accepted"
    )


def test_gzip_header_of_the_snapshot_has_no_time(tmp_path, dest):
    snapshot = upload(make_zip(tmp_path / "repo.zip", list(REPO_FILES.items())), dest)
    with gzip.open(snapshot.path) as gz:
        gz.read()
        assert gz.mtime == 0
