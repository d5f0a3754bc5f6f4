"""Who may use the console: checked on every request, the page and the API alike.

- **A token** when one is set (always off loopback): ``Authorization: Bearer T``, or the
  cookie that opening ``/?token=T`` sets (HttpOnly, SameSite=Strict), after which the
  page is reloaded without the token in its address. Anything else is a 401.
- **Loopback Host names only** when serving on loopback: another site's page cannot
  reach the console by pointing a name of its own at 127.0.0.1 (DNS rebinding).
- **A header on every POST** (``X-Dockline-Console: 1``): a form on another site can
  make the browser POST to 127.0.0.1, but it cannot add a header without a CORS
  preflight, which the console never answers. So the buttons act only from its own page.
- **Headers on every answer**: a Content-Security-Policy that runs only the console's own
  scripts (user data is shown as text by the page, and even markup that slipped through
  could not run), no framing, no referrer (the token never leaks in one), no caching.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "dockline_console_token"
ACTION_HEADER = "x-dockline-console"
_SAFE_METHODS = ("GET", "HEAD")
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8686
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Access:
    """ASGI middleware enforcing the rules above. ``token`` None: no token asked
    (loopback only: the CLI never serves a network address without one)."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._check(scope)
        if refused is not None:
            await _with_headers(refused, scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.loopback and not is_loopback(_host_name(headers.get("host", ""))):
            return PlainTextResponse("403: this console answers only to localhost names\n", status_code=403)
        if self.token is not None:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            offered = [value for name, value in query if name == "token"]
            if offered and scope["method"] in _SAFE_METHODS and self._valid(offered[-1]):
                return self._login(scope, [(n, v) for n, v in query if n != "token"])
            if not self._valid(_bearer(headers) or _cookie(headers)):
                return PlainTextResponse(
                    "401: this console needs its token: open the address `dockline console` printed"
                    " (…/?token=…), or send `Authorization: Bearer TOKEN`\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if scope["method"] not in _SAFE_METHODS and headers.get(ACTION_HEADER) != "1":
            return PlainTextResponse(f"403: actions need the {ACTION_HEADER} header (the console's own page)\n", 403)
        return None

    def _valid(self, offered: str | None) -> bool:
        assert self.token is not None
        return offered is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def _login(self, scope: Scope, rest: list[tuple[str, str]]) -> Response:
        """Set the cookie and reload without the token in the address (history, screen)."""
        # One leading slash: "//host/..." would send the browser to another site.
        path = "/" + (scope.get("root_path", "") + scope["path"]).lstrip("/")
        target = path + ("?" + urlencode(rest) if rest else "")
        response = RedirectResponse(target, status_code=303)
        assert self.token is not None
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        return response


def _bearer(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _cookie(headers: Headers) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _with_headers(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    response.raw_headers.extend(_HEADERS)
    await response(scope, receive, send)
