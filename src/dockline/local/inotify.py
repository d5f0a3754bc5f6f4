"""What wakes the watcher: inotify on every folder of the bucket, and word when it missed something.

watchdog's observer drops the two events the watcher needs most (watchdog 6.0): an
``IN_Q_OVERFLOW`` (the kernel's queue was full, events were lost) is skipped, and a new
folder whose watch cannot be added (``fs.inotify.max_user_watches`` reached) is skipped
too. After either, only a full rescan can tell what arrived, so this module reads inotify
itself, through watchdog's own ``inotify_c`` bindings, and says so (``BucketWatch.take_lost``).

It tells only *that* something may be new, never what: the scan decides. A file that
arrives is seen by ``IN_CREATE``/``IN_CLOSE_WRITE``/``IN_MOVED_TO`` (rsync's and ``put``'s
rename included), a chmod that makes a file readable by ``IN_ATTRIB``. A new folder is
watched before the scan it triggers, so files written into it meanwhile are found.
Dot folders are not watched: the scan never enters them either. Elsewhere than Linux,
``watch_bucket`` falls back to watchdog's observer, which cannot report lost events.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import struct
import sys
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger("dockline.local")

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
_MASK = (
    IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
_READ = 64 * 1024

OVERFLOW = "the kernel's inotify queue overflowed (fs.inotify.max_queued_events): events were lost"
NO_WATCH = "a folder cannot be watched (fs.inotify.max_user_watches reached)"


class BucketWatch(Protocol):
    changed: threading.Event  # set when something in the bucket may be new

    def take_lost(self) -> str | None:
        """Why events may have been lost since the last call (then only a full rescan can
        tell what arrived), or None; cleared by the call."""

    @property
    def blind(self) -> bool:
        """Some folder is not watched now: events cannot be trusted, rescan often."""

    def resync(self) -> None:
        """Try again to watch every folder (after an overflow or a full watch table)."""

    def start(self) -> None:
        """Start reading events (the watches exist from construction on)."""

    def stop(self) -> None: ...


def watch_bucket(root: Path) -> BucketWatch:
    """A watch of ``root`` and every folder below it, not started yet."""
    if sys.platform == "linux":
        return InotifyWatch(root)
    return _ObserverWatch(root)  # pragma: no cover -- not Linux


class InotifyWatch:
    """A recursive inotify watch of one folder, read by a thread of its own.

    Built and started apart (``start``) so a test can let events pile up in the kernel's
    queue before anything reads them, and see the overflow a slow reader meets.
    """

    def __init__(self, root: Path) -> None:
        from watchdog.observers.inotify_c import inotify_add_watch, inotify_init

        self._add = inotify_add_watch
        self.root = root
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._lost: str | None = None
        self._blind = False
        self._paths: dict[int, bytes] = {}  # wd -> folder path, to watch new subfolders
        self._tree = threading.Lock()  # the reader thread and resync both add watches
        self._full = False  # the last pass over the tree met a full watch table
        self._fd = inotify_init()
        if self._fd < 0:
            raise OSError(_errno(), "cannot start inotify")
        os.set_blocking(self._fd, False)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="dockline-inotify", daemon=True)
        self._add_tree(os.fsencode(root))

    def start(self) -> None:
        self._thread.start()

    @property
    def blind(self) -> bool:
        with self._lock:
            return self._blind

    def take_lost(self) -> str | None:
        with self._lock:
            lost, self._lost = self._lost, None
            return lost

    def resync(self) -> None:
        with self._tree:
            self._full = False
            self._add_tree_locked(os.fsencode(self.root))
            full = self._full
        with self._lock:
            self._blind = full  # said once when it began (``_no_room``), not at every try

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._fd, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _no_room(self, why: str) -> None:
        """A folder is left unwatched: said once, until a resync watches everything again."""
        self._full = True
        with self._lock:
            if self._blind:
                return
            self._blind = True
        self._missed(why)

    def _missed(self, why: str) -> None:
        with self._lock:
            self._lost = why
        self.changed.set()

    def _add_tree(self, top: bytes) -> None:
        """Watch ``top`` and the folders below it (no link followed, no dot folder)."""
        with self._tree:
            self._add_tree_locked(top)

    def _add_tree_locked(self, top: bytes) -> None:
        stack = [top]
        while stack:
            path = stack.pop()
            wd = self._add(self._fd, path, _MASK)
            if wd < 0:
                code = _errno()
                if code == errno.ENOSPC:
                    self._no_room(NO_WATCH)
                    return  # no room for more: the watch loop rescans often until resync works
                if path == top == os.fsencode(self.root):
                    self._no_room(f"cannot watch {self.root}: {os.strerror(code)}")
                continue  # gone, a link now, or not ours to read: the scan says what it is
            self._paths[wd] = path
            with contextlib.suppress(OSError), os.scandir(path) as entries:
                stack.extend(
                    entry.path
                    for entry in entries
                    if not entry.name.startswith(b".") and entry.is_dir(follow_symlinks=False)
                )

    def _run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._fd, self._wake_r], [], [])
            except InterruptedError:  # pragma: no cover -- retried by Python itself (PEP 475)
                continue
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._fd, _READ)
            except BlockingIOError:
                continue
            except OSError as exc:  # pragma: no cover -- the descriptor itself failed
                log.warning("inotify stopped: %s; the watcher rescans on its timer only", exc)
                self._missed(f"inotify stopped: {exc}")
                with self._lock:
                    self._blind = True
                return
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        offset = 0
        woke = False
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            name = data[offset + _HEADER.size : offset + _HEADER.size + length].rstrip(b"\0")
            offset += _HEADER.size + length
            if mask & IN_Q_OVERFLOW:
                self._missed(OVERFLOW)
                self._add_tree(os.fsencode(self.root))  # folders made meanwhile have no watch yet
                continue
            if mask & IN_IGNORED:
                with self._tree:
                    self._paths.pop(wd, None)  # the folder went away (or was unmounted)
                continue
            with self._tree:
                parent = self._paths.get(wd)
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and parent is not None and name[:1] != b".":
                self._add_tree(parent + b"/" + name)  # before the scan it wakes
            woke = True
        if woke:
            self.changed.set()


class _ObserverWatch:  # pragma: no cover -- not Linux: watchdog's observer, lost events unseen
    def __init__(self, root: Path) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        self.changed = threading.Event()
        changed = self.changed

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("created", "modified", "moved", "closed"):
                    changed.set()

        self._observer = Observer()
        self._observer.schedule(_Handler(), str(root), recursive=True)

    def start(self) -> None:
        self._observer.start()

    @property
    def blind(self) -> bool:
        return True  # it cannot say when it missed events: rescan as often as before

    def take_lost(self) -> str | None:
        return None

    def resync(self) -> None:
        return None

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()
