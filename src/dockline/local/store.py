"""FolderStore: a folder is the bucket; the key is the path below it.

Only regular files inside the folder are ever read: symlinks are not followed and
special files (FIFOs, sockets, devices) are refused. Nothing here writes to or
deletes a user's file; ``put`` writes through a temporary file outside the bucket
and an atomic rename, so a watcher never sees half a file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from dockline.errors import ObjectGoneError, PermanentError, TransientError, UsageError
from dockline.models import ObjectRef
from dockline.pipeline import iso
from dockline.ports import ObjectStore

LOCAL_BUCKET = "local"
_CHUNK = 1 << 20


def check_key(key: str) -> str:
    """Validate an object key for the local bucket. Raises UsageError."""
    if not key or key.strip() != key:
        raise UsageError(f"invalid key {key!r}: empty or with leading/trailing spaces")
    if key.startswith(("/", "\\")) or (len(key) > 1 and key[1] == ":"):
        raise UsageError(f"invalid key {key!r}: keys are relative paths inside the bucket, not absolute paths")
    parts = PurePosixPath(key).parts
    if any(part in ("..", ".") for part in key.split("/")) or "\\" in key or "\x00" in key:
        raise UsageError(f"invalid key {key!r}: it would escape the bucket ('..', '.', '\\' are not allowed)")
    if key.endswith("/") or not parts:
        raise UsageError(f"invalid key {key!r}: a key must name a file, not a folder")
    if len(key.encode("utf-8")) > 1024:
        raise UsageError("invalid key: S3 keys are at most 1024 bytes")
    return key


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ref_for(root: Path, key: str, st: os.stat_result, version: str) -> ObjectRef:
    return ObjectRef(
        bucket=LOCAL_BUCKET,
        key=key,
        version=version,
        size=st.st_size,
        # mtime in ns orders writes to one key like S3's sequencer does.
        sequencer=f"{st.st_mtime_ns:020X}",
        event_time=iso(datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)),
    )


def special_version(st: os.stat_result) -> str:
    """A version id for something that is not a regular file (it has no content to hash)."""
    return f"special-{st.st_ino}-{st.st_mtime_ns}"


def unread_version(st: os.stat_result) -> str:
    """A version id for a file too big to read: hashing it would read what the limit forbids."""
    return f"oversized-{st.st_size}-{st.st_ino}-{st.st_mtime_ns}"


class FolderStore(ObjectStore):
    """``max_object_bytes`` refuses bigger files by their size, before reading a byte."""

    def __init__(self, root: Path, *, max_object_bytes: int | None = None) -> None:
        self.root = root
        self.max_object_bytes = max_object_bytes

    def too_big(self, st: os.stat_result) -> bool:
        return self.max_object_bytes is not None and st.st_size > self.max_object_bytes

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    @contextmanager
    def open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        fd = self._open_inside(ref.key)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PermanentError("it is not a regular file (a folder, FIFO, socket or device)")
            if self.too_big(st):
                raise PermanentError(
                    f"the object is larger than the maximum of {self.max_object_bytes:,} bytes ({st.st_size:,} bytes)"
                )
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb", buffering=_CHUNK) as handle:
            yield handle

    def content_sha256(self, ref: ObjectRef) -> str | None:
        """The version of a local object is the SHA-256 of its bytes: the pipeline checks
        what it read against it, so a file changed mid-read is never taken for the old one."""
        return ref.version if len(ref.version) == 64 else None

    def _open_inside(self, key: str) -> int:
        """Open ``key`` one folder at a time with O_NOFOLLOW, relative to the folder before.

        No component may be a link, and no check-then-open race can swap one in: the
        file read is always inside the bucket. A FIFO opens without blocking (and is
        then refused as not a regular file).
        """
        parts = check_key(key).split("/")
        flags = os.O_RDONLY | os.O_NOFOLLOW
        try:
            folder = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise ObjectGoneError("object no longer exists") from None
        try:
            for part in parts[:-1]:
                inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=folder)
                os.close(folder)
                folder = inner
            return os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=folder)
        except FileNotFoundError:
            raise ObjectGoneError("object no longer exists") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PermanentError(
                    "it is a symbolic link; dockline reads only regular files inside the bucket"
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise PermanentError(
                    "its folder is a symbolic link or a file; dockline never follows links out of the bucket"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise PermanentError(f"permission denied reading {key}") from exc
            raise TransientError(f"cannot open {key}: {exc.strerror}") from exc
        finally:
            os.close(folder)

    def _check_folders(self, key: str, target: Path) -> None:
        """A folder on the way that is a link could lead out of the bucket: refuse it."""
        folder = self.root
        for part in target.relative_to(self.root).parts[:-1]:
            folder = folder / part
            if folder.is_symlink():
                raise UsageError(
                    f"invalid key {key!r}: {folder.relative_to(self.root).as_posix()} is a symbolic link;"
                    " dockline never writes through links, which could lead out of the bucket"
                )
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"invalid key {key!r}: {folder.relative_to(self.root).as_posix()} is a file")

    def put(self, source: Path, key: str, *, staging: Path) -> Path:
        """Copy ``source`` to ``key`` atomically (temp file outside the bucket, then rename).

        Raises UsageError for a bad key or an unreadable source.
        """
        target = self.path_for(key)
        if not source.is_file():
            raise UsageError(f"{source} is not a readable file")
        self._check_folders(key, target)
        staging.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix=".put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot put {source} at {key}: {exc.strerror}") from exc
        return target
