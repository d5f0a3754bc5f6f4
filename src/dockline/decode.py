"""Binary stream -> records. Knows nothing of buckets, tables or clocks.

The format is chosen by the key's suffix (``.json``, ``.jsonl``/``.ndjson``, ``.csv``,
each optionally ``.gz``). The stream is read once, in chunks: the SHA-256 of the raw
bytes is computed on the way, and reading stops with a clear error as soon as more
than ``max_object_bytes`` (raw or decompressed) would be needed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any, BinaryIO

from dockline.config import PipelineSettings
from dockline.csv_cells import SNIFF_ROWS, refuse_other_delimiter, typed
from dockline.errors import PermanentError, SupersededError
from dockline.jsonlines import LINE_BLOCK, plain_block, vouched_lines
from dockline.jsonx import JSONSyntaxError, dumps, fast_path_safe, loads, loads_vouched
from dockline.models import BadRecord, BadRecordPolicy, ObjectRef, Record, RecordMode
from dockline.records import (
    MAX_ID_BYTES,
    RESERVED_PK_PREFIX,
    derive_pk,
    make_record,
    transformed_records,
)
from dockline.routes import Route
from dockline.selectors import MissingPath
from dockline.transforms import TransformContext

__all__ = [
    "MAX_ID_BYTES",
    "RESERVED_PK_PREFIX",
    "MeteredReader",
    "RecordStream",
    "derive_pk",
    "format_of",
    "make_record",
    "transformed_records",
]

_RESERVED = RESERVED_PK_PREFIX
_MISSING = object()
MAX_SKIPPED_KEPT = 100
_CHUNK = 1 << 16


class MeteredReader(io.RawIOBase):
    """Counts, hashes and caps the bytes read through it."""

    def __init__(self, source: BinaryIO, *, limit: int, what: str, hash_it: bool = True) -> None:
        self._source = source
        self._limit = limit
        self._what = what
        self.count = 0
        self._hash = hashlib.sha256() if hash_it else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), _CHUNK * 4)
        data = self._source.read(want)
        if not data:
            return 0
        n = len(data)
        self.count += n
        if self.count > self._limit:
            raise PermanentError(f"{self._what} is larger than the maximum of {self._limit:,} bytes")
        if self._hash is not None:
            self._hash.update(data)
        buffer[:n] = data
        return n

    def drain(self) -> None:
        """Read to the end so the hash covers the whole object."""
        while self.readinto(bytearray(_CHUNK)):
            pass

    def read_whole(self) -> bytes:
        """The rest of a source held in memory, in one read: counted, capped and hashed as
        ``readinto`` does, without its chunks and copies (``RecordStream``'s bytes in hand)."""
        data = self._source.read()
        self.count += len(data)
        if self.count > self._limit:
            raise PermanentError(f"{self._what} is larger than the maximum of {self._limit:,} bytes")
        if self._hash is not None:
            self._hash.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest() if self._hash is not None else ""


class HashedBytes(io.BytesIO):
    """Bytes whose SHA-256 was taken as they were read (the local scan's hand-over):
    ``RecordStream`` does not hash them again."""

    def __init__(self, data: bytes, *, sha256: str) -> None:
        super().__init__(data)
        self.sha256 = sha256


def format_of(key: str) -> tuple[str, bool]:
    """('json' | 'lines' | 'csv', gzipped) for a key, by suffix."""
    return _BY_SUFFIX.format_for(key)


_BY_SUFFIX = Route()


class RecordStream:
    """Iterate ``records`` once; then ``sha256``, ``size`` and ``skipped`` are final.

    A bad record raises PermanentError (``fail_file``) or is kept in ``skipped``
    (``skip``). ``multi`` says whether the file maps to many records.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        key: str,
        settings: PipelineSettings,
        expected_sha256: str | None = None,
        route: Route | None = None,
        ref: ObjectRef | None = None,
        received_at: str = "",
    ) -> None:
        self._expected_sha256 = expected_sha256
        self.key = key
        self.skipped: list[BadRecord] = []
        self.skipped_total = 0
        self.dropped = 0  # records the route's transform dropped (returned None for)
        self._ref = ref or ObjectRef("", key, "")
        self._received_at = received_at
        self._settings = settings
        self.route = route or settings.table.route_or_fallback(key)
        self._format, self._gz = self.route.format_for(key)
        self.multi = self._format != "json" or self.route.records is RecordMode.SPLIT  # route.multi_for, known format
        self._hashed = stream.sha256 if isinstance(stream, HashedBytes) else ""
        self._raw = MeteredReader(stream, limit=settings.max_object_bytes, what="the object", hash_it=not self._hashed)

    @property
    def sha256(self) -> str:
        return self._hashed or self._raw.sha256

    @property
    def size(self) -> int:
        return self._raw.count

    def _text_source(self) -> BinaryIO:
        buffered: BinaryIO = io.BufferedReader(self._raw, buffer_size=_CHUNK)
        if not self._gz:
            return buffered
        inflated = gzip.GzipFile(fileobj=buffered, mode="rb")
        capped = MeteredReader(
            inflated,  # type: ignore[arg-type]
            limit=self._settings.max_object_bytes,
            what="the decompressed content",
            hash_it=False,
        )
        return io.BufferedReader(capped, buffer_size=_CHUNK)

    def records(self) -> Iterator[Record]:
        if self._hashed and self._format == "json" and not self._gz:
            # The common small file: bytes in hand (the scan's hand-over), hash known, one
            # document. The same checks in the same order as below, without the chunked
            # reader, its buffers and the drain: most of a 1 KB file's decoding cost.
            data = self._raw.read_whole()
            self._check_version()
            yield from self._json_document(data)
            return
        try:
            source = self._text_source()
            if self._format == "json":
                yield from self._json(source)
            elif self._format == "lines":
                yield from self._lines(source)
            else:
                yield from self._csv(source)
            self._verify()
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            reason = "truncated" if isinstance(exc, EOFError) else str(exc)
            raise PermanentError(f"not a valid gzip file: {reason}") from None
        if self.size == 0:
            raise PermanentError("the file is empty")

    def _made(self, document: Any, index: int | None) -> Record | list[Record]:
        """The record one parsed value becomes, or the records the route's transform makes
        of it (a list: the common case stays one object, no list, as before transforms).
        Raises PermanentError, and TransientError from a transform."""
        route, max_inline = self.route, self._settings.max_inline_bytes
        if route.transform is None:
            return make_record(document, key=self.key, index=index, max_inline=max_inline, route=route)
        ref = self._ref
        context = TransformContext(route.name, self.key, ref.bucket, ref.version, index, self._received_at)
        records = transformed_records(
            document, key=self.key, index=index, max_inline=max_inline, route=route, context=context
        )
        if not records:
            self.dropped += 1
        return records

    def _bad(self, index: int, reason: str, *, column: int | None = None) -> None:
        if self.route.on_bad_record is BadRecordPolicy.FAIL_FILE or not self.multi:
            where = f"line {index}" if self._format != "json" else f"element {index}"
            raise PermanentError(f"{where}, column {column}: {reason}" if column else f"{where}: {reason}")
        if column:
            reason = f"{reason} at column {column}"  # listed as "line N: <reason>"
        self.skipped_total += 1
        if len(self.skipped) < MAX_SKIPPED_KEPT:  # the count is exact, the list bounded
            self.skipped.append(BadRecord(index=index, reason=reason))

    def _verify(self) -> None:
        """Read to the end and check the bytes are the version we meant to read."""
        self._raw.drain()
        self._check_version()

    def _check_version(self) -> None:
        if self._expected_sha256 is not None and self.sha256 != self._expected_sha256:
            raise SupersededError(
                f"{self.key} changed while it was being read; its new content is processed as a new version"
            )

    def _json(self, source: BinaryIO) -> Iterator[Record]:
        data = source.read()
        self._verify()  # a document is checked before any of it is written
        yield from self._json_document(data)

    def _json_document(self, data: bytes) -> Iterator[Record]:
        """The records of one JSON document, all of whose bytes were read and verified."""
        if not data.strip():
            raise PermanentError("the file is empty" if not data else "the file is blank (whitespace only)")
        document = loads(data)
        if self.route.selector is not None:
            document = self._selected(document)
        elif not self.multi or not isinstance(document, list):
            made = self._made(document, None)
            yield from made if isinstance(made, list) else (made,)
            return
        for index, element in enumerate(document, start=1):
            try:
                made = self._made(element, index)
            except PermanentError as exc:
                self._bad(index, str(exc))
                continue
            if isinstance(made, list):
                yield from made
            else:
                yield made

    def _selected(self, document: Any) -> list[Any]:
        """The array the route's record selector names. Raises PermanentError."""
        assert self.route.selector is not None
        where = self.route.selector.text
        try:
            records = self.route.selector.resolve(document)
        except MissingPath as exc:
            raise PermanentError(f"records {where} is missing: {exc}") from None
        if type(records) is not list:
            kind = "an object" if type(records) is dict else "not an array"
            raise PermanentError(f"records {where} is {kind}, not an array of records")
        return records

    def _lines(self, source: BinaryIO) -> Iterator[Record]:
        if not self.route.plain:
            yield from self._lines_routed(source)
            return
        max_inline = self._settings.max_inline_bytes
        key, route = self.key, self.route.name
        seen_text = False
        number = 0
        while lines := source.readlines(LINE_BLOCK):
            # One scan vouches for the whole block, and a block of well-formed objects with
            # plain ids is decoded in one pass; anything else goes line by line below.
            vouched = fast_path_safe(b"".join(lines))
            if vouched and (fast := plain_block(lines, key, number, max_inline, route)) is not None:
                number += len(lines)
                seen_text = True
                yield from fast
                continue
            parse = loads_vouched if vouched else loads
            for line in lines:
                number += 1
                if line.isspace():
                    continue
                seen_text = True
                try:
                    document = parse(line)
                    # The common shape inline (this loop runs a million times for a big file):
                    # an object with a short string id, or none; anything else takes make_record.
                    pk = document.get("id", _MISSING) if type(document) is dict else None
                    if pk is _MISSING:
                        pk = f"{key}#{number}"
                    elif not (type(pk) is str and 0 < len(pk) <= 256 and not pk.isspace() and pk[:9] != _RESERVED):
                        yield make_record(document, key=key, index=number, max_inline=max_inline, route=self.route)
                        continue
                    canonical = dumps(document)
                except JSONSyntaxError as exc:
                    # Parsed alone, a line is a document whose "line 1" is this line: name the file's
                    # line once. Only a truncation points past the line's end (the parser's line 2).
                    column = exc.column if exc.line == 1 else len(line.decode("utf-8", "replace").rstrip("\r\n")) + 1
                    self._bad(number, exc.what, column=column)
                    continue
                except PermanentError as exc:
                    self._bad(number, str(exc))
                    continue
                if len(canonical) > max_inline:
                    digest = hashlib.sha256(canonical).hexdigest()
                    yield Record(pk, None, digest, number, True, len(canonical), "", route)
                else:
                    yield Record(pk, document, None, number, False, len(canonical), canonical.decode(), route)
        if not seen_text and self._raw.count:
            raise PermanentError("the file is blank (whitespace only)")

    def _lines_routed(self, source: BinaryIO) -> Iterator[Record]:
        """JSON Lines whose route picks its own id, checks a schema or transforms: one record
        at a time, the numbers vouched for a block of lines at once (as ``_lines`` does)."""
        seen_text = False
        for number, line, parse in vouched_lines(source):
            if line.isspace():
                continue
            seen_text = True
            try:
                made = self._made(parse(line), number)
            except JSONSyntaxError as exc:
                column = exc.column if exc.line == 1 else len(line.decode("utf-8", "replace").rstrip("\r\n")) + 1
                self._bad(number, exc.what, column=column)
                continue
            except PermanentError as exc:
                self._bad(number, str(exc))
                continue
            if isinstance(made, list):
                yield from made
            else:
                yield made
        if not seen_text and self._raw.count:
            raise PermanentError("the file is blank (whitespace only)")

    def _csv(self, source: BinaryIO) -> Iterator[Record]:
        dialect = self.route.csv
        text = io.TextIOWrapper(source, encoding=dialect.encoding, errors="strict", newline="")
        reader = csv.reader(text, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        converters = {col: typed(kind) for col, kind in self.route.csv_schema.items()}
        try:
            header = next(reader, None)
            if header is None:
                return
            if len(set(header)) != len(header) or not all(h.strip() for h in header):
                raise PermanentError("the CSV header has empty or repeated column names")
            rows: Iterator[tuple[int, list[str]]] = ((reader.line_num, row) for row in reader)
            if len(header) == 1:  # one column, or the wrong delimiter: look before storing anything
                peeked = list(islice(rows, SNIFF_ROWS))
                refuse_other_delimiter(header[0], [row for _, row in peeked], dialect.delimiter)
                rows = chain(peeked, rows)
            for number, row in rows:
                if not row:
                    continue
                if len(row) != len(header):
                    self._bad(number, f"has {len(row)} fields; the header has {len(header)}")
                    continue
                try:
                    document = {h: converters.get(h, str)(v) for h, v in zip(header, row, strict=True)}
                    made = self._made(document, number)
                except PermanentError as exc:
                    self._bad(number, str(exc))
                    continue
                if isinstance(made, list):
                    yield from made
                else:
                    yield made
        except UnicodeDecodeError as exc:
            raise PermanentError(f"not valid UTF-8 near byte offset {exc.start}") from None
        except csv.Error as exc:
            raise PermanentError(f"not valid CSV: {exc}") from None
