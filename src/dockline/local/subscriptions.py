"""Subscriptions of the local topic: deliver one notification to a webhook or a mailbox.

Each ``[[local.subscriptions]]`` table in ``dockline.toml`` becomes one
:class:`Subscription`. The topic asks :meth:`Subscription.wants` when it publishes;
the delivery worker (``local/deliveries.py``) then calls :func:`attempt` once per
try, which never raises and says whether a later try may succeed.

Delivery is at least once: a retry after a lost answer sends the same notification
again. Every delivery therefore carries a key that is stable for one notification
(``Idempotency-Key`` for webhooks, ``Message-ID`` for email) so receivers can drop
duplicates.

Errors: :class:`~dockline.errors.TransientError` when trying again later may work
(connection refused or reset, timeouts, HTTP 408/429/5xx, SMTP 4xx), as :class:`RetryLater`
with the receiver's ``Retry-After`` where it sent one;
:class:`DeliveryError` when the receiver refused for good (other HTTP 4xx, SMTP 5xx);
:class:`~dockline.errors.ConfigError` when the settings cannot work (a bad URL, a
missing password variable). Messages are one line and never carry a secret.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from dockline import __version__, config
from dockline.endpoints import url_problem
from dockline.errors import ConfigError, DocklineError, TransientError
from dockline.jsonx import dumps
from dockline.models import Notification

# http.client, smtplib, ssl and email are imported where a delivery needs them: together
# ~8 ms that every start-up would pay, with or without a subscription (issue 11 item 5).
if TYPE_CHECKING:
    import smtplib
    import ssl
    from email.message import EmailMessage

logger = logging.getLogger(__name__)

USER_AGENT = f"dockline/{__version__}"
# Fixed so that one notification always gets the same idempotency key / Message-ID,
# whichever process or retry sends it.
_KEY_NAMESPACE = uuid.UUID("6f0c5a0e-4d1b-5e43-9a57-1f1f0d0c1e55")
_RETRYABLE_HTTP = frozenset({408, 429})
# Headers http.client computes itself; a copy from the settings would corrupt the request.
_RESERVED_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "connection"})


class DeliveryError(DocklineError):
    """The receiver refused the notification for good: retrying it cannot succeed."""


class RetryLater(TransientError):
    """A transient refusal that came with the receiver's ``Retry-After`` header (raw text)."""

    def __init__(self, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Subscription(ABC):
    """One receiver of the local topic's notifications.

    ``name`` is a readable identity (``webhook:https://host/path``, ``email:ops@example.com``)
    used in logs and the deliveries table; it never contains a password or query string.
    """

    def __init__(
        self, *, name: str, filter_status: Iterable[str] = (), filter: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self.name = name
        # attribute -> accepted values; ``filter_status`` is the older spelling of filter.status
        wanted = {attribute: frozenset(values) for attribute, values in (filter or {}).items() if values}
        if filter_status:
            wanted["status"] = wanted.get("status", frozenset()) | frozenset(filter_status)
        self.filter = wanted
        self.filter_status = wanted.get("status", frozenset())

    def wants(self, notification: Notification) -> bool:
        """Does this subscription take ``notification``? Each filtered attribute (route,
        status) must hold one of its listed values, as in an SNS filter policy; no filter takes all."""
        attributes = notification.attributes
        return all(attributes.get(attribute) in values for attribute, values in self.filter.items())

    @abstractmethod
    def deliver(self, notification: Notification, *, published_at: str, notification_id: int) -> None:
        """Send ``notification`` once.

        Raises TransientError when a later attempt may succeed, DeliveryError when the
        receiver refused it for good, ConfigError when the settings cannot work.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def delivery_key(*, published_at: str, notification_id: int) -> str:
    """A UUID that is the same for every delivery of one notification."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{notification_id}@{published_at}"))


