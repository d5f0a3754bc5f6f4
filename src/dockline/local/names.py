"""Which file names can be object keys, and how the others are shown and refused.

A name read from the disk is whatever bytes its writer chose. Python hands them over
as ``str`` with undecodable bytes kept as lone surrogates (``surrogateescape``). A name
that cannot be a key is not an error of the run: the scan lists that one object under
a printable form of its name, with a *refusal version* that carries the reasons, and
``FolderStore.open`` refuses it with them. The core then settles it as failed.
"""

from __future__ import annotations

import re

from dockline.errors import UsageError

MAX_KEY_BYTES = 1024  # S3's limit, in bytes of UTF-8

# Each problem has a short code (it goes into the version id, so it must stay free of
# '-') and the words a person reads.
_REASONS = {
    "utf8": "it holds bytes that are not valid UTF-8",
    "backslash": "it holds a backslash",
    "control": "it holds a control character",
    "long": f"it is longer than {MAX_KEY_BYTES:,} bytes of UTF-8",
    "space": "it begins or ends with white space",
    "denied": "permission denied listing this folder: the files in it cannot be read",
}
_REFUSED = "refused-"
_REFUSED_VERSION = re.compile(r"refused-([a-z0-9+]+)-\d+-\d+\Z")


def check_key(key: str) -> str:
    """Validate an object key for the local bucket. Raises UsageError."""
    if not key or key.strip() != key:
        raise UsageError(f"invalid key {key!r}: empty or with leading/trailing spaces")
    if key.startswith(("/", "\\")) or (len(key) > 1 and key[1] == ":"):
        raise UsageError(f"invalid key {key!r}: keys are relative paths inside the bucket, not absolute paths")
    if any(part in ("..", ".") for part in key.split("/")) or "\\" in key or "\x00" in key:
        raise UsageError(f"invalid key {key!r}: it would escape the bucket ('..', '.', '\\' are not allowed)")
    if key.endswith("/"):
        raise UsageError(f"invalid key {key!r}: a key must name a file, not a folder")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise UsageError(f"invalid key: S3 keys are at most {MAX_KEY_BYTES} bytes")
    return key


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _is_undecoded(char: str) -> bool:
    return 0xDC80 <= ord(char) <= 0xDCFF  # a byte surrogateescape could not decode


def name_problems(name: str) -> tuple[str, ...]:
    """The codes of what keeps a name (as read from the disk) from being a key; () if nothing."""
    if name.isascii() and name.isprintable() and "\\" not in name and len(name) <= MAX_KEY_BYTES:
        # The common case in one pass of C code; only the white space rule is left.
        return () if name.strip() == name else ("space",)
    problems: list[str] = []
    if any(_is_undecoded(c) for c in name):
        problems.append("utf8")
    if "\\" in name:
        problems.append("backslash")
    if any(_is_control(c) for c in name):
        problems.append("control")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
        problems.append("long")
    if name.strip() != name:
        problems.append("space")
    return tuple(problems)


def printable(name: str) -> str:
    r"""The name with what cannot be shown made visible: an undecodable byte as ``\xNN``
    (80-ff), a control character as ``\xNN`` (00-1f, 7f) or ``\u00NN`` (80-9f), a
    backslash as ``\\``. Reversible (``from_printable``), and never a valid key when
    the name was not one: it then holds a backslash, or is too long."""
    if "\\" not in name and not any(_is_undecoded(c) or _is_control(c) for c in name):
        return name
    shown: list[str] = []
    for char in name:
        if char == "\\":
            shown.append("\\\\")
        elif _is_undecoded(char):
            shown.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif _is_control(char):
            shown.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}")
        else:
            shown.append(char)
    return "".join(shown)


_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def from_printable(shown: str) -> str:
    """The name as read from the disk (undecodable bytes as lone surrogates) back from
    its printable form."""

    def original(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape == "\\":
            return "\\"
        code = int(escape[1:], 16)
        return chr(0xDC00 + code) if escape[0] == "x" and code >= 0x80 else chr(code)

    return _ESCAPE.sub(original, shown) if "\\" in shown else shown


def refused_version(problems: tuple[str, ...], inode: int, mtime_ns: int) -> str:
    """A version id for an object refused for its name: it carries the reasons to the reader.

    A new inode or mtime makes a new version, as for any special file.
    """
    return f"{_REFUSED}{'+'.join(problems)}-{inode}-{mtime_ns}"


def refusal(version: str) -> str | None:
    """The reason an object with this version is refused, or None for an ordinary version."""
    if not version.startswith(_REFUSED):
        return None
    match = _REFUSED_VERSION.match(version)
    codes = match.group(1).split("+") if match else []
    reasons = [_REASONS.get(code, code) for code in codes] or ["its name is refused"]
    if codes == ["denied"]:
        return reasons[0]
    return "its name cannot be an object key: " + "; ".join(reasons)
