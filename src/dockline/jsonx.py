"""Exact JSON: numbers keep their exact value, output is canonical.

The rule: a parsed number is an ``int`` (any size), a ``Decimal`` parsed from its
own text, or a ``float`` only where that float is provably the exact value of the
text. ``loads`` takes orjson's fast path when a cheap scan shows every number has at
most 15 digits and no tiny exponent; then each float's shortest form is
the number written (15 digits always survive a round trip through a double). Anything
else goes the exact ``Decimal`` way. ``dumps`` writes every number in its shortest
form, so both paths give the same canonical bytes for the same values (``1.10`` and
``1.1`` are the same number, as in DynamoDB). Floats never reach DynamoDB:
``exact_payload`` turns them into Decimals first.
"""

from __future__ import annotations

import json
import re
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

import orjson

from dockline.errors import PermanentError

_ORJSON_OPTS = orjson.OPT_SORT_KEYS
# Unsafe for a double: a run of 16 digits/dots (it may hold 16 significant digits, one more
# than always survives a double), and an exponent of -100 or below (it may underflow).


# Digits and dots become "0", e/E "e", "-" stays, all else " ": then two substring
# searches (memchr-fast) replace a regex scan that cost ~14 ns a byte.
_NUMBER_SHAPE = bytes(
    ord("0") if c in b"0123456789." else ord("e") if c in b"eE" else ord("-") if c == ord("-") else ord(" ")
    for c in range(256)
)


def fast_path_safe(data: bytes) -> bool:
    """True when every number in ``data`` survives a double exactly (see above).

    One scan can vouch for many JSON Lines at once, which is much cheaper than
    a scan per line. Text inside strings can only make it say False (then the
    careful parser runs), never True wrongly.
    """
    shape = data.translate(_NUMBER_SHAPE)
    return b"0000000000000000" not in shape and b"e-000" not in shape


def loads_vouched(data: bytes) -> Any:
    """Parse ``data`` that ``fast_path_safe`` accepted (alone or as part of a larger block)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return loads_exact(data)  # the exact parser gives the precise reason (or parses it)


def loads(data: bytes) -> Any:
    """Parse JSON bytes exactly (see the module docstring). Raises PermanentError."""
    if fast_path_safe(data):
        return loads_vouched(data)
    return loads_exact(data)


def exact_payload(value: Any) -> Any:
    """The same value with every float as the Decimal of its shortest form (exact, see above)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact_payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact_payload(v) for v in value]
    return value


class JSONSyntaxError(PermanentError):
    """Bad JSON at a known place: ``what`` is the reason alone, so a caller that knows a
    better place (a JSON Lines file's own line number) can name the place once."""

    def __init__(self, what: str, line: int, column: int) -> None:
        super().__init__(f"{what} at line {line}, column {column}")
        self.what = what
        self.line = line
        self.column = column


def _reject_constant(name: str) -> Any:
    raise PermanentError(f"{name} is not a valid JSON number (numbers must be finite)")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON keeping numbers exact. Raises PermanentError with a one-line reason."""
    if isinstance(text, bytes):
        text = decode_utf8(text)
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise PermanentError("JSON nesting is too deep to parse safely") from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise PermanentError(f"not valid JSON: {exc}") from None


def decode_utf8(data: bytes) -> str:
    """Bytes to text, strictly UTF-8 (a leading BOM is allowed). Raises PermanentError."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:8192]:
            raise PermanentError("the file is binary data, not UTF-8 JSON text") from None
        raise PermanentError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None


def _syntax_error(exc: json.JSONDecodeError) -> PermanentError:
    if exc.msg == "Extra data":
        return JSONSyntaxError("trailing data after the JSON document", exc.lineno, exc.colno)
    end = len(exc.doc.rstrip())
    if exc.pos >= end and exc.doc.strip():
        # Where the content ends, not past a trailing newline ("line 2, column 1" of a one-line file).
        line = exc.doc.count("\n", 0, end) + 1
        column = end - exc.doc.rfind("\n", 0, end)
        return JSONSyntaxError("truncated JSON: the document ends early", line, column)
    if "\x00" in exc.doc[:8192]:
        return PermanentError("the file is binary data, not JSON text")
    return JSONSyntaxError(f"not valid JSON: {exc.msg}", exc.lineno, exc.colno)


_WIDE = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # normalize() any exponent, round nothing


def _may_hold_integral_float(text: str) -> bool:
    """Could ``text`` (orjson output) hold an integral float, written "26.0"? A string
    that merely contains ".0," costs only a needless walk, never a wrong result."""
    return _INTEGRAL_FLOAT.search(text) is not None or text.endswith(".0")


# "26.0" as orjson writes an integral float: the fraction ".0" then a delimiter. One regex
# pass over a whole block measured ~4x faster than three substring searches (many ".0"s).
_INTEGRAL_FLOAT = re.compile(r"\.0[,}\]\n]")


def integral_float_offsets(text: str) -> list[int]:
    """Where ``text`` (orjson output, maybe many documents joined) may hold an integral
    float, in order. One pass over the whole text: far cheaper than a test per document
    when, as usual, there are none or few. A string holding ".0," is a harmless false hit."""
    return [match.start() for match in _INTEGRAL_FLOAT.finditer(text)]


