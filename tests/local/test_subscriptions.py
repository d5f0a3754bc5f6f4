"""Webhook and email subscriptions against real servers on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockline import __version__, config
from dockline.errors import ConfigError, DocklineError, TransientError
from dockline.local.subscriptions import (
    DeliveryError,
    EmailSubscription,
    Subscription,
    WebhookSubscription,
    build_subscriptions,
    deliver_with_retry,
    delivery_key,
)
from dockline.models import Notification

NOTE = Notification(
    subject="Processed incoming/a.json",
    message="File processed: incoming/a.json (1 record)",
    attributes={"status": "processed", "key": "incoming/a.json"},
)
PUBLISHED_AT = "2026-11-27T01:02:03.456Z"


# --- a real HTTP server -------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: Message  # looked up without regard to case, as HTTP does
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    requests: list[Request] = field(default_factory=list)


@contextmanager
def http_receiver(*statuses: int, path: str = "/hook") -> Iterator[Receiver]:
    """A ThreadingHTTPServer answering ``statuses`` in turn (the last one repeats)."""
    receiver = Receiver(url="", statuses=list(statuses) or [200])

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            receiver.requests.append(Request(self.command, self.path, self.headers, self.rfile.read(length)))
            status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://elsewhere.invalid/hook")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_GET = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts connections (in the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield int(sock.getsockname()[1])


def webhook(url: str, **kwargs: Any) -> WebhookSubscription:
    return WebhookSubscription(config.WebhookSubscription(url=url, **kwargs))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- webhook --------------------------------------------------------------------------


def test_webhook_posts_the_notification_as_json_with_idempotency_headers() -> None:
    # GIVEN a receiver and a subscription with a custom header
    with http_receiver(200) as receiver:
        sub = webhook(receiver.url + "?team=ops", headers={"X-Team": "ops"}, timeout_seconds=2.0)

        # WHEN one notification is delivered
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=7)

    # THEN it arrived once, as a JSON POST to the configured path with every header
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hook?team=ops"
    assert request.json() == {
        "subject": NOTE.subject,
        "message": NOTE.message,
        "attributes": {"status": "processed", "key": "incoming/a.json"},
        "published_at": PUBLISHED_AT,
        "id": 7,
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"dockline/{__version__}"
    assert request.headers["X-Dockline-Notification-Id"] == "7"
    assert request.headers["Idempotency-Key"] == delivery_key(published_at=PUBLISHED_AT, notification_id=7)
    assert request.headers["X-Team"] == "ops"
    assert sub.name == f"webhook:{receiver.url}"


def test_the_idempotency_key_is_stable_per_notification_and_differs_between_them() -> None:
    # GIVEN / WHEN keys for the same and for another notification
    first = delivery_key(published_at=PUBLISHED_AT, notification_id=1)
    again = delivery_key(published_at=PUBLISHED_AT, notification_id=1)
    other = delivery_key(published_at=PUBLISHED_AT, notification_id=2)

    # THEN a redelivery repeats its key and another notification has its own
    assert first == again
    assert first != other


def test_custom_headers_override_defaults_without_regard_to_case() -> None:
    # GIVEN a subscription that sets its own user agent in lower case
    with http_receiver(204) as receiver:
        sub = webhook(receiver.url, headers={"user-agent": "custom/1"})

        # WHEN it delivers
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN only the configured value was sent
    [request] = receiver.requests
    assert request.headers["User-Agent"] == "custom/1"


def test_a_server_error_is_retried_and_the_notification_delivered_once() -> None:
    # GIVEN a receiver answering 500 and then 200
    sleeps = Sleeps()
    with http_receiver(500, 200) as receiver:
        sub = webhook(receiver.url)

        # WHEN delivered with retries
        result = deliver_with_retry(sub, NOTE, published_at=PUBLISHED_AT, notification_id=3, sleep=sleeps)

    # THEN the second attempt succeeded after one short backoff, with the same key both times
    assert result == (True, None, 2)
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.2
    assert [r.method for r in receiver.requests] == ["POST", "POST"]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_retryable_statuses_are_transient(status: int) -> None:
    # GIVEN a receiver that keeps answering a retryable status
    with http_receiver(status) as receiver:
        sub = webhook(receiver.url)

        # WHEN delivered directly
        with pytest.raises(TransientError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the error names the subscription and the status
    assert str(caught.value).startswith(f"{sub.name}: answered HTTP {status}")


def test_retries_stop_after_the_given_attempts_with_growing_backoff() -> None:
    # GIVEN a receiver that is down for good
    sleeps = Sleeps()
    with http_receiver(503) as receiver:
        sub = webhook(receiver.url)

        # WHEN delivered with three attempts
        delivered, error, attempts = deliver_with_retry(
            sub, NOTE, published_at=PUBLISHED_AT, notification_id=1, attempts=3, sleep=sleeps
        )

    # THEN three requests were made, two backoffs slept, and the last error is reported
    assert (delivered, attempts, len(receiver.requests)) == (False, 3, 3)
    assert error is not None
    assert "HTTP 503" in error
    assert len(sleeps) == 2
    assert sleeps[0] <= 0.2
    assert sleeps[1] <= 0.4


def test_a_client_error_is_permanent_and_not_retried() -> None:
    # GIVEN a receiver answering 404
    sleeps = Sleeps()
    with http_receiver(404) as receiver:
        sub = webhook(receiver.url)

        # WHEN delivered directly, and with retries
        with pytest.raises(DocklineError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)
        result = deliver_with_retry(sub, NOTE, published_at=PUBLISHED_AT, notification_id=1, sleep=sleeps)

    # THEN it is a permanent DeliveryError and the retry helper gave up after one attempt
    assert isinstance(caught.value, DeliveryError)
    assert not isinstance(caught.value, TransientError)
    assert str(caught.value) == f"{sub.name}: answered HTTP 404 Not Found"
    assert result == (False, f"{sub.name}: answered HTTP 404 Not Found", 1)
    assert sleeps == []
    assert len(receiver.requests) == 2


def test_a_redirect_is_not_followed() -> None:
    # GIVEN a receiver that redirects
    with http_receiver(302) as receiver:
        sub = webhook(receiver.url)

        # WHEN delivered
        with pytest.raises(DeliveryError, match="redirects are not followed"):
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the POST was not replayed anywhere as a GET
    assert [r.method for r in receiver.requests] == ["POST"]


def test_a_closed_port_is_a_transient_connection_refused() -> None:
    # GIVEN a URL where nothing listens
    sub = webhook(f"http://127.0.0.1:{closed_port()}/hook")
    sleeps = Sleeps()

    # WHEN delivered directly, and with retries
    with pytest.raises(TransientError) as caught:
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)
    result = deliver_with_retry(sub, NOTE, published_at=PUBLISHED_AT, notification_id=1, sleep=sleeps)

    # THEN the error is one clear line, and every attempt was used
    assert str(caught.value) == f"{sub.name}: connection refused"
    assert result == (False, f"{sub.name}: connection refused", 3)


def test_a_receiver_that_never_answers_times_out_as_transient() -> None:
    # GIVEN a listener that accepts and never answers, and a short timeout
    with silent_listener() as port:
        sub = webhook(f"http://127.0.0.1:{port}/hook", timeout_seconds=0.2)

        # WHEN delivered
        with pytest.raises(TransientError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the error says how long it waited
    assert str(caught.value) == f"{sub.name}: no answer within 0.2s"


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_the_name() -> None:
    # GIVEN a URL with a user, a password and a token in the query
    with http_receiver(200) as receiver:
        url = receiver.url.replace("http://", "http://hook%40user:s3cret@") + "?token=t0k"
        sub = webhook(url)

        # WHEN delivered
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the receiver got Basic auth and the full query; the name shows neither secret
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hook@user:s3cret").decode()
    assert request.path == "/hook?token=t0k"
    assert sub.name == f"webhook:{receiver.url}"
    assert "s3cret" not in repr(sub)
    assert "t0k" not in sub.name


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "127.0.0.1:8080/hook",
        "http:///nohost",
        "http://h:99999/",
    ],
)
def test_only_http_and_https_urls_are_accepted(url: str) -> None:
    # GIVEN / WHEN / THEN a URL dockline cannot POST to is a configuration error
    with pytest.raises(ConfigError, match="webhook url"):
        webhook(url)


def test_a_bad_url_error_does_not_show_its_password() -> None:
    # GIVEN / WHEN a non-http URL carrying a password
    with pytest.raises(ConfigError) as caught:
        webhook("ftp://user:s3cret@host/hook")

    # THEN the password is not in the message
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "one\r\nInjected: yes"}, {"Bad Name": "x"}, {"Content-Length": "1"}, {"X-Snow": "☃"}],
)
def test_headers_that_cannot_be_sent_are_configuration_errors(headers: dict[str, str]) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ConfigError, match="webhook header"):
        webhook("http://127.0.0.1/hook", headers=headers)


# --- filter_status, the factory, the retry helper -------------------------------------


def test_filter_status_selects_notifications_by_their_status_attribute() -> None:
    # GIVEN a subscription for failures only, and one for everything
    failures = webhook("http://127.0.0.1/hook", filter_status=("failed", "conflict"))
    everything = webhook("http://127.0.0.1/hook")
    failed = Notification("Failed", "File failed", {"status": "failed"})
    no_status = Notification("Hello", "no attributes")

    # WHEN / THEN only matching statuses pass the filter; no filter takes all
    assert failures.wants(failed)
    assert not failures.wants(NOTE)
    assert not failures.wants(no_status)
    assert everything.wants(NOTE)
    assert everything.wants(no_status)


def test_build_subscriptions_follows_the_config_file_in_order() -> None:
    # GIVEN settings parsed from a dockline.toml document
    settings = config.parse_settings(
        {
            "local": {
                "subscriptions": [
                    {"type": "email", "host": "127.0.0.1", "to": "ops@example.com"},
                    {"type": "webhook", "url": "https://hooks.example.com/x", "filter_status": ["failed"]},
                ]
            }
        }
    )

    # WHEN the subscriptions are built
    subs = build_subscriptions(settings.local.subscriptions)

    # THEN each kind is represented, in file order, with its filter
    assert [type(s) for s in subs] == [EmailSubscription, WebhookSubscription]
    assert [s.name for s in subs] == ["email:ops@example.com", "webhook:https://hooks.example.com/x"]
    assert subs[1].filter_status == frozenset({"failed"})
    assert build_subscriptions(()) == []


def test_build_subscriptions_rejects_bad_entries() -> None:
    # GIVEN / WHEN / THEN an email subscription with a user but no password variable
    bad = config.EmailSubscription(host="127.0.0.1", to=("ops@example.com",), username="dockline")
    with pytest.raises(ConfigError, match="password_env"):
        build_subscriptions([bad])
    with pytest.raises(ConfigError, match="at least one address"):
        build_subscriptions([config.EmailSubscription(host="127.0.0.1", to=())])


def test_deliver_with_retry_never_raises_even_for_a_bug() -> None:
    # GIVEN a subscription whose delivery has a bug
    class Broken(Subscription):
        def deliver(self, notification: Notification, *, published_at: str, notification_id: int) -> None:
            raise KeyError("oops")

    # WHEN delivered with retries
    result = deliver_with_retry(Broken(name="broken"), NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the failure is reported, not raised, and not retried
    assert result == (False, "broken: unexpected KeyError: 'oops'", 1)


# --- a real SMTP server -------------------------------------------------------------


class EphemeralController(Controller):
    """aiosmtpd 1.4 cannot bind port 0 by itself: ``start()`` pokes ``self.port``.

    Read the port the OS picked from the bound socket before that poke (the fix
    proposed upstream in aio-libs/aiosmtpd#381).
    """

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class Inbox:
    """Handler: refuses some recipients, keeps every accepted message."""

    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    messages: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    def parsed(self, index: int = 0) -> EmailMessage:
        content = self.messages[index].content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@contextmanager
def smtp_server(inbox: Inbox, **smtp_kwargs: Any) -> Iterator[int]:
    controller = EphemeralController(inbox, hostname="127.0.0.1", port=0, **smtp_kwargs)
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


def email(
    port: int, *, env: dict[str, str] | None = None, ssl_context: ssl.SSLContext | None = None, **kwargs: Any
) -> EmailSubscription:
    kwargs.setdefault("to", ("ops@example.com",))
    kwargs.setdefault("timeout_seconds", 2.0)
    settings = config.EmailSubscription(host="127.0.0.1", port=port, sender="dockline@example.com", **kwargs)
    return EmailSubscription(settings, env=env or {}, ssl_context=ssl_context)


def test_email_is_delivered_with_subject_addresses_and_body() -> None:
    # GIVEN a real SMTP server and a subscription to two people
    inbox = Inbox()
    with smtp_server(inbox) as port:
        sub = email(port, to=("ops@example.com", "dev@example.com"))

        # WHEN one notification is delivered
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=42)

    # THEN one message arrived with the notification's subject, the addresses and the body
    [envelope] = inbox.messages
    assert envelope.mail_from == "dockline@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    received = inbox.parsed()
    assert received["Subject"] == NOTE.subject
    assert received["From"] == "dockline@example.com"
    assert received["To"] == "ops@example.com, dev@example.com"
    key = delivery_key(published_at=PUBLISHED_AT, notification_id=42)
    assert received["Message-ID"] == f"<{key}@example.com>"
    assert received["Date"].datetime == dt.datetime(2026, 11, 27, 1, 2, 3, tzinfo=dt.UTC)
    body = received.get_content()
    assert NOTE.message in body
    assert "status: processed" in body
    assert "key: incoming/a.json" in body
    assert sub.name == "email:ops@example.com,dev@example.com"


def test_a_refused_recipient_is_permanent_and_not_retried() -> None:
    # GIVEN a server that does not know the recipient
    inbox = Inbox(refuse={"ops@example.com": "550 5.1.1 No such user"})
    sleeps = Sleeps()
    with smtp_server(inbox) as port:
        sub = email(port)

        # WHEN delivered directly, and with retries
        with pytest.raises(DeliveryError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)
        delivered, error, attempts = deliver_with_retry(
            sub, NOTE, published_at=PUBLISHED_AT, notification_id=1, sleep=sleeps
        )

    # THEN nothing was sent, the reason names the address, and one attempt was made
    assert inbox.messages == []
    assert str(caught.value) == f"{sub.name}: all recipients refused: ops@example.com: 550 5.1.1 No such user"
    assert (delivered, error, attempts, sleeps) == (False, str(caught.value), 1, [])


def test_a_temporarily_refused_recipient_is_transient() -> None:
    # GIVEN a server whose mailbox is busy
    inbox = Inbox(refuse={"ops@example.com": "450 4.2.1 Mailbox busy"})
    with smtp_server(inbox) as port:
        sub = email(port)

        # WHEN / THEN
        with pytest.raises(TransientError, match=r"450 4\.2\.1 Mailbox busy"):
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)


def test_a_partly_refused_delivery_reports_who_did_not_get_it() -> None:
    # GIVEN a server that takes one recipient and refuses the other for good
    inbox = Inbox(refuse={"gone@example.com": "550 5.1.1 No such user"})
    with smtp_server(inbox) as port:
        sub = email(port, to=("ops@example.com", "gone@example.com"))

        # WHEN delivered
        with pytest.raises(DeliveryError, match=r"some recipients refused .*gone@example.com: 550"):
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the accepted recipient has the message
    assert [e.rcpt_tos for e in inbox.messages] == [["ops@example.com"]]


def test_an_unreachable_smtp_server_is_transient() -> None:
    # GIVEN / WHEN a subscription to a port where nothing listens
    port = closed_port()
    with pytest.raises(TransientError) as caught:
        email(port).deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN the error says what and where
    assert str(caught.value) == f"email:ops@example.com: connection refused (127.0.0.1:{port})"


def test_an_smtp_server_that_stops_answering_times_out_as_transient() -> None:
    # GIVEN a listener that accepts and never sends its greeting, and a short timeout
    with silent_listener() as port:
        sub = email(port, timeout_seconds=0.2)

        # WHEN / THEN
        with pytest.raises(TransientError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)
    assert str(caught.value) == f"{sub.name}: no answer within 0.2s (127.0.0.1:{port})"


def accept_only(login: bytes, password: bytes, logins: list[bytes] | None = None) -> Any:
    """An aiosmtpd authenticator taking one login; successful logins are appended to ``logins``."""

    def authenticator(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (login, password)
        if ok and logins is not None:
            logins.append(login)
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535

    return authenticator


def test_login_uses_the_password_from_the_named_environment_variable() -> None:
    # GIVEN a server that requires this login, and the password in an env var
    inbox, logins = Inbox(), list[bytes]()
    server = {"authenticator": accept_only(b"dockline", b"s3cret", logins), "auth_require_tls": False}
    with smtp_server(inbox, **server) as port:
        sub = email(port, username="dockline", password_env="SMTP_PASSWORD", env={"SMTP_PASSWORD": "s3cret"})

        # WHEN delivered
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN it logged in and the message went through
    assert logins == [b"dockline"]
    assert len(inbox.messages) == 1


def test_a_wrong_password_is_permanent_and_not_shown() -> None:
    # GIVEN a server that rejects the password
    inbox = Inbox()
    server = {"authenticator": accept_only(b"dockline", b"right"), "auth_require_tls": False}
    with smtp_server(inbox, **server) as port:
        sub = email(port, username="dockline", password_env="SMTP_PASSWORD", env={"SMTP_PASSWORD": "wr0ng"})

        # WHEN delivered
        with pytest.raises(DeliveryError) as caught:
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN it failed at login with the server's code, without the password
    assert "login failed: 535" in str(caught.value)
    assert "wr0ng" not in str(caught.value)
    assert inbox.messages == []


def test_a_missing_password_variable_is_a_clear_permanent_error_before_connecting() -> None:
    # GIVEN a subscription whose password variable is not set (and no server at all)
    sub = email(closed_port(), username="dockline", password_env="DOCKLINE_TEST_UNSET_PASSWORD", env={})

    # WHEN / THEN it fails on the configuration, not with a (retryable) connection error
    with pytest.raises(ConfigError, match=r"DOCKLINE_TEST_UNSET_PASSWORD .* is not set"):
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_starttls_upgrades_the_session_before_login(tls_files: tuple[Path, Path]) -> None:
    # GIVEN a server that only allows login over TLS, and a client that trusts its certificate
    cert_path, key_path = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    client_tls = ssl.create_default_context(cafile=str(cert_path))
    inbox, logins = Inbox(), list[bytes]()
    server = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": accept_only(b"dockline", b"s3cret", logins),
    }
    with smtp_server(inbox, **server) as port:
        sub = email(
            port,
            starttls=True,
            username="dockline",
            password_env="P",
            env={"P": "s3cret"},
            ssl_context=client_tls,
        )

        # WHEN delivered
        sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)

    # THEN it logged in over TLS and the message arrived
    assert logins == [b"dockline"]
    assert len(inbox.messages) == 1


def test_starttls_against_a_server_without_it_is_permanent() -> None:
    # GIVEN a server that offers no STARTTLS
    inbox = Inbox()
    with smtp_server(inbox) as port:
        sub = email(port, starttls=True)

        # WHEN / THEN nothing is sent in the clear
        with pytest.raises(DeliveryError, match="STARTTLS"):
            sub.deliver(NOTE, published_at=PUBLISHED_AT, notification_id=1)
    assert inbox.messages == []
