"""`digest serve`: the preview and the feedback pages, a small Starlette app run by uvicorn.

Pages: `/` lists the profiles; `/<profile>` is that profile's next digest, rendered fresh from
the TOML and the store on every request, with a button per feedback action; `/<profile>/feedback`
(GET, from the email's links) shows what a link asks with one button, and its POST records it;
`/<profile>/verdicts` lists the liked and disliked papers with an undo button each.

Safety: the server binds 127.0.0.1 unless told otherwise and answers only to its own Host
names (local ones, and the host of `[server] public_url`), so a page on another site cannot
reach it through a DNS name rebound to 127.0.0.1. A GET never changes anything (mail scanners
prefetch links). A POST needs a signed token in its form, bound to the profile and paper, and
an `Origin`, when the browser sends one, naming this server: another site can neither forge a
token nor post one from its own pages. Previews open the store read-only (a preview never
creates the database); only a feedback POST opens it for writing, and only when it exists.
"""

from __future__ import annotations

import errno
import html
import logging
import socket
import threading
import webbrowser
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

from digest.app import App, Clock, plan_digest, plan_digests, system_clock
from digest.errors import ConfigError, DigestError, StoreError
from digest.feedback import Ask, LinkError, apply, form_linker, sign, signing_secret, verify
from digest.preview import host_allowed, open_preview_app
from digest.render import render_digest
from digest.settings import Settings
from digest.store import Store

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 8_192  # a feedback form holds one token


@dataclass(frozen=True)
class ServeOptions:
    """What the app reads on each request: the config file, the database override, the clock."""

    config: Path | None
    db: Path | None
    clock: Clock = system_clock


def page(title: str, body: str) -> str:
    """A small, self-contained HTML page (no remote resources)."""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        "<body style='font-family: sans-serif; font-size: 16px; max-width: 640px; margin: 2em "
        f"auto; padding: 0 1em'>{body}</body></html>"
    )


def _reply(status: int, title: str, body: str) -> Response:
    from starlette.responses import HTMLResponse

    return HTMLResponse(page(title, body), status, headers={"Cache-Control": "no-store"})


def _button(action: str, token: str, label: str) -> str:
    return (
        f"<form method='post' action='{html.escape(action)}' style='display:inline'>"
        f"<input type='hidden' name='t' value='{html.escape(token)}'>"
        f"<button type='submit' style='font-size:16px'>{html.escape(label)}</button></form>"
    )


# --- loading per request --------------------------------------------------------------------------


def _settings(options: ServeOptions) -> Settings:
    from digest.settings import load_settings

    return load_settings(options.config)


def _db_path(settings: Settings, options: ServeOptions) -> Path:
    return options.db or settings.resolve(settings.store.path)


def _problem(exc: DigestError) -> Response:
    """A store or config problem as a page: the server keeps running, a reload retries."""
    if isinstance(exc, StoreError):
        return _reply(
            503,
            "Database",
            f"<h1>Database</h1><pre>{html.escape(str(exc))}</pre><p>There is no database to "
            "preview from yet: run <code>digest fetch</code>, then reload.</p>",
        )
    return _reply(
        500,
        "Config error",
        f"<h1>Config error</h1><pre>{html.escape(str(exc))}</pre><p>Fix it and reload.</p>",
    )


@contextmanager
def _preview_app(options: ServeOptions) -> Iterator[App]:
    app = open_preview_app(_settings(options), options.db)
    app.clock = options.clock
    try:
        yield app
    finally:
        app.close()


@contextmanager
def _writable_store(settings: Settings, options: ServeOptions) -> Iterator[Store]:
    """The store opened for writing, never created: feedback needs a database to land in."""
    path = _db_path(settings, options)
    if not path.is_file():
        raise StoreError(f"{path}: no database yet (run `digest fetch` first)")
    store = Store.open(path)
    try:
        yield store
    finally:
        store.close()


def _profile(settings: Settings, name: str) -> bool:
    return any(p.name == name for p in settings.profiles)


# --- the pages ------------------------------------------------------------------------------------


