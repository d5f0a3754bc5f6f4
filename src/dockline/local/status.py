"""``dockline status``: what the local pipeline is doing, read from a read-only database.

Every fact comes from a few indexed queries, so a status costs the same on a ledger of
ten items and of ten million:
- counts by state: ``files_by_status`` (a covering index);
- throughput, in flight, last error: the ``files`` table (one row per object version,
  never the ``items`` table);
- deliveries: ``deliveries_due`` (status first); dead letters: ``dead_letters``.

The backlog is a read-only walk of the bucket under the prefix, the walk the scan uses
(``local.walk``: no link followed, nothing outside the bucket). The scan itself is not
called: it hashes new files and writes the ``seen`` cache, and a status must neither
write nor read whole files. So a file's version is taken from the ``seen`` cache when its
(size, ctime, inode) still match, or from its stat where the scan does the same (links,
special files, refused names, files over the size limit); a regular file no scan has
hashed yet is counted as waiting without being read, unless only its ctime moved since a
version of it settled (same key, size and mtime: a chmod). A file is in the backlog when
its version is not settled the way the scan means it (final and notified, or a duplicate).
"""

from __future__ import annotations

import os
import stat as stat_mode
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dockline.config import PipelineSettings
from dockline.local.db import Database
from dockline.local.ledger import _owner_alive
from dockline.local.names import name_problems, printable, refused_version
from dockline.local.store import LOCAL_BUCKET, FolderStore, special_version, unread_version
from dockline.local.walk import walk
from dockline.models import Status

STATES = tuple(str(s) for s in Status)
FINAL_STATES = tuple(str(s) for s in Status if s.is_final)
DELIVERY_STATES = ("pending", "sending", "retrying", "delivered", "failed")
WINDOWS = (60, 300, 900)  # the rates' windows, in seconds: 1, 5 and 15 minutes
DEFAULT_MAX_BACKLOG_AGE = 900.0

_SETTLED = (
    "SELECT 1 FROM files WHERE bucket = ? AND key = ? AND version = ?"
    " AND (status IN ('processed', 'failed', 'duplicate', 'conflict', 'superseded') AND notified = 1"
    " OR status = 'duplicate') LIMIT 1"
)


# The cache misses when only a file's metadata changed (chmod moves ctime). A settled
# version of the same key with the same size and mtime (files.sequencer, store.ref_for)
# is then taken as this file: the run's scan decides by content, a status only estimates.
_SETTLED_BY_STAT = _SETTLED.replace("AND version = ?", "AND size = ? AND sequencer = ?")


def _sequencer(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:020X}"  # as store.ref_for writes it


@dataclass(frozen=True, slots=True)
class Backlog:
    files: int
    oldest_key: str | None
    oldest_age_seconds: float | None  # since the file last changed (its ctime)


@dataclass(frozen=True, slots=True)
class Rate:
    window_seconds: int
    files: int
    records: int

    @property
    def files_per_second(self) -> float:
        return self.files / self.window_seconds

    @property
    def records_per_second(self) -> float:
        return self.records / self.window_seconds


@dataclass(frozen=True, slots=True)
class InFlight:
    key: str
    records: int  # handed to the ledger so far by this attempt (after each full batch)
    size: int | None
    started_at: str  # when this attempt claimed the file
    owner: str
    bytes_done: int = 0  # bytes of the object read so far (after each full batch)


