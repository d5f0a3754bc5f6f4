"""JSON Lines a block at a time: the fast path of big files.

A block is about a megabyte of lines (``LINE_BLOCK``). One scan vouches for its numbers
(``jsonx.fast_path_safe``); a block of well-formed objects with plain ids then becomes records
in a few C-level passes (parse each line, one canonical dump of the whole block, split)
instead of a Python loop doing every step per line. Anything unusual in a block (a blank or
bad line, not an object, an unusual id, an oversized record) sends the whole block the careful
way, line by line (``RecordStream``), which gives the same records for the lines this path
would have taken: the fast path only ever declines, never decides differently.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count, repeat
from typing import Any, BinaryIO

import orjson

from dockline.jsonx import fast_path_safe, integral_float_offsets, loads, loads_vouched, shortest_numbers
from dockline.models import Record
from dockline.records import RESERVED_PK_PREFIX

LINE_BLOCK = 1 << 20  # JSON Lines are read and vetted about a megabyte at a time
_MISSING = object()
# Between two documents in one dump: orjson writes a Fragment's bytes as they are, and escapes
# every control character inside strings, so a raw NUL in its output is only ever this.
_SEPARATOR = orjson.Fragment(b"\x00")
_SPLIT = ",\x00,"


def plain_block(lines: list[bytes], key: str, number: int, max_inline: int, route: str) -> list[Record] | None:
    """Records for a block of JSON Lines (``number`` lines came before it) in one pass, or
    None when any line needs care. The caller has vouched for the numbers
    (``fast_path_safe``), so orjson's values are exact and orjson's own output is canonical."""
    with _collector_paused():
        return _plain_block(lines, key, number, max_inline, route)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a block is built. A block is some 100,000 new,
    acyclic objects (dicts, strings, floats, records) that live until the ledger has them;
    the collector would walk them again and again as they pile up (a third of the decoding
    time, measured), and can free none of them. It runs as usual once the block is made."""
    if not gc.isenabled():  # someone wants it off: leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _plain_block(lines: list[bytes], key: str, number: int, max_inline: int, route: str) -> list[Record] | None:
    try:
        documents = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None
    if set(map(type, documents)) != {dict}:
        return None
    canonicals = _canonicals(documents)
    if canonicals is None:
        return None
    texts, ascii_only = canonicals
    sizes = list(map(len, texts)) if ascii_only else [len(text.encode()) for text in texts]
    if max(sizes) > max_inline:
        return None
    pks = _pks(documents, key, number)
    if pks is None:
        return None
    return list(
        map(Record, pks, documents, repeat(None), count(number + 1), repeat(False), sizes, texts, repeat(route))
    )


def _canonicals(documents: list[dict[str, Any]]) -> tuple[list[str], bool] | None:
    """Each document's canonical text (sorted keys, integral floats as integers, see ``jsonx``),
    from one dump of the whole block split at the separators, and whether all are ASCII."""
    parts: list[Any] = [_SEPARATOR] * (2 * len(documents) - 1)
    parts[::2] = documents
    try:
        blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS).decode()[1:-1]
    except orjson.JSONEncodeError:  # cannot happen for parsed JSON; the careful way says why
        return None
    texts = blob.split(_SPLIT)
    if len(texts) != len(documents):
        return None
    # The few documents with an integral float ("26.0"), found by one search of the whole block.
    index, start = 0, 0
    for at in integral_float_offsets(blob):
        index += blob.count("\x00", start, at)
        start = at
        texts[index] = shortest_numbers(texts[index], documents[index])
    return texts, blob.isascii()


def _pks(documents: list[dict[str, Any]], key: str, number: int) -> list[str] | None:
    """The ledger key of each document: its id when every id is a plain one (a short string,
    not blank, not reserved), ``key#line`` when it has none; None when any id needs care."""
    ids = list(map(dict.get, documents, repeat("id"), repeat(_MISSING)))
    kinds = set(map(type, ids))
    if kinds == {str}:
        lengths = set(map(len, ids))
        if min(lengths) > 0 and max(lengths) <= 256 and not any(map(str.isspace, ids)):
            joined = "\x00" + "\x00".join(ids)  # a NUL inside an id can only cause a needless decline
            if "\x00" + RESERVED_PK_PREFIX not in joined:
                return ids
        return None
    pks: list[str] = []
    for offset, pk in enumerate(ids, start=number + 1):
        if pk is _MISSING:
            pks.append(f"{key}#{offset}")
        elif type(pk) is str and 0 < len(pk) <= 256 and not pk.isspace() and pk[:9] != RESERVED_PK_PREFIX:
            pks.append(pk)
        else:
            return None
    return pks


def vouched_lines(source: BinaryIO) -> Iterator[tuple[int, bytes, Callable[[bytes], Any]]]:
    """(number, line, parser) for each line: one ``fast_path_safe`` scan vouches for about a
    megabyte of lines, far cheaper than ``loads``'s scan per line (same values, same errors)."""
    number = 0
    while lines := source.readlines(LINE_BLOCK):
        parse = loads_vouched if fast_path_safe(b"".join(lines)) else loads
        for line in lines:
            number += 1
            yield number, line, parse
