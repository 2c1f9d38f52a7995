"""Intake: turn an upload, a directory, a notebook or a git URL into one immutable snapshot.

A snapshot is a deterministic `.tar.gz` (entries sorted by name, mtime 0, uid/gid 0,
no user or group names, modes 0644 / 0755 for executables and directories, 0777 for
symbolic links, gzip header without name or time), stored content-addressed as
`<dest_dir>/<sha256>.tar.gz`. The same content always gives the same SHA-256, whatever
the archive format, timestamps or owners it came in.

Rules, the same for zip, tar.gz, directories and git work trees:
- names: absolute paths and `..` components are rejected; in archives a backslash is
  read as a path separator (old Windows zip tools write them), so `..\\..\\x` is
  rejected too, as are drive letters; control characters, parts over 255 bytes and
  nesting deeper than 100 folders are rejected.
- links: a symbolic link is kept only if its target, resolved from the link's directory
  through the other links of the submission, stays inside it. Hard links (tar) are
  rejected, as are device nodes, FIFOs, sockets and anything else that is not a file,
  directory or symbolic link. Nothing may sit below a file or a link.
- a name may appear once (a directory may be repeated); a second file of the same name
  is rejected rather than silently overwriting the first.
- caps: entries read (including dropped ones) <= max_entries; file bytes, both as
  declared in the headers and as actually decompressed, <= unpacked_max_bytes.
- dropped: `.git/`, `__pycache__/`, `__MACOSX/` and `.DS_Store`, wherever they are.
- archives only: when everything sits in one top-level directory (learners zip their
  repository folder), that directory is stripped.
- a submission without any file is rejected.

Every check runs while the source is read, before anything reaches `dest_dir`; files
are spooled through a private temporary directory inside `dest_dir` (`.intake-*`) that
is removed whatever happens (only a killed process can leave one behind), and the
finished tarball is moved into place with `os.replace`.

Git: the URL policy (`check_git_url`) runs before any connection, and git is pinned to
the addresses it checked with `http.curloptResolve` (git >= 2.37; older versions ignore
the key, leaving the DNS-rebinding window open). Redirects are off, which also stops git
following `http-alternates` to other hosts. No proxy variables reach git: a proxy would
resolve the host itself, so a deployment that needs one must not use this path as is.

This module reads no Django settings and imports no models: callers pass IntakeLimits.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import lzma
import math
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tarfile
import tempfile
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import nbformat

# User-facing texts. `entry` is "archive entry" or "file"; `source` is "archive",
# "directory" or "repository"; sizes are formatted by `format_size`.
UPLOAD_TOO_BIG = "upload is {size}; the limit is {limit}"
FILE_TOO_BIG = '"{name}" is {size}; the limit is {limit}'
UNSUPPORTED_ARCHIVE = '"{name}" is not a .zip, .tar.gz or .tgz archive'
NOT_A_NOTEBOOK_FILE = '"{name}" is not a .ipynb notebook'
NOT_VALID_ARCHIVE = '"{name}" is not a valid {kind} archive'
CORRUPT_ARCHIVE = '"{name}" is not a valid {kind} archive: {reason}'
INVALID_NOTEBOOK = '"{name}" is not a valid notebook: {reason}'
ENTRY_ESCAPES = '{entry} "{name}" escapes the submission'
ENTRY_UNSAFE_NAME = '{entry} "{name}" has an unsafe name (control character or a part longer than 255 bytes)'
ENTRY_TOO_DEEP = '{entry} "{name}" is nested more than {depth} folders deep'
LINK_ESCAPES = '{entry} "{name}" is a link to "{target}", outside the submission'
LINK_UNSAFE_TARGET = '{entry} "{name}" is a link with an unsafe target'
HARD_LINK = '{entry} "{name}" is a hard link'
DEVICE_NODE = '{entry} "{name}" is a device node'
FIFO = '{entry} "{name}" is a FIFO'
SOCKET = '{entry} "{name}" is a socket'
UNSUPPORTED_ENTRY = '{entry} "{name}" is not a regular file, directory or symbolic link'
ENCRYPTED_ENTRY = '{entry} "{name}" is encrypted'
DUPLICATE_ENTRY = '{entry} "{name}" appears more than once'
FILE_AND_DIRECTORY = '{entry} "{name}" is used both as a directory and as a file or link'
TOO_MANY_ENTRIES = "{source} has more than {limit} entries"
UNPACKED_TOO_BIG = '{source} expands past the {limit} limit (at {entry} "{name}")'
HEADERS_TOO_BIG = "{source} expands past the {limit} limit (in its headers)"
EMPTY_SOURCE = "{source} contains no files"
SOURCE_NOT_FOUND = '"{source}" does not exist'
UNSUPPORTED_SOURCE = '"{source}" is not a directory, .zip, .tar.gz, .tgz or .ipynb file, or an https:// git URL'
NOTEBOOK_LAB_NEEDS_NOTEBOOK = "this lab takes a single .ipynb notebook"
REPO_LAB_NEEDS_REPOSITORY = (
    "this lab takes a repository (a directory, .zip, .tar.gz or .tgz archive, or https:// git URL), not a notebook"
)
GIT_ONLY_HTTPS = "only https:// git URLs are accepted"
GIT_CREDENTIALS = "git URLs must not contain credentials"
GIT_BAD_URL = '"{url}" is not a valid git URL'
GIT_BAD_REF = 'git ref "{ref}" is not a valid branch, tag or commit'
GIT_UNRESOLVABLE = "{host} could not be resolved"
GIT_PRIVATE_HOST = "{host} resolves to a private address"
GIT_CLONE_FAILED = "could not clone {url}: {reason}"
GIT_TIMEOUT = "git clone timed out after {seconds} s"
GIT_TOO_BIG = "repository is larger than the {limit} limit"

ARCHIVE, ARCHIVE_ENTRY = "archive", "archive entry"
DIRECTORY, REPOSITORY, FILE = "directory", "repository", "file"
NOTEBOOK_NAME = "submission.ipynb"

_CHUNK = 1024 * 1024
_MAX_LINK_TARGET = 4096
_MAX_DEPTH = 100  # folders; also bounds the descriptors a directory walk holds open
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP: a longer chain cannot resolve anywhere
_JUNK_DIRS = frozenset({".git", "__pycache__", "__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store"})
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
)
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHA_REF = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_NAMED_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}")


@dataclass(frozen=True)
class IntakeLimits:
    upload_max_bytes: int = 50 * 1024 * 1024
    unpacked_max_bytes: int = 200 * 1024 * 1024
    max_entries: int = 10_000
    git_timeout_s: float = 60
    git_max_bytes: int = 200 * 1024 * 1024
    allow_loopback_git: bool = False  # tests only


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sha256: str
    size: int
    file_count: int  # regular files (links and directories not counted)
    unpacked_bytes: int
    source_kind: str  # "archive" | "notebook" | "git" | "directory"
    source_name: str  # original file name or URL (URLs with credentials are rejected)
    commit: str | None  # resolved git commit SHA for git sources
    # True when this intake wrote the file (False: the same bytes were already stored,
    # perhaps for another submission), so a rejected submission removes only its own.
    # Not part of equality: two intakes of the same bytes give the same snapshot.
    created: bool = field(default=False, compare=False)


class IntakeError(Exception):
    """A rejected source; str() is one line for the learner or the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def format_size(n: int) -> str:
    """`52.1 MB`, `50 MB`, `12 KB`, `300 bytes`; rounded up so an overrun never reads as the limit."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            return f"{math.ceil(n * 10 / scale) / 10:g} {unit}"
    return f"{n} bytes"


def _show(text: str, limit: int = 200) -> str:
    """Text for a one-line message: control characters escaped, long names cut."""
    shown = "".join(
        c.encode("unicode_escape", "backslashreplace").decode("ascii") if unicodedata.category(c) in ("Cc", "Cs") else c
        for c in text
    )
    return shown if len(shown) <= limit else shown[:limit] + "…"


def _unsafe_chars(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


# ---------------------------------------------------------------------------------------
# The snapshot builder: every source ends here


@dataclass
class _Entry:
    kind: str  # "file" | "dir" | "link"
    shown: str  # the name as the source spelled it, for messages
    spool: Path | None = None
    size: int = 0
    executable: bool = False
    target: str = ""


class _Builder:
    def __init__(self, work: Path, limits: IntakeLimits, *, source: str, entry: str, backslash_is_separator: bool):
        self.spool_dir = work / "spool"
        self.spool_dir.mkdir()
        self.work = work
        self.limits = limits
        self.source = source
        self.entry = entry
        self.backslash_is_separator = backslash_is_separator
        self.entries: dict[str, _Entry] = {}
        self.seen = 0
        self.declared = 0
        self.unpacked = 0
        self.last_shown = ""

    def error(self, template: str, shown: str, **fields: str) -> IntakeError:
        return IntakeError(template.format(entry=self.entry, name=_show(shown), **fields))

    def too_big(self, shown: str) -> IntakeError:
        return IntakeError(
            UNPACKED_TOO_BIG.format(
                source=self.source,
                limit=format_size(self.limits.unpacked_max_bytes),
                entry=self.entry,
                name=_show(shown),
            )
        )

    def count(self, shown: str) -> None:
        """Called for every entry read, kept or dropped."""
        self.seen += 1
        self.last_shown = shown
        if self.seen > self.limits.max_entries:
            raise IntakeError(TOO_MANY_ENTRIES.format(source=self.source, limit=self.limits.max_entries))

    def declare(self, size: int, shown: str) -> None:
        """Header sizes are checked before any byte is decompressed."""
        self.declared += max(size, 0)
        if self.declared > self.limits.unpacked_max_bytes:
            raise self.too_big(shown)

    def clean(self, raw: str) -> str | None:
        """The normalised relative name, or None for the root and for dropped junk."""
        name = raw.replace("\\", "/") if self.backslash_is_separator else raw
        if _unsafe_chars(name):
            raise self.error(ENTRY_UNSAFE_NAME, raw)
        if name.startswith("/") or (self.backslash_is_separator and re.match(r"[A-Za-z]:", name)):
            raise self.error(ENTRY_ESCAPES, raw)
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.error(ENTRY_ESCAPES, raw)
        if any(len(part.encode("utf-8")) > 255 for part in parts):
            raise self.error(ENTRY_UNSAFE_NAME, raw)
        if len(parts) > _MAX_DEPTH:
            raise self.error(ENTRY_TOO_DEEP, raw, depth=str(_MAX_DEPTH))
        if not parts or any(part in _JUNK_DIRS for part in parts) or parts[-1] in _JUNK_FILES:
            return None
        return "/".join(parts)

    def _claim(self, name: str, entry: _Entry) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            existing = self.entries.get(parent)
            if existing is None:
                self.entries[parent] = _Entry("dir", parent)
            elif existing.kind != "dir":
                raise self.error(FILE_AND_DIRECTORY, existing.shown)
        existing = self.entries.get(name)
        if existing is not None:
            if existing.kind == "dir" and entry.kind == "dir":
                return
            raise self.error(
                FILE_AND_DIRECTORY if "dir" in (existing.kind, entry.kind) else DUPLICATE_ENTRY, entry.shown
            )
        self.entries[name] = entry

    def add_dir(self, name: str, shown: str) -> None:
        self._claim(name, _Entry("dir", shown))

    def add_link(self, name: str, shown: str, target: str) -> None:
        if not target or len(target) > _MAX_LINK_TARGET or _unsafe_chars(target):
            raise self.error(LINK_UNSAFE_TARGET, shown)
        if target.startswith("/") or (self.backslash_is_separator and re.match(r"[A-Za-z]:", target)):
            raise self.error(LINK_ESCAPES, shown, target=_show(target))
        self._claim(name, _Entry("link", shown, target=target))

    def add_file(self, name: str, shown: str, reader: IO[bytes], *, executable: bool) -> None:
        entry = _Entry("file", shown, executable=executable)
        self._claim(name, entry)
        entry.spool = self.spool_dir / str(len(self.entries))
        with open(entry.spool, "wb") as out:
            while chunk := reader.read(_CHUNK):
                entry.size += len(chunk)
                self.unpacked += len(chunk)
                if self.unpacked > self.limits.unpacked_max_bytes:
                    raise self.too_big(shown)
                out.write(chunk)

    def strip_single_top_directory(self) -> None:
        tops = {name.split("/", 1)[0] for name in self.entries}
        if len(tops) != 1:
            return
        (top,) = tops
        if self.entries[top].kind != "dir":
            return
        prefix = top + "/"
        self.entries = {name[len(prefix) :]: e for name, e in self.entries.items() if name.startswith(prefix)}

    def check_links(self) -> None:
        for name, entry in self.entries.items():
            if entry.kind == "link" and _resolve_link(self.entries, name.split("/")[:-1], entry.target, 0) is None:
                raise self.error(LINK_ESCAPES, entry.shown, target=_show(entry.target))

    def finish(self, dest_dir: Path, *, source_kind: str, source_name: str, commit: str | None = None) -> Snapshot:
        self.check_links()
        file_count = sum(1 for e in self.entries.values() if e.kind == "file")
        if file_count == 0:
            raise IntakeError(EMPTY_SOURCE.format(source=self.source))
        tmp = self.work / "snapshot.tar.gz"
        _write_tar(self.entries, tmp)
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        sha256 = digest.hexdigest()
        final = dest_dir / f"{sha256}.tar.gz"
        size = tmp.stat().st_size
        created = not final.exists()
        if created:  # content-addressed: an existing file holds the same bytes
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        else:
            # Reused: touch it, so retention's grace period (grading/retention.py)
            # spares it while this upload's submission row is being written.
            os.utime(final)
        return Snapshot(
            path=final,
            sha256=sha256,
            size=size,
            file_count=file_count,
            unpacked_bytes=sum(e.size for e in self.entries.values()),
            source_kind=source_kind,
            source_name=source_name,
            commit=commit,
            created=created,
        )


def _resolve_link(entries: dict[str, _Entry], start: list[str], target: str, hops: int) -> list[str] | None:
    """Where `target`, read from directory `start`, lands; None when it leaves the root.

    Resolved through the submission's own links, as the kernel would after extraction,
    so `a -> .` plus `b -> a/..` is caught although `a/..` looks harmless as text."""
    if hops > _MAX_LINK_HOPS:
        return start  # a loop or an over-long chain: ELOOP, it cannot reach anything
    if target.startswith("/"):
        return None
    parts = list(start)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
        entry = entries.get("/".join(parts))
        if entry is not None and entry.kind == "link":
            parts.pop()
            resolved = _resolve_link(entries, parts, entry.target, hops + 1)
            if resolved is None:
                return None
            parts = resolved
    return parts


def _write_tar(entries: dict[str, _Entry], out_path: Path) -> None:
    with open(out_path, "wb") as raw:
        # filename="" and mtime=0 keep the gzip header free of names and times.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
                for name in sorted(entries):  # a parent always sorts before its children
                    entry = entries[name]
                    info = tarfile.TarInfo(name)
                    info.mtime = 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if entry.kind == "dir":
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(info)
                    elif entry.kind == "link":
                        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
                        tar.addfile(info)
                    else:
                        assert entry.spool is not None
                        info.type, info.size = tarfile.REGTYPE, entry.size
                        info.mode = 0o755 if entry.executable else 0o644
                        with open(entry.spool, "rb") as data:
                            tar.addfile(info, data)
        raw.flush()
        os.fsync(raw.fileno())


def snapshot_member_names(path: Path) -> list[str]:
    """Names in a snapshot, in stored order (directories end with "/")."""
    with tarfile.open(path, mode="r:gz") as tar:
        return [m.name + "/" if m.isdir() else m.name for m in tar.getmembers()]


@contextmanager
def _workspace(dest_dir: Path) -> Iterator[Path]:
    """A private temporary directory inside dest_dir (same filesystem, so os.replace is
    atomic), removed on success and on every failure."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".intake-", dir=dest_dir))
    try:
        yield work
    finally:
        _remove_tree(work)