@dataclass(frozen=True, slots=True)
class LastError:
    key: str
    reason: str
    at: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    at: str
    states: dict[str, int]
    backlog: Backlog
    rates: list[Rate]
    in_flight: list[InFlight]
    deliveries: dict[str, int]
    dead_letters: int
    last_error: LastError | None
    max_backlog_age_seconds: float = DEFAULT_MAX_BACKLOG_AGE
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The documented ``status --json`` object (README, "Operating dockline")."""
        return {
            "at": self.at,
            "files": dict(self.states),
            "backlog": {
                "files": self.backlog.files,
                "oldest_key": self.backlog.oldest_key,
                "oldest_age_seconds": _round(self.backlog.oldest_age_seconds),
            },
            "throughput": {
                f"{rate.window_seconds // 60}m": {
                    "files": rate.files,
                    "records": rate.records,
                    "files_per_second": _round(rate.files_per_second),
                    "records_per_second": _round(rate.records_per_second),
                }
                for rate in self.rates
            },
            "in_flight": [
                {
                    "key": f.key,
                    "records": f.records,
                    "bytes_done": f.bytes_done,
                    "size": f.size,
                    "started_at": f.started_at,
                    "owner": f.owner,
                }
                for f in self.in_flight
            ],
            "deliveries": dict(self.deliveries),
            "dead_letters": self.dead_letters,
            "last_error": (
                None
                if self.last_error is None
                else {"key": self.last_error.key, "reason": self.last_error.reason, "at": self.last_error.at}
            ),
            "max_backlog_age_seconds": self.max_backlog_age_seconds,
            "healthy": self.healthy,
            "problems": list(self.problems),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def read_status(
    db: Database,
    store: FolderStore,
    pipeline: PipelineSettings,
    *,
    now: float,
    max_backlog_age: float = DEFAULT_MAX_BACKLOG_AGE,
) -> StatusReport:
    """The facts at ``now`` (seconds since the epoch). Writes nothing, reads no file's content.

    Raises DocklineError (one line) when the database cannot be read.
    """
    states = dict.fromkeys(STATES, 0)
    for row in db.query("SELECT status, count(*) AS n FROM files GROUP BY status"):
        states[str(row["status"])] = int(row["n"])
    deliveries = dict.fromkeys(DELIVERY_STATES, 0)
    for row in db.query("SELECT status, count(*) AS n FROM deliveries GROUP BY status"):
        deliveries[str(row["status"])] = int(row["n"])
    dead = int(db.query("SELECT count(*) AS n FROM dead_letters")[0]["n"])
    backlog = read_backlog(db, store, pipeline, now=now)
    report = StatusReport(
        at=_iso(now),
        states=states,
        backlog=backlog,
        rates=_rates(db, now),
        in_flight=read_in_flight(db, now),
        deliveries=deliveries,
        dead_letters=dead,
        last_error=_last_error(db),
        max_backlog_age_seconds=max_backlog_age,
    )
    return replace(report, problems=problems(report, max_backlog_age))


def problems(report: StatusReport, max_backlog_age: float) -> list[str]:
    """Why ``status --check`` fails: one line each; empty when all is well."""
    found: list[str] = []
    failed = report.states.get(str(Status.FAILED), 0)
    if failed:
        found.append(f"{failed} failed file{_s(failed)} (see `dockline files list --status failed`)")
    if report.dead_letters:
        found.append(f"{report.dead_letters} dead letter{_s(report.dead_letters)} (see `dockline dlq list`)")
    undelivered = report.deliveries.get("failed", 0)
    if undelivered:
        found.append(
            f"{undelivered} failed deliver{'ies' if undelivered != 1 else 'y'}"
            " (see `dockline notifications list`; `dockline notifications redeliver --failed`)"
        )
    age = report.backlog.oldest_age_seconds
    if age is not None and age > max_backlog_age:
        found.append(
            f"backlog: {report.backlog.files} file{_s(report.backlog.files)} waiting, the oldest for {age:.0f}s"
            f" (more than {max_backlog_age:g}s): {report.backlog.oldest_key}"
        )
    return found


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _iso(moment: float) -> str:
    # The format files.updated_at is written in (pipeline.iso), so strings compare as times.
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rates(db: Database, now: float) -> list[Rate]:
    """Files settled, and their records, per window: one pass over the last 15 minutes' rows."""
    bounds = [_iso(now - window) for window in WINDOWS]
    sums = ", ".join(
        "coalesce(sum(updated_at >= ?), 0), coalesce(sum(CASE WHEN updated_at >= ? THEN records END), 0)"
        for _ in WINDOWS
    )
    placeholders = ", ".join("?" for _ in FINAL_STATES)
    params: list[object] = []
    for bound in bounds:
        params += [bound, bound]
    row = db.query(
        f"SELECT {sums} FROM files WHERE status IN ({placeholders}) AND updated_at >= ?",  # noqa: S608 - only placeholders
        (*params, *FINAL_STATES, min(bounds)),
    )[0]
    return [Rate(window, int(row[2 * i]), int(row[2 * i + 1])) for i, window in enumerate(WINDOWS)]


