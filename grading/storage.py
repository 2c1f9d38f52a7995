"""The snapshot store: where uploads and snapshots live, by content hash.

One small interface (`SnapshotStore`: put, open, exists, delete, size, age, touch)
with two backends, chosen by `SHIPWRIGHT_STORAGE_URL`:

- empty (the default): a local directory, `SHIPWRIGHT_SNAPSHOT_DIR`. Enough for one
  host, or for several that mount the same directory.
- `s3://BUCKET[/PREFIX]`: any S3-compatible object store, through boto3. The endpoint
  and credentials come from boto3's own settings (`AWS_ENDPOINT_URL`,
  `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`), so a grading
  worker on another machine needs only Redis, PostgreSQL, this store and a Docker engine.

Names: a snapshot is `<sha256>.tar.gz`; a raw upload waiting for intake is
`uploads/<submission id>` (its SHA-256 is kept on the submission row). Every reader
goes through `fetch`, which returns a local file whose SHA-256 it has just checked:
with S3 the file sits in a local content-addressed cache (`SHIPWRIGHT_STORE_CACHE_DIR`)
that is never trusted without that check, and a download that does not match is
refused (StoreCorrupt), never used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_CHUNK = 1024 * 1024
# Snapshot (`<sha256>.tar.gz`) or upload (`uploads/<uuid>`) names; nothing else is
# ever joined to a directory or a bucket prefix.
_NAME = re.compile(r"[0-9a-f]{64}\.tar\.gz|uploads/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

STORE_CORRUPT = "stored object {name} does not match its SHA-256 (expected {expected}, got {actual})"
STORE_MISSING = "stored object {name} is missing"


class StoreError(Exception):
    """The store could not be read or written: a platform failure, retried."""


class StoreMissing(StoreError):
    """The object is not in the store (deleted by retention, or never written)."""


class StoreCorrupt(StoreError):
    """The bytes read do not have the SHA-256 the database records: never used."""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a store name: {name!r}")
    return name


def upload_name(submission_id: Any) -> str:
    return check_name(f"uploads/{submission_id}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class SnapshotStore(Protocol):
    def put_file(self, name: str, path: Path) -> None:
        """Store the local file `path` as `name` (atomically: readers see all or nothing)."""

    def open(self, name: str) -> IO[bytes]:
        """A binary stream of `name`; raises StoreMissing."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None:
        """Idempotent: deleting a missing object does nothing."""

    def size(self, name: str) -> int:
        """Bytes stored under `name`; 0 when missing."""

    def age_s(self, name: str) -> float | None:
        """Seconds since `name` was written or touched; None when missing."""

    def touch(self, name: str) -> None:
        """Mark `name` as just written (retention's grace period spares it)."""

    def local_path(self, name: str) -> Path | None:
        """Where `name` already sits on this host's disk, if the store is local."""