def _remove_tree(path: Path) -> None:
    def retry_writable(func, failed, _exc):  # git writes read-only pack files
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry_writable)


def _spool_stream(fileobj: IO[bytes], dest: Path, limit: int, too_big: str, name: str) -> None:
    """Copy while counting; stop as soon as the copy passes `limit`."""
    known = known_size(fileobj)
    if known is not None and known > limit:
        raise IntakeError(too_big.format(name=name, size=format_size(known), limit=format_size(limit)))
    total = 0
    with open(dest, "wb") as out:
        while chunk := fileobj.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise IntakeError(
                    too_big.format(name=name, size="over " + format_size(limit), limit=format_size(limit))
                )
            out.write(chunk)


def known_size(fileobj: IO[bytes]) -> int | None:
    """The stream's size when it can be known without reading it (None otherwise)."""
    size = getattr(fileobj, "size", None)  # Django's UploadedFile
    if isinstance(size, int):
        return size
    try:
        if fileobj.seekable():
            here = fileobj.tell()
            end = fileobj.seek(0, os.SEEK_END)
            fileobj.seek(here)
            return end - here
    except (AttributeError, OSError, ValueError):
        pass
    return None


# ---------------------------------------------------------------------------------------
# Archives


def _archive_kind(filename: str) -> str | None:
    lower = filename.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    return None