_PROGRESS = "records_done, bytes_done, coalesce(started_at, updated_at) AS started_at"
_NO_PROGRESS = "0 AS records_done, 0 AS bytes_done, updated_at AS started_at"  # a data dir no run of ours opened yet


def read_in_flight(db: Database, now: float) -> list[InFlight]:
    """Files a live worker holds: processing, with a lease that has not run out and whose
    owner process is alive (a kill -9 leaves a row that only looks busy), with the progress
    its worker persisted (``records_done``, ``bytes_done``: after each full batch)."""
    columns = {str(row["name"]) for row in db.query("SELECT name FROM pragma_table_info('files')")}
    progress = _PROGRESS if {"records_done", "started_at"} <= columns else _NO_PROGRESS
    rows = db.query(
        f"SELECT key, size, lease_owner, {progress} FROM files"  # noqa: S608 - constants only
        " WHERE status = 'processing' AND lease_until > ? ORDER BY started_at, key",
        (now,),
    )
    return [
        InFlight(
            str(r["key"]),
            int(r["records_done"]),
            r["size"],
            str(r["started_at"]),
            str(r["lease_owner"]),
            bytes_done=int(r["bytes_done"]),
        )
        for r in rows
        if _owner_alive(r["lease_owner"])
    ]


def _last_error(db: Database) -> LastError | None:
    rows = db.query(
        "SELECT key, error, updated_at FROM files WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT 1"
    )
    if not rows:
        return None
    row = rows[0]
    return LastError(str(row["key"]), str(row["error"] or "(no reason recorded)"), str(row["updated_at"]))


def read_backlog(db: Database, store: FolderStore, pipeline: PipelineSettings, *, now: float) -> Backlog:
    """Matching files in the bucket whose version is not settled, and how long the oldest
    has waited (see the module docstring for how a version is known without reading)."""
    count = 0
    oldest: tuple[float, str] | None = None
    for found in walk(store.root, pipeline):
        key, st = found.key, found.st
        version: str | None
        refused = found.refused or name_problems(key)
        if refused:
            key, version = printable(key), refused_version(refused, st.st_ino, st.st_mtime_ns)
        elif not stat_mode.S_ISREG(st.st_mode):
            version = special_version(st)
        elif store.too_big(st):
            version = unread_version(st)
        else:
            version = _cached_version(db, key, st)
        if version is not None and db.query(_SETTLED, (LOCAL_BUCKET, key, version)):
            continue
        if version is None and db.query(_SETTLED_BY_STAT, (LOCAL_BUCKET, key, st.st_size, _sequencer(st))):
            continue  # only its ctime moved (a chmod, a chown) since it settled: see the module
        count += 1
        if oldest is None or (st.st_ctime, key) < oldest:
            oldest = (st.st_ctime, key)
    if oldest is None:
        return Backlog(count, None, None)
    return Backlog(count, oldest[1], max(0.0, now - oldest[0]))


def _cached_version(db: Database, key: str, st: os.stat_result) -> str | None:
    """The content hash the scan recorded for this very file, or None when no scan has
    hashed it as it is now (new, or changed since)."""
    rows = db.query("SELECT size, ctime_ns, inode, version FROM seen WHERE key = ?", (key,))
    if rows and (rows[0]["size"], rows[0]["ctime_ns"], rows[0]["inode"]) == (st.st_size, st.st_ctime_ns, st.st_ino):
        return str(rows[0]["version"])
    return None