def _integral_as_int(value: Any) -> Any:
    """``value`` with every integral float as an int: 26.0 and 26 are one number."""
    if type(value) is float:  # orjson writes floats from 1e16 up as 1e+16: leave those be
        return int(value) if value.is_integer() and -1e16 < value < 1e16 else value
    if isinstance(value, dict):
        return {k: _integral_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_as_int(v) for v in value]
    return value


def shortest_numbers(canonical: str, value: Any) -> str:
    """``canonical`` (orjson's output for ``value``) with integral floats written as
    integers, so a number's text depends on its value only: ``26``, ``26.0`` and
    ``26.00`` are all ``26``, as in DynamoDB. Costs one substring test when there is
    nothing to do."""
    if not _may_hold_integral_float(canonical):
        return canonical
    return dumps(_integral_as_int(value)).decode()


def _fragment(value: Any) -> Any:
    """``orjson``'s ``default``: a Decimal in its canonical form. The common number, a
    plain fraction such as ``12.34`` (what a transform's Decimals mostly are), is written
    from its own text, which is already that form (``tests/unit/test_jsonx_decimal.py``
    holds it to ``_fragment_exact``'s bytes); everything else takes the exact way."""
    if type(value) is Decimal:
        text = str(value)
        # Fixed-point with a fraction not ending in 0, at most 15 digits (16 characters with
        # the dot: the double nearest to it prints as these very digits, its shortest form)
        # and 0.001 <= |value| < 1e15 (where orjson writes doubles without an exponent).
        if (
            len(text) <= 16
            and "." in text
            and text[-1] != "0"
            and "E" not in text
            and not text.startswith(("0.000", "-0.000"))
        ):
            return orjson.Fragment(text)
    return _fragment_exact(value)


def _fragment_exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Shortest form, as the fast path writes it, whenever a double holds the value exactly.
        if value.is_finite() and len(value.as_tuple().digits) <= 15:
            as_float = float(value)
            if Decimal(repr(as_float)) == value:
                return _integral_as_int(as_float)
        # 26.00 is the number 26; a huge exponent stays short (1E+400, not 401 digits).
        if value.is_finite() and value.adjusted() < 64 and value == value.to_integral_value():
            return orjson.Fragment(str(int(value)))
        return orjson.Fragment(str(value.normalize(_WIDE)))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _big_ints_as_fragments(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return orjson.Fragment(str(value)) if abs(value) >= 2**63 else value
    if isinstance(value, dict):
        return {k: _big_ints_as_fragments(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_fragments(v) for v in value]
    return value


def dumps(value: Any, *, indent: bool = False) -> bytes:
    """Canonical JSON (sorted keys, no spaces); Decimals and big ints stay exact, and
    every number is written in the shortest form of its value (``26.0`` as ``26``)."""
    opts = _ORJSON_OPTS | (orjson.OPT_INDENT_2 if indent else 0)
    out = _dumps(value, opts)
    if b".0" in out and _may_hold_integral_float(out.decode()):
        fixed = _integral_fractions_dropped(out)
        return fixed if fixed is not None else _dumps(_integral_as_int(value), opts)
    return out


# orjson's "26.0" (the ".0" of an integral float, then a delimiter or the end), in its bytes.
_INTEGRAL_FRACTION = re.compile(rb"\.0(?=[,}\]\n]|\Z)")


def _integral_fractions_dropped(out: bytes) -> bytes | None:
    """``dumps``'s output with each integral float written as an integer, from the text alone:
    the same bytes as dumping ``_integral_as_int(value)``, without walking the value (a walk of
    an order's 70 values cost more than its parse). None when a string may hide a quote (a
    backslash anywhere): then the walk decides.

    Sound because orjson writes a float as "<digits>.0" exactly when it is integral and
    below 1e16 in size (from 1e16 up it writes "1e+16"), a Decimal's or a big int's Fragment
    never ends in ".0", and, with no backslash in the output, every '"' opens or closes a
    string: an even count of them before a match puts it outside every string."""
    if b"\\" in out:
        return None
    pieces: list[bytes] = []
    start = quotes = scanned = 0
    for match in _INTEGRAL_FRACTION.finditer(out):
        at = match.start()
        quotes += out.count(b'"', scanned, at)
        scanned = at
        if quotes % 2:
            continue  # inside a string: text, not a number
        if out[at - 2 : at] == b"-0":  # only "-0.0": a "-" inside a number follows an "e"
            pieces += (out[start : at - 2], b"0")  # -0.0 is the number 0, as int(-0.0)
        else:
            pieces.append(out[start:at])
        start = at + 2
    if not pieces:
        return out
    pieces.append(out[start:])
    return b"".join(pieces)


def _dumps(value: Any, opts: int) -> bytes:
    try:
        return orjson.dumps(value, default=_fragment, option=opts)
    except orjson.JSONEncodeError as exc:
        if "Integer exceeds" not in str(exc):
            raise PermanentError(f"cannot serialise the document: {exc}") from None
        return orjson.dumps(_big_ints_as_fragments(value), default=_fragment, option=opts)
