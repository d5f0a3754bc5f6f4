"""Can a delivery reach this? Webhook URLs, host names and email addresses, checked once.

The configuration is read at start; a URL that cannot work must be refused there, in
one line, and not fail every delivery later (a space in a URL passed, then each POST
failed) or raise a traceback when the engine is built (``http://[::1`` did).

Each function returns ``None`` for a usable value, else a short phrase saying what is
wrong, for the caller to wrap in its own error naming the setting. Nothing here does
I/O: no DNS look-up, no connection.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# A host-name label after IDNA encoding. "_" is allowed: container and service names
# (docker compose) use it, and resolvers accept it.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# RFC 5322 "atext" plus the dot, for the local part of an address; letters and digits
# beyond ASCII too (RFC 6531 addresses).
_LOCAL_PART = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+")


def _bad_character(text: str) -> str | None:
    """The first whitespace or control character in ``text``, described, if any."""
    for index, ch in enumerate(text):
        if ch == " ":
            return f"a space at position {index + 1}"
        if ch.isspace() or not ch.isprintable():
            return f"the character {ch!r} at position {index + 1}"
    return None


def host_problem(host: str) -> str | None:
    """Is ``host`` a host name, an IPv4 address or an (unbracketed) IPv6 address?"""
    if not host:
        return "the host is empty"
    bad = _bad_character(host)
    if bad:
        return f"the host has {bad}"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv6 address"
        return None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv4 address"
        return None
    try:
        # IDNA turns an international name into the ASCII form DNS uses; it refuses
        # empty and over-long labels.
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{host!r} is not a valid host name"
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a valid host name"
    return None


def _port_problem(port: str) -> str | None:
    if not port:
        return None  # "host:" means the scheme's default port (RFC 3986)
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        return f"the port {port!r} is not a number from 1 to 65535"
    return None


def url_problem(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Is ``url`` a URL an HTTP POST can be sent to, with one of ``schemes``?

    Checks: no whitespace or control characters; a scheme from ``schemes``; a host that
    is a host name, an IPv4 address or a well-formed bracketed IPv6 literal (with an
    optional zone); nothing between ``]`` and the port; a port from 1 to 65535; and a
    path and query in ASCII (http.client sends them as they are).
    """
    bad = _bad_character(url)
    if bad:
        return f"has {bad} (percent-encode it, e.g. %20 for a space)"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed "[" ("Invalid IPv6 URL")
        return f"is not a valid URL ({exc})"
    if parts.scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        return f"must start with {wanted}"
    # userinfo@host:port; the password may itself hold "@", so split at the last one
    hostport = parts.netloc.rpartition("@")[2]
    if not hostport:
        return "has no host"
    if hostport.startswith("["):
        literal, closed, rest = hostport[1:].partition("]")
        if not closed:
            return "has an IPv6 address without its closing ']'"
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return f"has a malformed IPv6 address [{literal}]"
        if rest and not rest.startswith(":"):
            return f"has {rest!r} after the IPv6 address; only ':port' may follow it"
        port = rest[1:]
    else:
        if "[" in hostport or "]" in hostport:
            return "has a '[' or ']' outside an IPv6 address"
        host, _, port = hostport.partition(":")
        if ":" in port:
            return "has an IPv6 address without brackets; write it as http://[::1]:8080/"
        if not host:
            return "has no host"
        problem = host_problem(host)
        if problem:
            return f"has an invalid host: {problem}"
    problem = _port_problem(port)
    if problem:
        return f"has an invalid port: {problem}"
    if not (parts.path + parts.query).isascii():
        return "has non-ASCII characters in its path or query; percent-encode them"
    return None


def address_problem(address: str, *, display_name: bool = True) -> str | None:
    """Is ``address`` plausibly an email address: ``local@domain``, or with ``display_name``
    also ``Name <local@domain>``? The domain is a host name or an address literal
    (``[192.0.2.1]``); no look-up is made.
    """
    for index, ch in enumerate(address):
        if ch != " " and (ch.isspace() or not ch.isprintable()):
            return f"has the character {ch!r} at position {index + 1}"
    if display_name and address.endswith(">") and "<" in address:
        name, _, inner = address[:-1].rpartition("<")
        if any(c in name for c in '<>"'):
            return "has a display name with '<', '>' or '\"' in it"
        address = inner
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "is not of the form name@domain"
    if not _LOCAL_PART.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return f"has an invalid part before the '@': {local!r}"
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1].removeprefix("IPv6:")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return f"has an invalid address literal {domain!r}"
        return None
    problem = host_problem(domain)
    return f"has an invalid domain: {problem}" if problem else None