def display_name(filename: str) -> str:
    """Browsers may send a path; keep the last part."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1] or "upload"


def upload_kind(name: str, *, lab_kind: str) -> str:
    """ "notebook" or "archive": what an upload called `name` is for a lab of
    `lab_kind`, from its name alone (no byte is read); IntakeError if it cannot be."""
    if lab_kind == "notebook":
        if not name.lower().endswith(".ipynb"):
            raise IntakeError(NOT_A_NOTEBOOK_FILE.format(name=_show(name)))
        return "notebook"
    if lab_kind == "repo":
        if _archive_kind(name) is None:
            raise IntakeError(UNSUPPORTED_ARCHIVE.format(name=_show(name)))
        return "archive"
    raise ValueError(f"unknown lab kind {lab_kind!r}")


def _read_archive(path: Path, kind: str, name: str, builder: _Builder) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    expected = _ZIP_MAGIC if kind == "zip" else (_GZIP_MAGIC,)
    if not any(magic.startswith(m) for m in expected):
        raise IntakeError(NOT_VALID_ARCHIVE.format(name=_show(name), kind=kind))
    try:
        if kind == "zip":
            _read_zip(path, builder)
        else:
            _read_tar_gz(path, builder)
    except _CORRUPT as exc:
        reason = _show(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise IntakeError(CORRUPT_ARCHIVE.format(name=_show(name), kind=kind, reason=reason)) from None
    builder.strip_single_top_directory()


def _read_zip(path: Path, builder: _Builder) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > builder.limits.max_entries:
            raise IntakeError(TOO_MANY_ENTRIES.format(source=builder.source, limit=builder.limits.max_entries))
        for info in infos:
            builder.count(info.filename)
            name = builder.clean(info.filename)
            if name is None:
                continue
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            kind = stat.S_IFMT(mode)
            if info.is_dir() or kind == stat.S_IFDIR:
                builder.add_dir(name, info.filename)
                continue
            _reject_special(builder, kind, info.filename, allowed=(0, stat.S_IFREG, stat.S_IFLNK))
            if info.flag_bits & 0x1:
                raise builder.error(ENCRYPTED_ENTRY, info.filename)
            builder.declare(info.file_size, info.filename)
            with zf.open(info) as data:
                if kind == stat.S_IFLNK:
                    raw = data.read(_MAX_LINK_TARGET + 1)
                    try:
                        target = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise builder.error(LINK_UNSAFE_TARGET, info.filename) from None
                    builder.add_link(name, info.filename, target)
                else:
                    builder.add_file(name, info.filename, data, executable=bool(mode & 0o111))


class _CappedReader(io.RawIOBase):
    """Caps the decompressed tar stream itself: tarfile reads pax and GNU long-name
    headers whole into memory, so a header claiming gigabytes must stop here."""

    def __init__(self, inner: IO[bytes] | gzip.GzipFile, cap: int, builder: _Builder):
        self.inner, self.cap, self.builder, self.total = inner, cap, builder, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(_CHUNK if size is None or size < 0 else size)
        self.total += len(data)
        if self.total > self.cap:
            if self.builder.last_shown:
                raise self.builder.too_big(self.builder.last_shown)
            limit = format_size(self.builder.limits.unpacked_max_bytes)
            raise IntakeError(HEADERS_TOO_BIG.format(source=self.builder.source, limit=limit))
        return data


def _read_tar_gz(path: Path, builder: _Builder) -> None:
    # Tar framing costs at most a few blocks per entry on top of the file bytes.
    cap = builder.limits.unpacked_max_bytes + 4096 * (builder.limits.max_entries + 2)
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        capped = _CappedReader(gz, cap, builder)
        with tarfile.open(fileobj=capped, mode="r|") as tar:
            for member in tar:
                builder.count(member.name)
                name = builder.clean(member.name)
                if name is None:
                    continue
                if member.isdir():
                    builder.add_dir(name, member.name)
                elif member.issym():
                    builder.add_link(name, member.name, member.linkname)
                elif member.islnk():
                    raise builder.error(HARD_LINK, member.name)
                elif member.ischr() or member.isblk():
                    raise builder.error(DEVICE_NODE, member.name)
                elif member.isfifo():
                    raise builder.error(FIFO, member.name)
                elif member.isreg():
                    builder.declare(member.size, member.name)
                    data = tar.extractfile(member)
                    assert data is not None
                    builder.add_file(name, member.name, data, executable=bool(member.mode & 0o111))
                else:
                    raise builder.error(UNSUPPORTED_ENTRY, member.name)


def _reject_special(builder: _Builder, kind: int, shown: str, *, allowed: tuple[int, ...]) -> None:
    if kind in allowed:
        return
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise builder.error(DEVICE_NODE, shown)
    if kind == stat.S_IFIFO:
        raise builder.error(FIFO, shown)
    if kind == stat.S_IFSOCK:
        raise builder.error(SOCKET, shown)
    raise builder.error(UNSUPPORTED_ENTRY, shown)


# ---------------------------------------------------------------------------------------
# Directories


def _read_directory(root: Path, builder: _Builder) -> None:
    """Walks with directory file descriptors and O_NOFOLLOW at every step, so a folder
    or file swapped for a link after it was listed is never followed out of the tree.
    Open descriptors are bounded by the depth, itself capped by `clean`."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    stack = [(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), "")]
    listings = [_listing(stack[0][0])]
    try:
        while stack:
            dir_fd, rel = stack[-1]
            if not listings[-1]:
                os.close(dir_fd)
                stack.pop()
                listings.pop()
                continue
            child = listings[-1].pop()
            shown = f"{rel}/{child.name}" if rel else child.name
            builder.count(shown)
            name = builder.clean(shown)
            if name is None:
                continue
            kind = stat.S_IFMT(child.stat(follow_symlinks=False).st_mode)
            if kind == stat.S_IFDIR:
                builder.add_dir(name, shown)
                stack.append((os.open(child.name, flags | os.O_DIRECTORY, dir_fd=dir_fd), shown))
                listings.append(_listing(stack[-1][0]))
            elif kind == stat.S_IFLNK:
                builder.add_link(name, shown, os.readlink(child.name, dir_fd=dir_fd))
            elif kind == stat.S_IFREG:
                fd = os.open(child.name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
                with open(fd, "rb") as data:
                    opened = os.fstat(data.fileno())
                    if not stat.S_ISREG(opened.st_mode):
                        _reject_special(builder, stat.S_IFMT(opened.st_mode), shown, allowed=())
                    builder.declare(opened.st_size, shown)
                    builder.add_file(name, shown, data, executable=bool(opened.st_mode & 0o111))
            else:
                _reject_special(builder, kind, shown, allowed=())
    finally:
        for dir_fd, _rel in stack:
            os.close(dir_fd)


def _listing(dir_fd: int) -> list[os.DirEntry[str]]:
    """Children in reverse name order (popped from the end: walked in name order)."""
    with os.scandir(dir_fd) as it:
        return sorted(it, key=lambda d: d.name, reverse=True)


# ---------------------------------------------------------------------------------------
# Notebooks


def _validated_notebook(data: bytes, name: str) -> None:
    try:
        text = data.decode("utf-8")
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except UnicodeDecodeError:
        raise IntakeError(INVALID_NOTEBOOK.format(name=_show(name), reason="not UTF-8 text")) from None
    except Exception as exc:  # nbformat raises NotJSONError, ValidationError, KeyError, ...
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        reason = _show(str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__)
        raise IntakeError(INVALID_NOTEBOOK.format(name=_show(name), reason=reason)) from None


def _notebook_snapshot(
    data: bytes, name: str, work: Path, dest_dir: Path, limits: IntakeLimits, source_name: str
) -> Snapshot:
    _validated_notebook(data, name)
    builder = _Builder(work, limits, source=ARCHIVE, entry=FILE, backslash_is_separator=False)
    builder.add_file(NOTEBOOK_NAME, NOTEBOOK_NAME, io.BytesIO(data), executable=False)
    return builder.finish(dest_dir, source_kind="notebook", source_name=source_name)


# ---------------------------------------------------------------------------------------
# Public entry points


def snapshot_from_upload(
    fileobj: IO[bytes], filename: str, *, lab_kind: str, dest_dir: Path, limits: IntakeLimits
) -> Snapshot:
    """Snapshot a web or API upload: a .ipynb for notebook labs, a .zip / .tar.gz / .tgz
    for repository labs (the content must match the extension). Writes only
    `<dest_dir>/<sha256>.tar.gz`; raises IntakeError and leaves nothing behind otherwise."""
    name = display_name(filename)
    upload_kind(name, lab_kind=lab_kind)
    kind = _archive_kind(name)
    with _workspace(dest_dir) as work:
        upload = work / "upload"
        _spool_stream(fileobj, upload, limits.upload_max_bytes, UPLOAD_TOO_BIG, _show(name))
        if lab_kind == "notebook":
            return _notebook_snapshot(upload.read_bytes(), name, work, dest_dir, limits, source_name=name)
        builder = _Builder(work, limits, source=ARCHIVE, entry=ARCHIVE_ENTRY, backslash_is_separator=True)
        assert kind is not None  # a repo lab's archive kind was checked above
        _read_archive(upload, kind, name, builder)
        return builder.finish(dest_dir, source_kind="archive", source_name=name)


def snapshot_from_archive_file(path: Path, *, dest_dir: Path, limits: IntakeLimits) -> Snapshot:
    """A local .zip / .tar.gz / .tgz, under the same rules and size cap as an upload."""
    path = Path(path)
    kind = _archive_kind(path.name)
    if kind is None:
        raise IntakeError(UNSUPPORTED_ARCHIVE.format(name=_show(path.name)))
    with _workspace(dest_dir) as work:
        upload = work / "upload"
        with open(path, "rb") as f:
            _spool_stream(f, upload, limits.upload_max_bytes, FILE_TOO_BIG, _show(path.name))
        builder = _Builder(work, limits, source=ARCHIVE, entry=ARCHIVE_ENTRY, backslash_is_separator=True)
        _read_archive(upload, kind, path.name, builder)
        return builder.finish(dest_dir, source_kind="archive", source_name=path.name)


def snapshot_from_directory(path: Path, *, dest_dir: Path, limits: IntakeLimits) -> Snapshot:
    """Snapshot a local directory (`manage.py grade DIR`, reference solutions): the
    archive rules apply; `.git`, `__pycache__` and friends are dropped; no top folder is
    stripped."""
    path = Path(path)
    with _workspace(dest_dir) as work:
        builder = _Builder(work, limits, source=DIRECTORY, entry=FILE, backslash_is_separator=False)
        _read_directory(path, builder)
        return builder.finish(dest_dir, source_kind="directory", source_name=str(path))


def snapshot_from_notebook_file(path: Path, *, dest_dir: Path, limits: IntakeLimits) -> Snapshot:
    """Snapshot a local .ipynb, stored as `submission.ipynb` at the snapshot root."""
    path = Path(path)
    with _workspace(dest_dir) as work:
        copy = work / "upload"
        with open(path, "rb") as f:
            _spool_stream(f, copy, limits.upload_max_bytes, FILE_TOO_BIG, _show(path.name))
        return _notebook_snapshot(copy.read_bytes(), path.name, work, dest_dir, limits, source_name=str(path))


_REMOTE_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(//|:)|[^/\s]+@[^/\s]+:")


def snapshot_from_path_or_url(source: str, *, lab_kind: str, dest_dir: Path, limits: IntakeLimits) -> Snapshot:
    """The `manage.py grade SOURCE` dispatcher: a directory, .zip / .tar.gz / .tgz or
    .ipynb file, or a git URL (anything that looks like a remote goes to the git policy,
    which accepts https:// only)."""
    if lab_kind not in ("repo", "notebook"):
        raise ValueError(f"unknown lab kind {lab_kind!r}")
    path = Path(source)
    if not path.exists() and _REMOTE_LIKE.match(source):
        if lab_kind == "notebook":
            raise IntakeError(NOTEBOOK_LAB_NEEDS_NOTEBOOK)
        return snapshot_from_git(source, dest_dir=dest_dir, limits=limits)
    if not path.exists():
        raise IntakeError(SOURCE_NOT_FOUND.format(source=_show(source)))
    is_notebook = path.is_file() and path.name.lower().endswith(".ipynb")
    if lab_kind == "notebook":
        if not is_notebook:
            raise IntakeError(NOTEBOOK_LAB_NEEDS_NOTEBOOK)
        return snapshot_from_notebook_file(path, dest_dir=dest_dir, limits=limits)
    if is_notebook:
        raise IntakeError(REPO_LAB_NEEDS_REPOSITORY)
    if path.is_dir():
        return snapshot_from_directory(path, dest_dir=dest_dir, limits=limits)
    if path.is_file() and _archive_kind(path.name):
        return snapshot_from_archive_file(path, dest_dir=dest_dir, limits=limits)
    raise IntakeError(UNSUPPORTED_SOURCE.format(source=_show(source)))


# ---------------------------------------------------------------------------------------
# Git


@dataclass(frozen=True)
class GitTarget:
    """A git URL that passed the policy, with the addresses git will be pinned to."""

    url: str  # without the #REF
    ref: str | None
    is_commit: bool
    host: str
    port: int
    addresses: tuple[str, ...]


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for anything that is not a public unicast address (loopback included)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour:
            embedded.append(ip.sixtofour)
        if ip.teredo:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(_blocked(v4) for v4 in embedded):
            return True
    return (
        ip in _METADATA_ADDRESSES
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address of `host` (a literal IP is its own answer; no lookup is made)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise IntakeError(GIT_UNRESOLVABLE.format(host=_show(host))) from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise IntakeError(GIT_UNRESOLVABLE.format(host=_show(host)))
    return addresses


def _is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def check_git_url(source: str, *, limits: IntakeLimits) -> GitTarget:
    """Applies the git URL policy without connecting anywhere (only name resolution).

    https:// only, no credentials, and every address the host resolves to must be
    public; with `allow_loopback_git`, loopback (only) is also allowed, over http:// too."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", source)
    scheme = match.group(1).lower() if match else ""
    if scheme not in ("https", "http") or (scheme == "http" and not limits.allow_loopback_git):
        raise IntakeError(GIT_ONLY_HTTPS)
    url, hash_sign, ref = source.partition("#")
    if _unsafe_chars(url) or any(c.isspace() for c in url):
        raise IntakeError(GIT_BAD_URL.format(url=_show(url)))
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise IntakeError(GIT_BAD_URL.format(url=_show(url))) from None
    if "@" in parts.netloc:
        raise IntakeError(GIT_CREDENTIALS)
    host = parts.hostname or ""
    if not host:
        raise IntakeError(GIT_BAD_URL.format(url=_show(url)))
    is_commit = False
    if hash_sign:
        is_commit = bool(_SHA_REF.fullmatch(ref.lower()))
        ref = ref.lower() if is_commit else ref
        if not is_commit and (
            not _NAMED_REF.fullmatch(ref) or ".." in ref or "//" in ref or ref.endswith(("/", ".lock", "."))
        ):
            raise IntakeError(GIT_BAD_REF.format(ref=_show(ref)))

    addresses = _resolve(host, port)
    for ip in addresses:
        if _blocked(ip) and not (limits.allow_loopback_git and _is_loopback(ip)):
            raise IntakeError(GIT_PRIVATE_HOST.format(host=_show(host)))
    if scheme == "http" and not all(_is_loopback(ip) for ip in addresses):
        raise IntakeError(GIT_ONLY_HTTPS)
    unique = tuple(dict.fromkeys(str(ip) for ip in addresses))
    return GitTarget(url=url, ref=ref or None, is_commit=is_commit, host=host, port=port, addresses=unique)


def _git_argv(target: GitTarget, limits: IntakeLimits) -> list[str]:
    config = [
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "protocol.allow=never",
        "protocol.https.allow=always",
        "protocol.file.allow=never",
        "submodule.recurse=false",
        "http.followRedirects=false",
        "credential.helper=",
        "transfer.fsckObjects=true",
        "advice.detachedHead=false",
    ]
    if limits.allow_loopback_git:
        config.append("protocol.http.allow=always")
    try:
        ipaddress.ip_address(target.host)
    except ValueError:
        # Pin libcurl to the addresses just checked (git >= 2.37), so a DNS answer that
        # changes between the check and the clone (rebinding) is never used.
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in target.addresses)
        config.append(f"http.curloptResolve={target.host}:{target.port}:{pinned}")
    argv = ["git"]
    for item in config:
        argv += ["-c", item]
    return argv


def _git_env(home: Path, ceiling: Path, limits: IntakeLimits) -> dict[str, str]:
    # A fresh environment, not a copy of ours: no proxy variables (a proxy would resolve
    # the host itself and defeat the address check), no GIT_DIR, no askpass helper.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": "https:http" if limits.allow_loopback_git else "https",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_CEILING_DIRECTORIES": str(ceiling),
        "GIT_LFS_SKIP_SMUDGE": "1",
    }


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # git runs helpers (git-remote-https) in its group
    except ProcessLookupError:
        pass
    proc.wait()


def _run_git(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    deadline: float,
    watch: Path,
    limits: IntakeLimits,
    display_url: str,
    log: Path,
) -> None:
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            interval = 0.02
            while True:
                try:
                    returncode = proc.wait(timeout=interval)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() > deadline:
                    _kill(proc)
                    raise IntakeError(GIT_TIMEOUT.format(seconds=f"{limits.git_timeout_s:g}"))
                if _tree_size(watch) > limits.git_max_bytes:
                    _kill(proc)
                    raise IntakeError(GIT_TOO_BIG.format(limit=format_size(limits.git_max_bytes)))
                interval = min(interval * 2, 0.5)
        finally:
            if proc.poll() is None:
                _kill(proc)
    if returncode != 0:
        lines = [line.strip() for line in log.read_bytes().decode("utf-8", "replace").splitlines() if line.strip()]
        # git's last line is often a consequence ("fetch-pack: invalid index-pack output");
        # an earlier "error:" line names the cause (e.g. the fsck check that failed).
        errors = [line for line in lines if line.startswith("error: ")]
        reason = errors[0] if errors else lines[-1] if lines else f"git exited with status {returncode}"
        reason = re.sub(r"^(fatal|error): ", "", reason)
        raise IntakeError(GIT_CLONE_FAILED.format(url=_show(display_url), reason=_show(reason, 300)))
    if _tree_size(watch) > limits.git_max_bytes:
        raise IntakeError(GIT_TOO_BIG.format(limit=format_size(limits.git_max_bytes)))


def snapshot_from_git(url: str, *, dest_dir: Path, limits: IntakeLimits) -> Snapshot:
    """Shallow-clone `url` (optionally `#REF`: a branch, tag or full commit SHA) and
    snapshot its work tree without `.git`. The URL policy runs before any connection;
    git runs without a shell, hooks, submodules, redirects, system or user config,
    within git_timeout_s and git_max_bytes. Writes only the snapshot."""
    target = check_git_url(url, limits=limits)
    deadline = time.monotonic() + limits.git_timeout_s
    with _workspace(dest_dir) as work:
        home, tree, log = work / "home", work / "clone", work / "git.log"
        home.mkdir()
        env = _git_env(home, work, limits)
        git = _git_argv(target, limits)

        def run(*args: str) -> None:
            _run_git(
                [*git, *args], env=env, cwd=work, deadline=deadline, watch=tree, limits=limits, display_url=url, log=log
            )

        if target.is_commit:
            assert target.ref is not None
            run("init", "-q", "--template=", str(tree))
            run(
                "-C",
                str(tree),
                "fetch",
                "-q",
                "--depth",
                "1",
                "--no-tags",
                "--no-recurse-submodules",
                "--",
                target.url,
                target.ref,
            )
            run("-C", str(tree), "checkout", "-q", "--detach", "FETCH_HEAD")
        else:
            branch = ["--branch", target.ref] if target.ref else []
            run(
                "clone",
                "-q",
                "--template=",
                "--depth",
                "1",
                "--no-tags",
                "--no-recurse-submodules",
                "--single-branch",
                *branch,
                "--",
                target.url,
                str(tree),
            )
        try:
            head = subprocess.run(
                [*git, "-C", str(tree), "rev-parse", "--verify", "HEAD^{commit}"],
                env=env,
                cwd=work,
                capture_output=True,
                timeout=max(deadline - time.monotonic(), 1.0),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise IntakeError(GIT_TIMEOUT.format(seconds=f"{limits.git_timeout_s:g}")) from None
        commit = head.stdout.decode("ascii", "replace").strip()
        if head.returncode != 0 or not _SHA_REF.fullmatch(commit):
            raise IntakeError(GIT_CLONE_FAILED.format(url=_show(url), reason="no commit checked out"))
        builder = _Builder(work, limits, source=REPOSITORY, entry=FILE, backslash_is_separator=False)
        _read_directory(tree, builder)
        return builder.finish(dest_dir, source_kind="git", source_name=url, commit=commit)
