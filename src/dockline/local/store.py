"""FolderStore: a folder is the bucket; the key is the path below it.

Only regular files inside the folder are ever read, and there is one way in:
``open_regular`` walks to the file one folder at a time with ``O_NOFOLLOW`` and opens
it without blocking, so no link is followed at any depth and a FIFO never hangs a
reader. The scan hashes through it too, and hands a small file's bytes over to ``open``
(local/handover.py), so a small file is opened and read once. ``put`` writes the same
way, through folder descriptors, into a dot-named temporary file beside the target
(scans skip dot names), then renames it into place. Nothing here changes or deletes a
user's file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from dockline.decode import HashedBytes
from dockline.errors import DocklineError, ObjectGoneError, PermanentError, TransientError, UsageError
from dockline.local.handover import HandOver, still_same
from dockline.local.names import check_key, refusal
from dockline.models import ObjectRef
from dockline.ports import ObjectStore

__all__ = ["LOCAL_BUCKET", "FolderStore", "check_key", "ref_for", "special_version", "unread_version"]

LOCAL_BUCKET = "local"
_CHUNK = 1 << 20
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def ref_for(root: Path, key: str, st: os.stat_result, version: str) -> ObjectRef:
    return ObjectRef(
        bucket=LOCAL_BUCKET,
        key=key,
        version=version,
        size=st.st_size,
        # mtime in ns orders writes to one key like S3's sequencer does.
        sequencer=f"{st.st_mtime_ns:020X}",
        event_time=event_time(st.st_mtime_ns),
    )


_SECOND: tuple[int, str] = (0, "1970-01-01T00:00:00.")  # the last second formatted, and its text


def event_time(mtime_ns: int) -> str:
    """A file's mtime as the event time, in ``iso``'s form (UTC, milliseconds): e.g.
    2026-11-27T01:02:03.456Z. From the integer nanoseconds, truncated exactly (a float's
    rounding could move it by a millisecond), and each second formatted once: a scan
    of files written in a burst pays ~0.4 us a file for it instead of ~2 us."""
    global _SECOND  # noqa: PLW0603 -- a one-entry cache; a tuple swap is atomic
    second, nanos = divmod(mtime_ns, 1_000_000_000)
    cached = _SECOND
    if cached[0] != second:
        cached = _SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    return f"{cached[1]}{nanos // 1_000_000:03d}Z"


def special_version(st: os.stat_result) -> str:
    """A version id for something that is not a regular file (it has no content to hash)."""
    return f"special-{st.st_ino}-{st.st_mtime_ns}"


def unread_version(st: os.stat_result) -> str:
    """A version id for a file too big to read: hashing it would read what the limit forbids."""
    return f"oversized-{st.st_size}-{st.st_ino}-{st.st_mtime_ns}"


class FolderStore(ObjectStore):
    """``max_object_bytes`` refuses bigger files by their size, before reading a byte."""

    def __init__(self, root: Path, *, max_object_bytes: int | None = None, handover: HandOver | None = None) -> None:
        self.root = root
        self.max_object_bytes = max_object_bytes
        # What the scan read of small new files, for ``open`` to serve (see local/handover.py).
        self.handover = handover or HandOver()
        self._prefix = f"{root}{os.sep}"

    def too_big(self, st: os.stat_result) -> bool:
        return self.max_object_bytes is not None and st.st_size > self.max_object_bytes

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    @contextmanager
    def open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        """The bytes of ``ref``: those the scan read for this very version when it kept them
        and the file is unchanged, else read from the disk. Raises PermanentError for what
        cannot be read (with the reason), ObjectGoneError for a file that is gone,
        TransientError for other OS errors."""
        refused = refusal(ref.version)
        if refused is not None:  # the scan found the name (or its folder) unusable
            raise PermanentError(refused)
        kept = self.handover.take(ref.key, ref.version)
        # The scan read these bytes for this very version through the no-follow descriptor,
        # and the file is still that file, unchanged: no second open, no second hash (the
        # key was checked by the scan: it made the ref). Anything else reads the disk as before.
        if kept is not None and still_same(self._prefix + ref.key, kept):
            yield HashedBytes(kept.data, sha256=kept.version)
            return
        fd, st = self.open_regular(ref.key)
        if self.too_big(st):
            os.close(fd)
            raise PermanentError(
                f"the object is larger than the maximum of {self.max_object_bytes:,} bytes ({st.st_size:,} bytes)"
            )
        with os.fdopen(fd, "rb", buffering=_CHUNK) as handle:
            yield handle

    def content_sha256(self, ref: ObjectRef) -> str | None:
        """The version of a local object is the SHA-256 of its bytes: the pipeline checks
        what it read against it, so a file changed mid-read is never taken for the old one."""
        return ref.version if len(ref.version) == 64 else None

    def open_regular(self, key: str) -> tuple[int, os.stat_result]:
        """The one way into the bucket: a descriptor of the regular file ``key``, and its stat.

        Each folder is opened relative to the one before with O_NOFOLLOW, so no link is
        followed at any depth and no check-then-open race can swap one in. The caller
        closes the descriptor. Raises ObjectGoneError if it is gone, PermanentError for
        a link, a special file or no permission, TransientError for other OS errors.
        """
        parts = check_key(key).split("/")
        try:
            folder = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ObjectGoneError("object no longer exists") from None
        try:
            for part in parts[:-1]:
                try:
                    inner = os.open(part, _FOLDER, dir_fd=folder)
                except OSError as exc:
                    raise _refusal(exc, key) from None
                os.close(folder)
                folder = inner
            return self.open_regular_at(folder, parts[-1], key)
        finally:
            os.close(folder)

    @staticmethod
    def open_regular_at(folder: int, name: str, key: str) -> tuple[int, os.stat_result]:
        """The last step of ``open_regular``, from a folder descriptor opened the same way
        (the scan's walk holds one). Raises as ``open_regular``."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
        except OSError as exc:
            raise _refusal(exc, key) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a FIFO opened without blocking, a device, a folder
                raise PermanentError("it is not a regular file (a folder, FIFO, socket or device)")
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    # -- put ------------------------------------------------------------------------------
    def put(self, source: Path, key: str) -> Path:
        """Copy ``source`` to ``key`` atomically, never through a link.

        Every folder on the way is opened relative to the one before with O_NOFOLLOW
        (missing ones are created the same way); the bytes go into a dot-named temporary
        file in the destination folder, are fsynced, and are renamed into place. Before
        and after the rename the chain of folders is checked to still lead from the
        bucket to the destination: a folder moved away meanwhile (and maybe replaced by a
        link) makes ``put`` remove what it wrote and fail.

        Raises UsageError for a bad key, an unreadable source, a link or file in the way,
        a folder moved during the copy, or an OS error while writing.
        """
        parts = check_key(key).split("/")
        src = _open_source(source)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            folders = self._folders_for_writing(key, parts[:-1])
            try:
                self._write_into(folders, parts, src, source, key)
            finally:
                for fd in folders:
                    os.close(fd)
        finally:
            os.close(src)
        return self.root.joinpath(*parts)

    def _folders_for_writing(self, key: str, names: list[str]) -> list[int]:
        """Descriptors of the bucket and of each folder of ``key``, created if missing."""
        fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        try:
            for depth, name in enumerate(names, start=1):
                try:
                    fds.append(_open_or_make_folder(name, fds[-1]))
                except OSError as exc:
                    where = "/".join(names[:depth])
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
                        what = "a symbolic link" if _is_link(name, fds[-1]) else "not a folder"
                        raise UsageError(
                            f"invalid key {key!r}: {where} is {what};"
                            " dockline never writes through links, which could lead out of the bucket"
                        ) from None
                    raise UsageError(f"cannot put at {key}: {where}: {exc.strerror}") from exc
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def _write_into(self, folders: list[int], parts: list[str], src: int, source: Path, key: str) -> None:
        folder, name = folders[-1], parts[-1]
        tmp = f".put-{secrets.token_hex(8)}.tmp"  # a dot name: scans never pick it up
        placed = False
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(tmp, flags, 0o666, dir_fd=folder)
            try:
                while os.sendfile(out, src, None, 1 << 30):
                    pass
                os.fsync(out)
            finally:
                os.close(out)
            self._check_in_place(folders, parts, key)
            os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
            placed = True
            os.fsync(folder)
            self._check_in_place(folders, parts, key)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(name if placed else tmp, dir_fd=folder)
            if isinstance(exc, OSError):
                raise UsageError(f"cannot put {source} at {key}: {exc.strerror}") from exc
            raise

    def _check_in_place(self, folders: list[int], parts: list[str], key: str) -> None:
        """Raise UsageError unless each folder descriptor is still reached by its name."""
        try:
            same = _same_file(self.root.stat(), os.fstat(folders[0])) and all(
                _same_file(os.stat(name, dir_fd=outer, follow_symlinks=False), os.fstat(inner))
                for name, outer, inner in zip(parts, folders, folders[1:], strict=False)
            )
        except FileNotFoundError:
            same = False
        if not same:
            raise UsageError(
                f"cannot put at {key}: a folder on the way was moved or replaced during the copy"
                " (by a link?); nothing was written"
            )


def _refusal(exc: OSError, key: str) -> DocklineError:
    """The error for an OSError met on the way to ``key``."""
    if isinstance(exc, FileNotFoundError):
        return ObjectGoneError("object no longer exists")
    if exc.errno == errno.ELOOP:
        return PermanentError("it is a symbolic link; dockline reads only regular files inside the bucket")
    if exc.errno == errno.ENOTDIR:
        return PermanentError("its folder is a symbolic link or a file; dockline never follows links out of the bucket")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermanentError(f"permission denied reading {key}")
    return TransientError(f"cannot open {key}: {exc.strerror}")


def _open_source(source: Path) -> int:
    try:
        src = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise UsageError(f"{source} is not a readable file") from None
    if not stat.S_ISREG(os.fstat(src).st_mode):
        os.close(src)
        raise UsageError(f"{source} is not a readable file")
    return src


def _open_or_make_folder(name: str, parent: int) -> int:
    try:
        return os.open(name, _FOLDER, dir_fd=parent)
    except FileNotFoundError:
        with suppress(FileExistsError):  # another put made it meanwhile
            os.mkdir(name, 0o777, dir_fd=parent)
        return os.open(name, _FOLDER, dir_fd=parent)


def _is_link(name: str, parent: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