def index_page(options: ServeOptions) -> Response:
    """The profiles, each with its next digest's paper count and its verdicts page."""
    with _preview_app(options) as app:
        profiles = app.settings.profile_records()
        rows = []
        for profile, plan in zip(profiles, plan_digests(app, profiles).values(), strict=True):
            count = len(plan.digest.papers)
            name = html.escape(profile.name)
            rows.append(
                f"<li><a href='/{quote(profile.name)}'>{name}</a>: {count} paper"
                f"{'' if count == 1 else 's'} · <a href='/{quote(profile.name)}/verdicts'>"
                "liked and disliked</a></li>"
            )
    return _reply(200, "digest", "<h1>Next digests</h1><ul>" + "".join(rows) + "</ul>")


def digest_page(options: ServeOptions, name: str) -> Response:
    """The profile's next digest as the email shows it, with feedback buttons."""
    from starlette.responses import HTMLResponse

    with _preview_app(options) as app:
        if not _profile(app.settings, name):
            return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
        profile = app.settings.profile_records(name)[0]
        plan = plan_digest(app, profile)
        secret = signing_secret(app.settings, app.store.path)
        linker = form_linker(secret, name, app.clock)
        rendered = render_digest(plan.digest, feedback=linker, post_to=f"/{quote(name)}/feedback")
    return HTMLResponse(rendered.html, headers={"Cache-Control": "no-store"})


def _ask(options: ServeOptions, settings: Settings, name: str, token: str, purpose: str) -> Ask:
    db = _db_path(settings, options)
    return verify(
        signing_secret(settings, db if db.is_file() else None),
        "undo" if purpose == "undo" else "feedback",
        token,
        name,
        max_age_days=settings.server.link_days,
        clock=options.clock,
    )


def confirm_page(options: ServeOptions, name: str, token: str) -> Response:
    """GET of an email link: what it asks, and one button that does it. Records nothing."""
    settings = _settings(options)
    if not _profile(settings, name):
        return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
    ask = _ask(options, settings, name, token, "feedback")
    with _preview_app(options) as app:
        paper = app.store.get_paper(ask.paper_key)
    title = paper.title if paper is not None else ask.paper_key
    body = (
        f"<h1>{html.escape(ask.label[:1].upper() + ask.label[1:])}?</h1>"
        f"<p>Profile “{html.escape(name)}”, paper: <b>{html.escape(title)}</b></p>"
        + _button(f"/{quote(name)}/feedback", token, f"Yes, {ask.label}")
    )
    return _reply(200, "Feedback", body)


def record_page(options: ServeOptions, name: str, token: str) -> Response:
    """POST of a feedback token: do it once; a replay says it is already recorded."""
    settings = _settings(options)
    if not _profile(settings, name):
        return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
    ask = _ask(options, settings, name, token, "feedback")
    with _writable_store(settings, options) as store:
        _, said = apply(ask, store, settings.path, options.clock())
    back = f"<p><a href='/{quote(name)}'>Next digest</a> · <a href='/{quote(name)}/verdicts'>"
    return _reply(200, "Feedback", f"<h1>{html.escape(said)}</h1>{back}Liked and disliked</a></p>")


def verdicts_page(options: ServeOptions, name: str) -> Response:
    """The profile's liked and disliked papers, newest first, each with an undo button."""
    settings = _settings(options)
    if not _profile(settings, name):
        return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
    with _preview_app(options) as app:
        verdicts = app.store.feedback(name)
        secret = signing_secret(app.settings, app.store.path)
        rows = []
        for verdict in verdicts:
            paper = app.store.get_paper(verdict.paper_key)
            title = paper.title if paper is not None else verdict.paper_key
            token = sign(secret, "undo", Ask(name, verdict.paper_key, verdict.action))
            rows.append(
                f"<li>{'liked' if verdict.action == 'like' else 'disliked'}: "
                f"{html.escape(title)} " + _button(f"/{quote(name)}/undo", token, "undo") + "</li>"
            )
    listed = "<ul>" + "".join(rows) + "</ul>" if rows else "<p>Nothing yet.</p>"
    return _reply(
        200, "Liked and disliked", f"<h1>Liked and disliked: {html.escape(name)}</h1>" + listed
    )


def undo_page(options: ServeOptions, name: str, token: str) -> Response:
    """POST of an undo token: forget that verdict."""
    settings = _settings(options)
    if not _profile(settings, name):
        return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
    ask = _ask(options, settings, name, token, "undo")
    with _writable_store(settings, options) as store:
        removed = store.remove_feedback(name, ask.paper_key)
    said = "Undone." if removed else "Nothing to undo: it was already undone."
    return _reply(
        200,
        "Undo",
        f"<h1>{said}</h1><p><a href='/{quote(name)}/verdicts'>Liked and disliked</a></p>",
    )


