"""dockline console: the local web console (Starlette + uvicorn, the `console` extra)."""

import errno
from typing import TYPE_CHECKING, Annotated

import typer

from dockline.cli.app import app, console, context_of
from dockline.errors import DocklineError, UsageError
from dockline.render import say

if TYPE_CHECKING:
    import socket

INSTALL_HINT = "pip install 'dockline[console]'"


@app.command("console")
def console_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The TCP port to serve on.")] = 8686,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="The address to serve on. Anything but loopback (127.0.0.1, ::1, localhost) needs a token.",
        ),
    ] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="DOCKLINE_CONSOLE_TOKEN",
            help="Ask every request for this token (default: none on loopback; off loopback one is made"
            " and printed once).",
        ),
    ] = None,
) -> None:
    """Serve the local console: live status, throughput and outcome charts, failed files, dead letters
    with a redrive button, deliveries with a redeliver button and a ledger browser. Read-only but for
    those buttons; safe while `dockline run` works. Ctrl-C stops it."""
    try:
        import uvicorn

        from dockline.console.access import is_loopback
        from dockline.console.app import create_app
        from dockline.console.metrics import metrics_route
        from dockline.console.source import DataSource
    except ImportError as exc:
        raise DocklineError(f"the console needs starlette and uvicorn ({exc.name} is missing): {INSTALL_HINT}") from exc

    if token is not None and not token.strip():
        raise UsageError("--token is empty (or DOCKLINE_CONSOLE_TOKEN is set but empty)")
    c = context_of(ctx)
    loopback = is_loopback(host)
    made = token is None and not loopback
    if made:
        import secrets  # only when a token is made: start-up

        token = secrets.token_urlsafe(24)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    address = f"http://{shown_host}:{bound_port}/"
    source = DataSource(c.data_dir, c.settings())
    if token is not None:
        once = " (the token is shown only now)" if made else ""
        say(console, f"dockline console on {address}?token={token}{once}")
    else:
        say(console, f"dockline console on {address} (data dir {c.data_dir}; Ctrl-C stops)")
    console.file.flush()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(source, token=token, loopback=loopback, extra=[metrics_route(source.data_dir, source.settings)]),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _bind(host: str, port: int) -> "socket.socket":
    """A listening socket on ``host:port``, or a one-line error (in use, unknown host)."""
    import socket  # only when the console starts: start-up

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DocklineError(f"port {port} on {host} is in use: stop what serves it, or pass --port N") from None
        raise DocklineError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return sock
