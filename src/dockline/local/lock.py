"""The cross-process write lock of the local database: whom it names, how long it waits.

An open-file-description (OFD) lock on ``dockline.db.lock``. It belongs to one open of
the file, not to the process, so a helper thread can wait for it in the kernel
(F_OFD_SETLKW: a waiter gets it as soon as it is released, where polling would look for
a gap a busy neighbour never leaves) and the caller can give up after a bound. The
holder writes its pid into the file: that is whom a waiter names, with "stopped" when
the holder is paused (SIGSTOP, Ctrl-Z), instead of failing with "database is locked".
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from dockline.errors import DocklineError

_FLOCK = struct.Struct("@hhqqi4x")  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid
_PID = struct.Struct("@q")


class DatabaseUnavailable(DocklineError):
    """The database cannot be written right now; no file is to blame. Try again later."""


class LockWaitError(DatabaseUnavailable):
    """Another process held the write lock for longer than ``lock_wait_seconds``."""


def _ofd(fd: int, command: int, kind: int) -> bytes:
    return fcntl.fcntl(fd, command, _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0))


def lock_holder(lock_file: int) -> int | None:
    """The pid holding the write lock (as the holder wrote it into the lock file), 0 when it
    is held by a process that has not written its pid, None when the lock is free."""
    l_type = _FLOCK.unpack(_ofd(lock_file, fcntl.F_OFD_GETLK, fcntl.F_WRLCK))[0]
    if l_type == fcntl.F_UNLCK:
        return None
    raw = os.pread(lock_file, _PID.size, 0)
    return int(_PID.unpack(raw)[0]) if len(raw) == _PID.size else 0


def _say_holder(fd: int) -> None:
    with suppress(OSError):  # only a name for waiters' messages: never worth failing for
        os.pwrite(fd, _PID.pack(os.getpid()), 0)


def is_stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] in ("T", "t")


class WriteLock:
    """One process's handle on the lock file. Not thread-safe: the caller serialises.

    Raises DocklineError (one line) when the lock file cannot be created.
    """

    def __init__(
        self,
        path: Path,
        *,
        what: str,
        wait_seconds: float,
        on_wait: Callable[[str], None],
        os_error: Callable[[OSError, str], DocklineError],
    ) -> None:
        self.path = path
        self.what = what  # named in messages: "the ledger lock on <db>"
        self.wait_seconds = wait_seconds
        self.on_wait = on_wait
        self._os_error = os_error
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise os_error(exc, f"cannot write to the data dir {path.parent}") from exc
        self._held = -1

    def _try(self, fd: int) -> bool:
        try:
            _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise self._os_error(exc, f"cannot lock {self.path}") from exc
        return True

    def acquire(self) -> None:
        """Take the lock, waiting at most ``wait_seconds``; says once (after a quiet second)
        whom it waits for. Raises LockWaitError when the bound passes."""
        if self._try(self._fd):
            self._held = self._fd
            _say_holder(self._fd)
        else:
            self._held = self._wait()

    def _wait(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        got = threading.Event()
        abandoned: list[bool] = []
        errors: list[OSError] = []
        guard = threading.Lock()

        def wait() -> None:
            try:
                _ofd(fd, fcntl.F_OFD_SETLKW, fcntl.F_WRLCK)
                _say_holder(fd)  # at once: a waiter must never see the last holder's pid
            except OSError as exc:
                errors.append(exc)
            with guard:
                if abandoned:  # too late: the caller gave up; let the others have it
                    with suppress(OSError):
                        os.close(fd)
                    return
                got.set()

        threading.Thread(target=wait, name="dockline-lock-wait", daemon=True).start()
        # Quiet for the first second: a busy neighbour is normal, a stuck one is news.
        if not got.wait(min(1.0, self.wait_seconds)):
            self.on_wait(
                f"waiting for {self.holder_text(hint=True)} to release {self.what} (up to {self.wait_seconds:g}s)"
            )
            got.wait(max(0.0, self.wait_seconds - 1.0))
        with guard:
            if not got.is_set():
                abandoned.append(True)
                raise LockWaitError(f"{self.holder_text()} held {self.what} for more than {self.wait_seconds:g}s")
        if errors:
            os.close(fd)
            raise self._os_error(errors[0], f"cannot lock {self.path}")
        return fd

    def holder_text(self, *, hint: bool = False) -> str:
        holder = lock_holder(self._fd)
        if not holder:
            return "another process"
        if is_stopped(holder):
            return (
                f"pid {holder} (it is stopped; `kill -CONT {holder}` resumes it)" if hint else f"pid {holder} (stopped)"
            )
        return f"pid {holder}"

    def release(self) -> None:
        fd, self._held = self._held, -1
        _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_UNLCK)
        if fd != self._fd:
            os.close(fd)