class WebhookSubscription(Subscription):
    """POSTs each notification as JSON to an http(s) URL.

    Redirects are not followed: a POST turned into a GET would lose the body, so a
    3xx is a DeliveryError asking for the final URL. Credentials in the URL
    (``https://user:pass@host/``) are sent as HTTP Basic auth and kept out of ``name``.
    The timeout applies to connecting and to each read, as in ``http.client``.
    """

    def __init__(
        self,
        settings: config.WebhookSubscription,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Raises ConfigError for a URL that is not http(s) or headers that cannot be sent."""
        problem = url_problem(settings.url)  # the one URL rule, also applied when the config loads
        if problem is not None:
            raise ConfigError(f"webhook url {_redact_url(settings.url)!r}: {problem}")
        parts = urlsplit(settings.url)
        port = parts.port
        for key, value in settings.headers.items():
            if not _sendable_header(key, str(value)):
                raise ConfigError(f"webhook header {key!r} has a name or value that cannot be sent")
            if key.lower() in _RESERVED_HEADERS:
                raise ConfigError(f"webhook header {key!r} is set by dockline and cannot be configured")
        super().__init__(
            name=f"webhook:{_redact_url(settings.url)}", filter_status=settings.filter_status, filter=settings.filter
        )
        self.settings = settings
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""  # never empty: url_problem insists on a host
        self._port = port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._auth: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self._ssl_context = ssl_context

    def deliver(self, notification: Notification, *, published_at: str, notification_id: int) -> None:
        """POST the notification. Raises TransientError or DeliveryError (see the module)."""
        key = delivery_key(published_at=published_at, notification_id=notification_id)
        body = dumps(
            {
                "subject": notification.subject,
                "message": notification.message,
                "attributes": dict(notification.attributes),
                "published_at": published_at,
                "id": notification_id,
            }
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": key,
            "X-Dockline-Notification-Id": str(notification_id),
        }
        if self._auth is not None:
            headers["Authorization"] = self._auth
        # Settings win over the defaults, compared without case as HTTP does.
        for name, value in self.settings.headers.items():
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
            headers[name] = str(value)
        status, reason, retry_after = self._post(body, headers)
        if 200 <= status < 300:
            return
        what = f"{self.name}: answered HTTP {status} {reason}".rstrip()
        if status >= 500 or status in _RETRYABLE_HTTP:
            raise RetryLater(what, retry_after=retry_after)
        if 300 <= status < 400:
            raise DeliveryError(f"{what}; redirects are not followed, configure the final URL")
        raise DeliveryError(what)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, str | None]:
        """(status, reason, Retry-After header or None)."""
        import http.client
        import ssl

        timeout = self.settings.timeout_seconds
        connection: http.client.HTTPConnection
        if self._https:
            context = self._ssl_context or ssl.create_default_context()
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.request("POST", self._target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(64 * 1024)  # drain a little so the server sees a clean close
            return response.status, response.reason or "", response.getheader("Retry-After")
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{self.name}: TLS certificate rejected: {exc.verify_message}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{self.name}: {_describe_network_error(exc, timeout)}") from exc
        finally:
            connection.close()


class EmailSubscription(Subscription):
    """Sends each notification as a plain-text email through an SMTP server.

    With ``starttls`` the session is upgraded before anything else is sent; with
    ``username`` it logs in with the password from the environment variable named by
    ``password_env``, read at each delivery so a rotated password is picked up.
    """

    def __init__(
        self,
        settings: config.EmailSubscription,
        *,
        env: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Raises ConfigError for settings that cannot work (no recipient, no host, a bad port)."""
        if not settings.host:
            raise ConfigError("email subscription needs a host")
        if not settings.to:
            raise ConfigError("email subscription needs at least one address in 'to'")
        for address in (settings.sender, *settings.to):
            if "@" not in address or any(c in address for c in "\r\n"):
                raise ConfigError(f"email subscription address {address!r} is not an email address")
        if not 0 < settings.port < 65536:
            raise ConfigError(f"email subscription port {settings.port} is not a TCP port")
        if settings.username and not settings.password_env:
            raise ConfigError(
                f"email subscription for {settings.username!r} needs password_env, the name of the"
                " environment variable holding the password"
            )
        super().__init__(
            name=f"email:{','.join(settings.to)}", filter_status=settings.filter_status, filter=settings.filter
        )
        self.settings = settings
        self._env = os.environ if env is None else env
        self._ssl_context = ssl_context

    def deliver(self, notification: Notification, *, published_at: str, notification_id: int) -> None:
        """Send the email. Raises TransientError, DeliveryError or ConfigError (see the module).

        When the server refuses some recipients and takes the others, the others have
        the message: a 5xx refusal is a DeliveryError naming the refused addresses, a
        4xx one a TransientError (the retry resends with the same Message-ID).
        """
        import smtplib
        import ssl

        s = self.settings
        password = self._password()
        message = self.compose(notification, published_at=published_at, notification_id=notification_id)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, password or "")
                refused = smtp.send_message(message, from_addr=s.sender, to_addrs=list(s.to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refusal(self.name, exc.recipients, everyone=True) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{self.name}: {str(exc).rstrip('.')} ({s.host}:{s.port})") from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(self.name, _stage(exc), exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as a disconnect; say what really happened.
            cause = exc.__context__
            what = (
                _describe_network_error(cause, s.timeout_seconds)
                if isinstance(cause, OSError)
                else f"the server closed the connection ({exc})"
            )
            raise TransientError(f"{self.name}: {what} ({s.host}:{s.port})") from exc
        except smtplib.SMTPException as exc:  # e.g. no usable AUTH mechanism
            raise DeliveryError(f"{self.name}: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{self.name}: TLS certificate rejected: {exc.verify_message}") from exc
        except OSError as exc:
            raise TransientError(
                f"{self.name}: {_describe_network_error(exc, s.timeout_seconds)} ({s.host}:{s.port})"
            ) from exc
        if refused:
            raise _refusal(self.name, refused, everyone=False)

    def compose(self, notification: Notification, *, published_at: str, notification_id: int) -> EmailMessage:
        """The email for ``notification``: message, then its attributes, one per line."""
        from email.message import EmailMessage

        s = self.settings
        message = EmailMessage()
        message["Subject"] = " ".join(notification.subject.split())
        message["From"] = s.sender
        message["To"] = ", ".join(s.to)
        message["Date"] = _email_date(published_at)
        key = delivery_key(published_at=published_at, notification_id=notification_id)
        domain = s.sender.rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<{key}@{domain}>"
        message["X-Dockline-Notification-Id"] = str(notification_id)
        lines = [notification.message, ""]
        lines += [f"{name}: {value}" for name, value in sorted(notification.attributes.items())]
        lines += [f"published_at: {published_at}", f"notification_id: {notification_id}"]
        message.set_content("\n".join(lines) + "\n")
        return message

    def _password(self) -> str | None:
        name = self.settings.password_env
        if not self.settings.username or not name:
            return None
        password = self._env.get(name)
        if not password:
            raise ConfigError(f"{self.name}: environment variable {name} (password_env) is not set or empty")
        return password


def build_subscriptions(
    settings: Iterable[config.WebhookSubscription | config.EmailSubscription],
) -> list[Subscription]:
    """One Subscription per settings entry, in order. Raises ConfigError for a bad entry."""
    subscriptions: list[Subscription] = []
    for entry in settings:
        if isinstance(entry, config.WebhookSubscription):
            subscriptions.append(WebhookSubscription(entry))
        elif isinstance(entry, config.EmailSubscription):
            subscriptions.append(EmailSubscription(entry))
        else:
            raise ConfigError(f"unknown subscription settings {type(entry).__name__}")
    return subscriptions


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one try of one delivery came to.

    ``transient`` tells a failure worth trying again later from a refusal for good;
    ``retry_after`` is the receiver's Retry-After header, unparsed, when it sent one.
    """

    delivered: bool
    error: str | None = None
    transient: bool = False
    retry_after: str | None = None


def attempt(sub: Subscription, notification: Notification, *, published_at: str, notification_id: int) -> Attempt:
    """Deliver once and classify the result. Never raises: a bug in a subscription is
    logged with its traceback and reported as a permanent failure.

    It does not consult ``sub.wants``: the caller decides who gets what.
    """
    try:
        sub.deliver(notification, published_at=published_at, notification_id=notification_id)
    except RetryLater as exc:
        return Attempt(False, str(exc), transient=True, retry_after=exc.retry_after)
    except TransientError as exc:
        return Attempt(False, str(exc), transient=True)
    except DocklineError as exc:  # DeliveryError, ConfigError: trying again cannot help
        return Attempt(False, str(exc))
    # Never raising is the contract: the worker must record every outcome.
    except Exception as exc:
        logger.exception("subscription %s failed unexpectedly", sub.name)
        return Attempt(False, " ".join(f"{sub.name}: unexpected {type(exc).__name__}: {exc}".split()))
    return Attempt(True)


def _redact_url(url: str) -> str:
    """scheme://host[:port]/path: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def _sendable_header(name: str, value: str) -> bool:
    """http.client sends header names as ASCII tokens and values as Latin-1, one line each."""
    if not name or not name.isascii() or any(c in name for c in ":\r\n \t"):
        return False
    if "\r" in value or "\n" in value:
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _describe_network_error(exc: BaseException, timeout: float) -> str:
    import http.client

    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _stage(exc: smtplib.SMTPResponseException) -> str:
    import smtplib

    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "login failed"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused"
    if isinstance(exc, smtplib.SMTPConnectError):
        return "greeting refused"
    if isinstance(exc, smtplib.SMTPHeloError):
        return "HELO refused"
    if isinstance(exc, smtplib.SMTPDataError):
        return "message refused"
    return "server error"


def _smtp_error(name: str, stage: str, code: int, reply: bytes | str) -> DocklineError:
    what = f"{name}: {stage}: {code} {_text(reply)}"
    # 4xx is the SMTP way of saying "try again later"; -1 is smtplib's "no reply".
    return TransientError(what) if code < 0 or 400 <= code < 500 else DeliveryError(what)


def _refusal(name: str, refused: Mapping[str, tuple[int, bytes]], *, everyone: bool) -> DocklineError:
    details = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refused.items())
    scope = "all recipients refused" if everyone else "some recipients refused (the others have it)"
    what = f"{name}: {scope}: {details}"
    if all(400 <= code < 500 for code, _ in refused.values()):
        return TransientError(what)
    return DeliveryError(what)


def _email_date(published_at: str) -> str:
    """RFC 5322 date of publication; now, if ``published_at`` is not ISO 8601."""
    from email.utils import format_datetime, formatdate

    try:
        moment = datetime.fromisoformat(published_at)
    except ValueError:
        return formatdate(usegmt=True)
    if moment.tzinfo is None:  # the topic writes UTC
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)
