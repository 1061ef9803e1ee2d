"""Preview: the next digest of each profile, as files or as a page served on 127.0.0.1.

The server re-reads the TOML and the store on every request, so editing the profile and pressing
reload shows the effect at once; a config error is shown in the page instead of stopping it.
"""

from __future__ import annotations

import errno
import html
import logging
import threading
import webbrowser
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from digest.app import App, Plan, build_app, plan_digest, plan_digests
from digest.errors import ConfigError, DigestError, StoreError
from digest.models import Profile
from digest.settings import Settings
from digest.store import Store

log = logging.getLogger(__name__)

# The names the server answers to (with its own port, or none). Any other Host is refused, so a
# page on another site cannot reach the digest through a DNS name rebound to 127.0.0.1.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str | None, port: int) -> bool:
    """True when a request's `Host` header names this server: a local name, its port or none."""
    if not host:
        return False
    name = host.strip().lower()
    return any(name in (local, f"{local}:{port}") for local in LOCAL_HOSTS)


def open_preview_app(settings: Settings, db: Path | None) -> App:
    """The app a preview needs, on the store opened read-only: a preview never creates or
    changes the database (StoreError naming it when there is none yet)."""
    store = Store.open(db or settings.resolve(settings.store.path), read_only=True)
    return build_app(settings, store=store)


def render_previews(app: App, out_dir: Path, profile: str | None = None) -> list[tuple[Path, int]]:
    """Write `out_dir/<profile>.html` and `.txt` (the email's two parts) for each profile;
    return (HTML path, paper count) pairs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record, plan in _plans(app, app.settings.profile_records(profile)):
        path = out_dir / f"{record.name}.html"
        path.write_text(plan.rendered.html, encoding="utf-8")
        path.with_suffix(".txt").write_text(plan.rendered.text, encoding="utf-8")
        written.append((path, len(plan.digest.papers)))
    return written


def _plans(app: App, profiles: Sequence[Profile]) -> list[tuple[Profile, Plan]]:
    """Each profile with its next digest, all planned in one pass."""
    plans = plan_digests(app, profiles)
    return [(profile, plans[profile.name]) for profile in profiles]


def _page(title: str, body: str) -> bytes:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        "<body style='font-family: sans-serif; max-width: 640px; margin: 2em auto; padding: 0 1em'>"
        f"{body}</body></html>"
    ).encode()


class PreviewHandler(BaseHTTPRequestHandler):
    """`/` lists the profiles with their counts; `/<profile>` is that profile's next digest."""

    config: Path | None = None
    db: Path | None = None

    def do_GET(self) -> None:
        """Render fresh from the current TOML and store on every request."""
        from digest.settings import load_settings

        if not host_allowed(self.headers.get("Host"), int(self.connection.getsockname()[1])):
            status = 400 if not self.headers.get("Host") else 421
            self._reply(status, _page("Refused", "<p>This server answers only to localhost."))
            return
        name = unquote(self.path.split("?", 1)[0].strip("/"))
        try:
            app = open_preview_app(load_settings(self.config), self.db)
        except StoreError as exc:
            self._reply(
                503,
                _page(
                    "Database",
                    f"<h1>Database</h1><pre>{html.escape(str(exc))}</pre>"
                    "<p>There is no database to preview from yet: run <code>digest fetch</code>"
                    ", then reload.</p>",
                ),
            )
            return
        except DigestError as exc:
            self._reply(
                500,
                _page(
                    "Config error",
                    f"<h1>Config error</h1><pre>"
                    f"{html.escape(str(exc))}</pre><p>Fix it and reload.</p>",
                ),
            )
            return
        try:
            if not name:
                self._reply(200, self._index(app))
                return
            profiles = [p for p in app.settings.profile_records() if p.name == name]
            if not profiles:
                self._reply(404, _page("Not found", f"<p>No profile named {html.escape(name)}."))
                return
            self._reply(200, plan_digest(app, profiles[0]).rendered.html.encode())
        except DigestError as exc:
            self._reply(500, _page("Error", f"<pre>{html.escape(str(exc))}</pre>"))
        finally:
            app.close()

    def _index(self, app: App) -> bytes:
        rows = []
        for profile, plan in _plans(app, app.settings.profile_records()):
            count = len(plan.digest.papers)
            rows.append(
                f"<li><a href='/{html.escape(profile.name)}'>{html.escape(profile.name)}"
                f"</a>: {count} paper{'' if count == 1 else 's'}</li>"
            )
        return _page("digest preview", "<h1>Next digests</h1><ul>" + "".join(rows) + "</ul>")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.info("preview: " + format, *args)


class PreviewServer(ThreadingHTTPServer):
    """One thread per request; a deep listen queue so a burst of connections (a browser opening
    many tabs, a reload storm) waits to be accepted instead of being dropped (the default is 5)."""

    request_queue_size = 1024
    daemon_threads = True  # a request still running never keeps the process alive


def make_server(config: Path | None, db: Path | None, port: int) -> PreviewServer:
    """A preview server bound to 127.0.0.1 only (port 0: any free port).

    A port that is taken or not allowed is a ConfigError naming it, suggesting `--port`.
    """
    handler = type("Handler", (PreviewHandler,), {"config": config, "db": db})
    try:
        return PreviewServer(("127.0.0.1", port), handler)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise ConfigError(
            f"127.0.0.1 port {port} {reason}; pass another with --port N (0: any free port)"
        ) from exc


def serve_previews(
    config: Path | None, db: Path | None, port: int, profile: str | None, *, open_browser: bool
) -> None:
    """Serve previews until interrupted."""
    server = make_server(config, db, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/{profile or ''}"
    print(f"Previewing on {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
