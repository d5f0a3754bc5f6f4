"""Which rules a key is processed by: the one routing rule for both engines.

A route names a prefix and suffixes (each also with ``.gz``), and how its files become
records: format, record selector, id selector, CSV dialect, schema, and what bad
records and conflicts do. The first route whose prefix and suffix match a key takes
it. ``[pipeline]`` alone is one route, named ``default``, so old configurations behave
as before. The local scan, the local engine, the Lambda's event parser and the core's
decoder all ask a ``RouteTable``; nothing else decides whether a key is ours.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from dockline.errors import ConfigError
from dockline.models import BadRecordPolicy, ConflictPolicy, RecordMode
from dockline.selectors import DEFAULT_IDS, IdSelector, Pointer
from dockline.transforms import Transform
from dockline.validation import SchemaCheck

DEFAULT_ROUTE = "default"


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


ENCODINGS = ("utf-8", "utf-8-sig", "latin-1")


@dataclass(frozen=True, slots=True)
class CsvDialect:
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8-sig"  # a leading byte-order mark is skipped, as before


def format_of_suffix(suffix: str) -> Format | None:
    """The format a suffix implies (``.gz`` looked through), or None."""
    base = suffix.removesuffix(".gz")
    if base.endswith((".jsonl", ".ndjson")):
        return Format.JSONL
    if base.endswith(".csv"):
        return Format.CSV
    if base.endswith(".json"):
        return Format.JSON
    return None


@lru_cache(maxsize=64)
def _all_suffixes(suffixes: tuple[str, ...], gzip: bool) -> tuple[str, ...]:
    """A route's suffixes with their ``.gz`` forms: made once, not per key (the scan and the
    batch ask for every file)."""
    if not gzip:
        return suffixes
    return suffixes + tuple(s + ".gz" for s in suffixes if not s.endswith(".gz"))


@dataclass(frozen=True, slots=True)
class Route:
    """One feed's rules. ``format`` None: by the key's suffix (JSON when it says nothing)."""

    name: str = DEFAULT_ROUTE
    prefix: str = "incoming/"
    suffixes: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv")
    format: Format | None = None
    records: RecordMode = RecordMode.DOCUMENT
    selector: Pointer | None = None  # records = "/Records": the array inside one document
    ids: IdSelector = DEFAULT_IDS
    csv: CsvDialect = field(default_factory=CsvDialect)
    csv_schema: Mapping[str, str] = field(default_factory=dict)
    schema: SchemaCheck | None = None
    transform: Transform | None = None  # runs after the schema check, before the ledger
    on_bad_record: BadRecordPolicy = BadRecordPolicy.FAIL_FILE
    on_conflict: ConflictPolicy = ConflictPolicy.REJECT
    gzip: bool = True

    def all_suffixes(self) -> tuple[str, ...]:
        return _all_suffixes(self.suffixes, self.gzip)

    def matches(self, key: str) -> bool:
        """Does this route take the (decoded) key? Case-sensitive, as in S3."""
        return key.startswith(self.prefix) and key.endswith(self.all_suffixes())

    @property
    def plain(self) -> bool:
        """No per-record step beyond today's: the decoder's fast paths apply."""
        return self.ids.is_default and self.schema is None and self.transform is None

    def format_for(self, key: str) -> tuple[str, bool]:
        """('json' | 'lines' | 'csv', gzipped) for a key of this route."""
        gz = key.endswith(".gz")
        fmt = self.format or format_of_suffix(key) or Format.JSON
        if self.records is RecordMode.LINES:
            fmt = Format.JSONL
        return ("lines" if fmt is Format.JSONL else str(fmt)), gz

    def multi_for(self, key: str) -> bool:
        """Does a file under this key map to many records (lines, rows, array elements)?"""
        return self.format_for(key)[0] != "json" or self.records is RecordMode.SPLIT


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes in order; ``fallback`` processes a key no route takes (a file put by
    hand, a redrive after the routes changed): ``[pipeline]``'s rules."""

    routes: tuple[Route, ...]
    fallback: Route = field(default_factory=Route)

    def route_for(self, key: str) -> Route | None:
        for route in self.routes:
            if route.matches(key):
                return route
        return None

    def matches(self, key: str) -> bool:
        return self.route_for(key) is not None

    def route_or_fallback(self, key: str) -> Route:
        return self.route_for(key) or self.fallback

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.prefix for r in self.routes))

    @property
    def outer_prefixes(self) -> tuple[str, ...]:
        """The prefixes under which every routed key lies, none inside another (what to
        list, what to grant reads on)."""
        return outermost(self.prefixes)

    def could_hold(self, folder_key: str) -> bool:
        """Can keys below ``folder_key`` ("a/b/") match a route? (prunes the scan)"""
        return any(folder_key.startswith(p) or p.startswith(folder_key) for p in self.prefixes)

    def could_hold_any_case(self, folder_key: str) -> bool:
        """``could_hold``, ignoring case: where a key that missed by case may be."""
        lowered = folder_key.lower()
        return any(lowered.startswith(p.lower()) or p.lower().startswith(lowered) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class Miss:
    """Why no route took a key: the nearest ``route`` and ``why`` it did not match
    (``prefix``, ``suffix``, ``case``, or ``prefix and suffix``), said in ``detail``."""

    route: str
    why: str
    detail: str


def outermost(prefixes: Iterable[str]) -> tuple[str, ...]:
    """``prefixes`` without those a shorter one already covers, in their first order."""
    unique = tuple(dict.fromkeys(prefixes))
    return tuple(p for p in unique if not any(q != p and p.startswith(q) for q in unique))


def _suffix_of(key: str) -> str:
    name = key.rpartition("/")[2]
    return name[name.find(".") :] if "." in name else "(none)"


def nearest_miss(routes: tuple[Route, ...], key: str) -> Miss | None:
    """The route that came nearest to taking ``key`` (which none takes), and why it did
    not; None when there are no routes. Case first (the likeliest slip), then a route
    whose prefix fits, then one whose suffix fits, then the longest shared prefix."""
    if not routes:
        return None

    def rank(route: Route) -> tuple[int, int]:
        lowered = key.lower()
        if lowered.startswith(route.prefix.lower()) and lowered.endswith(
            tuple(s.lower() for s in route.all_suffixes())
        ):
            return (0, 0)
        shared = len(os.path.commonprefix([key, route.prefix]))  # noqa: RUF071 -- by character
        if key.startswith(route.prefix):
            return (1, -shared)
        if key.endswith(route.all_suffixes()):
            return (2, -shared)
        return (3, -shared)

    route = min(routes, key=rank)  # the first of equals: the order routes are tried in
    kind = rank(route)[0]
    suffixes = ", ".join(route.suffixes) + (" (each also .gz)" if route.gzip else "")
    if kind == 0:
        return Miss(
            route.name,
            "case",
            f"matches route {route.name!r} ({route.prefix!r} with {suffixes}) only if case is ignored;"
            " keys are case-sensitive",
        )
    if kind == 1:
        return Miss(
            route.name, "suffix", f"{_suffix_of(key)} is not one of route {route.name!r}'s suffixes: {suffixes}"
        )
    if kind == 2:
        return Miss(route.name, "prefix", f"does not start with route {route.name!r}'s prefix {route.prefix!r}")
    return Miss(
        route.name,
        "prefix and suffix",
        f"neither starts with route {route.name!r}'s prefix {route.prefix!r} nor ends with {suffixes}",
    )


def check_routes(routes: tuple[Route, ...]) -> None:
    """Refuse, in one line naming the route and the field, routes that could never
    match a key or that shadow one another. Raises ConfigError."""
    seen: dict[str, Route] = {}
    for route in routes:
        where = f"[[routes]] {route.name!r}"
        if route.name in seen:
            raise ConfigError(f"{where} name: two routes are named {route.name!r}")
        if route.prefix.startswith("/") or ".." in route.prefix.split("/"):
            raise ConfigError(f"{where} prefix {route.prefix!r} can never match: keys are relative, without '..'")
        if not route.suffixes:
            raise ConfigError(f"{where} suffixes must name at least one suffix")
        for suffix in route.suffixes:
            if not isinstance(suffix, str) or not suffix.startswith(".") or suffix == ".gz":
                raise ConfigError(f"{where} suffixes: {suffix!r} must start with '.' and name a format")
            if route.format is None and format_of_suffix(suffix) is None:
                raise ConfigError(f"{where} suffixes: {suffix!r} does not say json, jsonl or csv; set format")
        _check_records(where, route)
        for earlier in seen.values():
            if route.prefix.startswith(earlier.prefix) and all(
                s.endswith(earlier.all_suffixes()) for s in route.all_suffixes()
            ):
                raise ConfigError(
                    f"{where} prefix/suffixes can never match: route {earlier.name!r} comes first and takes "
                    f"every key it would ({earlier.prefix!r} with {', '.join(earlier.suffixes)})"
                )
        seen[route.name] = route


def _check_records(where: str, route: Route) -> None:
    formats = {route.format or format_of_suffix(s) for s in route.suffixes}
    if route.selector is not None and formats != {Format.JSON}:
        shown = route.selector.text
        raise ConfigError(f"{where} records = {shown!r} needs format json: it picks an array in one document")
    if route.records is RecordMode.LINES and route.format not in (None, Format.JSONL):
        raise ConfigError(f"{where} records = 'lines' reads JSON Lines, but format is {str(route.format)!r}")
    if Format.CSV not in formats and (route.csv != CsvDialect() or route.csv_schema):
        raise ConfigError(f"{where} csv: the route reads no CSV files (its suffixes and format say otherwise)")
