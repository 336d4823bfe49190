"""`photokit serve`: the local web gallery (see and fix who is who, priors, restorations, jobs)."""

from __future__ import annotations

import typer

from photokit.cli.common import note, settings_from
from photokit.errors import PhotokitError


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the gallery in the browser."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow a non-loopback --host (anyone with the token can see your photos)."
    ),
) -> None:
    """Serve the gallery on this machine; the printed address carries the access token. Ctrl-C stops it."""
    try:
        import uvicorn

        from photokit.web.app import create_app
        from photokit.web.security import LOOPBACK_HOSTS, is_loopback, new_token
    except ImportError as exc:
        raise PhotokitError(
            f"the web gallery needs its extra: pip install 'photokit[web]' ({exc.name} missing)"
        ) from None

    if not is_loopback(host) and not allow_remote:
        raise PhotokitError(f"--host {host} is not a loopback address: add --allow-remote if you mean it")
    if not is_loopback(host):
        note(f"warning: serving on {host}: anyone on your network who gets the token sees your photos")
    token = new_token()
    hosts = frozenset(LOOPBACK_HOSTS | ({host.lower()} if allow_remote else set()))
    app = create_app(settings_from(ctx), token=token, hosts=hosts)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = _quiet_server_class()(config)

    def announce() -> None:  # after the socket is bound (port 0 resolved)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound}/people?token={token}"
        typer.echo(f"photokit gallery: {url}")
        note("Ctrl-C stops the server (running jobs stop after their current step and resume next time)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    original_startup = server.startup

    async def startup(sockets=None) -> None:
        await original_startup(sockets=sockets)
        if server.started:
            announce()

    server.startup = startup
    server.run()
    note("gallery stopped")


def _quiet_server_class():
    import contextlib
    import signal
    import threading

    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn re-raises the Ctrl-C it handled after a graceful shutdown, which prints a traceback from
        inside its event loop; a stopped gallery is a normal end, so the signal is only handled."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return QuietServer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("serve")(serve)