class LocalStore:
    """A directory on this host (the default)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def put_file(self, name: str, path: Path) -> None:
        final = self._path(name)
        if Path(path) == final:
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise StoreMissing(STORE_MISSING.format(name=name)) from None

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def size(self, name: str) -> int:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return 0

    def age_s(self, name: str) -> float | None:
        try:
            return time.time() - self._path(name).stat().st_mtime
        except FileNotFoundError:
            return None

    def touch(self, name: str) -> None:
        try:
            os.utime(self._path(name))
        except FileNotFoundError:
            pass

    def local_path(self, name: str) -> Path | None:
        return self._path(name)


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), through boto3."""

    def __init__(self, bucket: str, prefix: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # boto3 reads the endpoint (AWS_ENDPOINT_URL), region and credentials itself.
        self.client = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def _head(self, name: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except self._errors as exc:
            if self._missing(exc):
                return None
            raise StoreError(f"object store: {exc}") from exc

    def put_file(self, name: str, path: Path) -> None:
        try:
            # A single PUT (or a multipart upload completed at the end) is atomic.
            self.client.upload_file(str(path), self.bucket, self._key(name))
        except self._errors as exc:
            raise StoreError(f"object store: {exc}") from exc

    def open(self, name: str) -> IO[bytes]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        except self._errors as exc:
            if self._missing(exc):
                raise StoreMissing(STORE_MISSING.format(name=name)) from None
            raise StoreError(f"object store: {exc}") from exc

    def exists(self, name: str) -> bool:
        return self._head(name) is not None

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except self._errors as exc:
            if not self._missing(exc):
                raise StoreError(f"object store: {exc}") from exc

    def size(self, name: str) -> int:
        head = self._head(name)
        return int(head["ContentLength"]) if head else 0

    def age_s(self, name: str) -> float | None:
        head = self._head(name)
        return None if head is None else time.time() - head["LastModified"].timestamp()

    def touch(self, name: str) -> None:
        # S3 has no utime: copying an object onto itself with new metadata is the
        # documented way to refresh LastModified.
        key = self._key(name)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                Metadata={"touched": str(int(time.time()))},
                MetadataDirective="REPLACE",
            )
        except self._errors as exc:
            if not self._missing(exc):
                raise StoreError(f"object store: {exc}") from exc

    def local_path(self, name: str) -> Path | None:
        return None


@cache
def _store_for(url: str, root: str) -> SnapshotStore:
    if not url:
        return LocalStore(Path(root))
    parts = urlsplit(url)
    if parts.scheme == "s3" and parts.netloc:
        return S3Store(parts.netloc, parts.path)
    raise ImproperlyConfigured(f"SHIPWRIGHT_STORAGE_URL must be empty or s3://BUCKET[/PREFIX], got {url!r}")


def store() -> SnapshotStore:
    """The configured store (one per setting value and process)."""
    return _store_for(settings.SHIPWRIGHT_STORAGE_URL, str(settings.SHIPWRIGHT_SNAPSHOT_DIR))


def work_dir() -> Path:
    """A local directory for intake's scratch work and finished snapshots before they
    are stored: the store's own directory when it is local (a snapshot is then
    written in place), else this host's cache."""
    local = store().local_path(check_name("0" * 64 + ".tar.gz"))
    path = local.parent if local is not None else Path(settings.SHIPWRIGHT_STORE_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def put_snapshot(path: Path) -> None:
    """Store a finished snapshot (named `<sha256>.tar.gz`). Content-addressed: if the
    same bytes are stored already they are touched instead, so retention's grace
    period spares them while the new submission row is written."""
    target = store()
    name = check_name(path.name)
    if target.exists(name):
        target.touch(name)
    else:
        target.put_file(name, path)


def put_stream(name: str, fileobj: IO[bytes], *, max_bytes: int, too_big: Exception) -> tuple[str, int]:
    """Stream `fileobj` into the store as `name`, counting and hashing as it goes;
    raise `too_big` (storing nothing) once it passes `max_bytes`. Returns the
    SHA-256 and size."""
    scratch = work_dir()
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=scratch)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := fileobj.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_big
                digest.update(chunk)
                out.write(chunk)
        store().put_file(name, Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return digest.hexdigest(), size


@contextmanager
def fetched(name: str, sha256: str) -> Iterator[Path]:
    """A local file holding `name`, checked against `sha256` before it is yielded.

    A local store yields its own file (after the check; a mismatch raises
    StoreCorrupt and leaves the file for the operator to inspect). A remote store
    goes through this host's cache, `<SHIPWRIGHT_STORE_CACHE_DIR>/<name>`: a cached
    copy is used only if its hash matches (otherwise it is dropped and fetched
    again), and a download whose hash does not match is refused."""
    target = store()
    local = target.local_path(name)
    if local is not None:
        if not local.exists():
            raise StoreMissing(STORE_MISSING.format(name=name))
        actual = sha256_of(local)
        if actual != sha256:
            raise StoreCorrupt(STORE_CORRUPT.format(name=name, expected=sha256, actual=actual))
        yield local
        return
    cached = Path(settings.SHIPWRIGHT_STORE_CACHE_DIR) / check_name(name)
    if cached.exists() and sha256_of(cached) != sha256:
        cached.unlink(missing_ok=True)
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=cached.parent)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                body = target.open(name)
                try:
                    while chunk := body.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                finally:
                    body.close()
            if digest.hexdigest() != sha256:
                raise StoreCorrupt(STORE_CORRUPT.format(name=name, expected=sha256, actual=digest.hexdigest()))
            os.chmod(tmp, 0o444)
            os.replace(tmp, cached)
        finally:
            Path(tmp).unlink(missing_ok=True)
    yield cached


def drop_cached(name: str) -> None:
    """Forget this host's cached copy of `name` (a remote store's object was deleted)."""
    if store().local_path(name) is None:
        (Path(settings.SHIPWRIGHT_STORE_CACHE_DIR) / check_name(name)).unlink(missing_ok=True)
