"""Issue 8, Why 13: checking a webhook URL, host or address never raises, whatever the text.

The bug was an exception escaping from URL parsing (``http://[::1`` -> ValueError) as a
traceback. The cases themselves are in test_config.py; these properties make sure no
text at all gets past the checks as an exception.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dockline import endpoints
from dockline.config import parse_settings
from dockline.errors import ConfigError

# URL-ish text: mostly the characters that matter to a URL parser, some of anything.
url_text = st.text(st.sampled_from("hpst:/[]@%?#.-_0123456789abcdefABCDEF:: \x1b\r\n\u202eü")) | st.text()
prefixed = st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://", ""]), url_text)
# URLs built from parts, good and bad, so that many are accepted and the properties bite.
structured = st.builds(
    lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}{path}",
    st.sampled_from(["http", "https", "ftp", "HTTP"]),
    st.sampled_from(["", "u:p@", "u:p@ss@", "@"]),
    st.sampled_from(
        [
            "example.com",
            "127.0.0.1",
            "[::1]",
            "[fe80::1%25eth0]",
            "[zz::1]",
            "[::1",
            "::1",
            "a_b",
            "-x-",
            "ü.example",
            "",
            "999.1.1.1",
            "[127.0.0.1]",
            "ex ample.com",
        ]
    ),
    st.sampled_from(["", ":", ":0", ":80", ":65535", ":65536", ":8a", ":+1", "x"]),
    st.one_of(st.just(""), st.just("/hook?x=1#f"), st.text().map(lambda t: "/" + t)),
)


@given(prefixed | structured)
def test_why13_url_check_never_raises(url: str) -> None:
    problem = endpoints.url_problem(url)
    assert problem is None or (problem and "\n" not in problem)


@given(url_text)
def test_why13_host_and_address_checks_never_raise(text: str) -> None:
    for problem in (
        endpoints.host_problem(text),
        endpoints.address_problem(text),
        endpoints.address_problem(text + "@x"),
    ):
        assert problem is None or (problem and "\n" not in problem)


@given(prefixed | structured)
def test_why13_any_webhook_url_loads_or_is_one_config_error(url: str) -> None:
    try:
        parse_settings({"local": {"subscriptions": [{"type": "webhook", "url": url}]}})
    except ConfigError as exc:
        assert "\n" not in str(exc)


@given(structured)
def test_why13_an_accepted_url_has_a_host_port_and_sendable_target(url: str) -> None:
    from urllib.parse import urlsplit

    if endpoints.url_problem(url) is not None:
        return
    parts = urlsplit(url)  # does not raise for what was accepted
    assert parts.scheme in ("http", "https") and parts.hostname
    assert parts.port is None or 1 <= parts.port <= 65535
    (parts.path + parts.query).encode("ascii")  # http.client can send it
    assert not any(ch.isspace() or not ch.isprintable() for ch in url)