# --- the app --------------------------------------------------------------------------------------


def _public_hosts(options: ServeOptions) -> tuple[str, ...]:
    """The Host names `[server] public_url` adds (its host with and without its port)."""
    try:
        public_url = _settings(options).server.public_url
    except DigestError:
        return ()
    if not public_url:
        return ()
    parts = urlsplit(public_url)
    return tuple({parts.netloc.lower(), (parts.hostname or "").lower()} - {""})


def _origin_allowed(request: Request, public: tuple[str, ...]) -> bool:
    """A POST's Origin, when the browser sends one, names this server (its Host or the public
    URL's host); another site's page is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser form post from another site: the token alone guards it
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {request.headers.get("host", "").lower(), *public}


async def _form_token(request: Request) -> str | None:
    """The `t` field of a urlencoded form, read to at most MAX_FORM_BYTES; None when larger."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=5)
    return (values.get("t") or [""])[0]


Handler = Callable[[ServeOptions, str, str], "Response"]


def _guarded(options: ServeOptions, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running `handler(options, profile, token)` in a worker thread, behind the
    Host check (and for a POST the Origin check and the bounded form)."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        public = await run_in_threadpool(_public_hosts, options)
        port = int(request.scope.get("server", ("", 0))[1] or 0)
        host = request.headers.get("host")
        if not host_allowed(host, port, public):
            refused = "<p>This server answers only to its own names.</p>"
            return _reply(400 if not host else 421, "Refused", refused)
        token = request.query_params.get("t", "")
        if request.method == "POST":
            if not _origin_allowed(request, public):
                return _reply(403, "Refused", "<p>A form from another site was refused.</p>")
            found = await _form_token(request)
            if found is None:
                return _reply(413, "Too large", "<p>The form is too large.</p>")
            token = found
        name = str(request.path_params.get("profile", ""))
        try:
            return await run_in_threadpool(handler, options, name, token)
        except LinkError as exc:
            said = f"<h1>{html.escape(str(exc))}</h1><p>Nothing was recorded.</p>"
            return _reply(exc.status, "Link refused", said)
        except DigestError as exc:
            return _problem(exc)

    return endpoint


def make_app(options: ServeOptions) -> Starlette:
    """The Starlette app: every route behind the Host check."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(path, _guarded(options, handler), methods=[method])

    return Starlette(
        routes=[
            route("/", lambda o, _name, _token: index_page(o), "GET"),
            route("/{profile}", lambda o, name, _token: digest_page(o, name), "GET"),
            route("/{profile}/feedback", confirm_page, "GET"),
            route("/{profile}/feedback", record_page, "POST"),
            route("/{profile}/verdicts", lambda o, name, _token: verdicts_page(o, name), "GET"),
            route("/{profile}/undo", undo_page, "POST"),
        ]
    )


# --- running it -----------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port); ConfigError naming a port that is
    taken or not allowed, suggesting `--port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
        raise ConfigError(
            f"{host} port {port} {reason}; pass another with --port N (0: any free port)"
        ) from exc
    sock.set_inheritable(True)
    return sock


def make_server(options: ServeOptions) -> uvicorn.Server:
    """A uvicorn server for the app; run it with `server.run(sockets=[bind(...)])`."""
    import uvicorn

    config = uvicorn.Config(
        make_app(options),
        log_level="warning",
        access_log=False,  # the paths carry feedback tokens: keep them out of the logs
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextmanager
def running(
    options: ServeOptions, host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[uvicorn.Server, int]]:
    """The server running in a thread (for tests and embedding): yields it and its port; on
    exit it is stopped and the thread joined."""
    sock = bind(host, port)
    server = make_server(options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.01)
        yield server, int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    options: ServeOptions,
    host: str,
    port: int,
    profile: str | None,
    *,
    open_browser: bool,
) -> None:
    """Serve until interrupted (Ctrl-C)."""
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/{quote(profile or '')}"
    print(f"Serving on {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        make_server(options).run(sockets=[sock])
    finally:
        sock.close()
