"""JSON Pointers (RFC 6901) that pick a record array or an id out of a document.

``Pointer.parse("/order/id")`` once, at configuration time; ``resolve`` per record. A
path that is not there raises ``MissingPath`` with a reason a person can act on ("no
key 'id' in the object at /order"), never a bare KeyError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


class MissingPath(LookupError):
    """The pointer's path is not in this document; ``str()`` says where it stops."""


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer_text(tokens: Sequence[str | int]) -> str:
    """The JSON Pointer of a path (e.g. a validator's error path); "" is the whole document."""
    return "".join("/" + _escape(str(token)) for token in tokens)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


@dataclass(frozen=True, slots=True)
class Pointer:
    """A parsed JSON Pointer. ``text`` is as written; ``tokens`` unescaped."""

    text: str
    tokens: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Pointer:
        """Raises ValueError with a one-line reason for text that is not a JSON Pointer."""
        if not isinstance(text, str):
            raise ValueError(f'{text!r} is not a JSON Pointer (a string like "/order/id")')
        if text and not text.startswith("/"):
            raise ValueError(f'{text!r} is not a JSON Pointer: it must start with "/" (e.g. "/{text}")')
        if _BAD_ESCAPE.search(text):
            raise ValueError(f'{text!r} is not a JSON Pointer: "~" must be written "~0" ("/" as "~1")')
        tokens = tuple(t.replace("~1", "/").replace("~0", "~") for t in text.split("/")[1:])
        return cls(text, tokens)

    def resolve(self, document: Any) -> Any:
        """The value at this pointer. Raises MissingPath."""
        value = document
        for depth, token in enumerate(self.tokens):
            if type(value) is dict:
                if token not in value:
                    raise MissingPath(f"no key {token!r} in the object at {self._upto(depth)}")
                value = value[token]
            elif type(value) is list:
                if not _INDEX.fullmatch(token):
                    raise MissingPath(f"{token!r} is not an index of the array at {self._upto(depth)}")
                if int(token) >= len(value):
                    where = self._upto(depth)
                    raise MissingPath(f"the array at {where} has {len(value)} elements, no index {token}")
                value = value[int(token)]
            else:
                raise MissingPath(f"{self._upto(depth)} is {_kind(value)}, not an object or array")
        return value

    def _upto(self, depth: int) -> str:
        return pointer_text(self.tokens[:depth]) or "the top level"


ID_POINTER = Pointer("/id", ("id",))


@dataclass(frozen=True, slots=True)
class IdSelector:
    """Where a record's id is: one pointer, or several whose values are joined with "#".

    The default, ``/id``, keeps today's rule: a record without one is keyed by its place
    in the file. A configured id must be there: a record without it is a bad record.
    """

    pointers: tuple[Pointer, ...] = (ID_POINTER,)

    @property
    def is_default(self) -> bool:
        return self.pointers == (ID_POINTER,)

    @property
    def text(self) -> str:
        return " # ".join(p.text for p in self.pointers)

    @classmethod
    def parse(cls, value: str | Sequence[str]) -> IdSelector:
        """From a pointer or a list of pointers. Raises ValueError."""
        texts = [value] if isinstance(value, str) else list(value)
        if not texts:
            raise ValueError("must name at least one JSON Pointer")
        pointers = tuple(Pointer.parse(t) for t in texts)
        if any(not p.tokens for p in pointers):
            raise ValueError('"" points at the whole record, which cannot be an id')
        return cls(pointers)

    def values(self, document: Any) -> list[Any] | None:
        """The id's parts, or None when the default ``/id`` is absent. Raises MissingPath."""
        if self.is_default:
            value = document.get("id", _ABSENT) if type(document) is dict else _ABSENT
            return None if value is _ABSENT else [value]
        parts = []
        for pointer in self.pointers:
            try:
                parts.append(pointer.resolve(document))
            except MissingPath as exc:
                raise MissingPath(f"id {pointer.text} is missing: {exc}") from None
        return parts


_ABSENT = object()
DEFAULT_IDS = IdSelector()
