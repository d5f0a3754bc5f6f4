"""The scan's read of a small new file, handed over to its reader: each file read once.

The scan must read a new file to version it (the version is its content's SHA-256). For
a small file it keeps the bytes it read, tied to the version they hash to and to the
stat of the descriptor it read them through (device, inode, size, ctime). The store's
reader takes them for exactly that version, once, and serves them without opening the
file again, after one ``lstat`` shows the file still is that file, unchanged (ctime
moves on every write, and nobody can set it). When it is not (deleted, rewritten,
truncated, replaced by a link, chmod'ed), the reader opens the file as it always did,
so a user sees what a second read showed before: gone, superseded, or refused.

Nothing outside the bucket is ever read through it: the bytes came through the scan's
no-follow descriptor. Memory stays bounded: at most ``max_file_bytes`` a file and
``max_bytes`` in all (each entry charged its bookkeeping too); once full, the scan keeps
nothing more and those files are read again as before. Each scan starts it afresh and
ends by dropping what its plan will not read, so bytes never pile up across scans.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import NamedTuple

MAX_FILE_BYTES = 1 << 20  # a bigger file is streamed by its reader, as before
# In all, whatever the number of new files a scan finds: ~13,000 files of 1 KB, more than
# a watcher's scan finds, while a backlog of 100,000 costs at most this much more memory
# (64 MiB made a 100,000-file run --once peak at 261 MB instead of 193 MB).
MAX_BYTES = 16 << 20
_ENTRY_COST = 256  # a dict slot, the tuple and the bytes object's header: counted, so 10^6 tiny files stay bounded


class Kept(NamedTuple):
    version: str
    dev: int
    ino: int
    size: int
    ctime_ns: int
    data: bytes


class HandOver:
    """Bytes a scan read, by key, until their reader takes them. Thread-safe."""

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self._kept: dict[str, Kept] = {}
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes charged now (data and bookkeeping)."""
        return self._used

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept

    def start(self) -> None:
        """A new scan: what the last one kept and nobody took is dropped."""
        with self._lock:
            self._kept.clear()
            self._used = 0

    def wants(self, size: int) -> bool:
        """Is a file of ``size`` bytes worth reading whole to keep? (False once full.)"""
        return size <= self.max_file_bytes and self._used + size + _ENTRY_COST <= self.max_bytes

    def offer(self, key: str, version: str, st: os.stat_result, data: bytes) -> bool:
        """Keep ``data`` (read through a descriptor whose fstat is ``st``, hashing to
        ``version``) for its reader; False when it is not kept (too big, or full)."""
        cost = len(data) + _ENTRY_COST
        if len(data) != st.st_size or len(data) > self.max_file_bytes:
            return False  # the file changed while it was read: its reader reads it again
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._used -= len(old.data) + _ENTRY_COST
            if self._used + cost > self.max_bytes:
                return False
            self._kept[key] = Kept(version, st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns, data)
            self._used += cost
        return True

    def keep_only(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Drop all but these (key, version) pairs: the ones the scan's plan will read."""
        wanted = set(wanted)
        with self._lock:
            for key in [key for key, kept in self._kept.items() if (key, kept.version) not in wanted]:
                self._used -= len(self._kept.pop(key).data) + _ENTRY_COST

    def take(self, key: str, version: str) -> Kept | None:
        """The bytes kept for exactly this version of ``key``, once; None if there are none."""
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is None:
                return None
            self._used -= len(kept.data) + _ENTRY_COST
        return kept if kept.version == version else None


def still_same(path: str, kept: Kept) -> bool:
    """Is the file at ``path`` still the one the bytes were read from, unchanged? One
    ``lstat``: a link (at the last step), a new inode, size or ctime says no. It reads
    nothing, so a folder on the way swapped for a link can at worst make it say yes for
    the very file that was read, moved: the bytes still came from inside the bucket."""
    try:
        st = os.stat(path, follow_symlinks=False)  # noqa: PTH116 -- a str path: no Path made per file
    except OSError:
        return False  # gone or unreachable: the reader's own open says which, as before
    return (st.st_ino, st.st_size, st.st_ctime_ns, st.st_dev) == (kept.ino, kept.size, kept.ctime_ns, kept.dev)
