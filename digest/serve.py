"""`digest serve`: the preview and the feedback pages, a small Starlette app run by uvicorn.

Pages: `/` lists the profiles; `/<profile>` is that profile's next digest, with a button per
feedback action, rendered once per change of what it is made of (the TOML, the store, the
library files, the signing secret, the minute) and that render served to every reader
(`PageCache`); `/<profile>/feedback`
(GET, from the email's links) shows what a link asks with one button, and its POST records it;
`/<profile>/verdicts` lists the liked and disliked papers with an undo button each.

Safety: the server binds 127.0.0.1 unless told otherwise and answers only to its own Host
names (local ones, and the host of `[server] public_url`), so a page on another site cannot
reach it through a DNS name rebound to 127.0.0.1. A GET never changes anything (mail scanners
prefetch links). A POST needs a signed token in its form, bound to the profile and paper, and
an `Origin`, when the browser sends one, naming this server: another site can neither forge a
token nor post one from its own pages. Previews open the store read-only (a preview never
creates the database); only a feedback POST opens it for writing, and only when it exists.

Bad requests get a 4xx page and no traceback in the log: a form body is read to at most
MAX_FORM_BYTES and MAX_FORM_FIELDS within `[server] body_seconds` (413, 400, 408, each closing
the connection), and a client that leaves mid-form is let go.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import html
import logging
import socket
import threading
import webbrowser
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
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
MAX_FORM_FIELDS = 5  # ... in one field; a few more are tolerated, hundreds are refused
BODY_SECONDS = 10.0  # `[server] body_seconds` when the config cannot be read


Page = tuple[int, str]  # (status, HTML)


class PageCache:
    """Rendered pages by what they were made of; readers of one key share one render.

    The first reader of a key renders it; readers arriving meanwhile wait for that render
    (single flight) instead of each rendering the same digest. A failed render is not kept:
    the next reader tries again. `renders` counts renders started (tests read it).
    """

    def __init__(self, keep: int = 32) -> None:
        self.renders = 0
        self._keep = keep
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, Future[Page]] = OrderedDict()
        # One read-only connection that watches the store: SQLite's data_version changes on it
        # whenever another connection commits (keyed with the file's identity, so a database
        # replaced by another file is watched afresh).
        self._watch_lock = threading.Lock()
        self._watched: tuple[tuple[int, int], Store] | None = None

    def page(self, key: Hashable, render: Callable[[], Page]) -> Page:
        """The page for `key`, rendered by `render` once, whoever asks at the same time."""
        with self._lock:
            future = self._pages.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._pages[key] = future
                while len(self._pages) > self._keep:
                    self._pages.popitem(last=False)
                self.renders += 1
            else:
                self._pages.move_to_end(key)
        if not owner:
            return future.result()
        try:
            rendered = render()
        except BaseException as exc:
            with self._lock:
                if self._pages.get(key) is future:
                    del self._pages[key]
            future.set_exception(exc)
            raise
        future.set_result(rendered)
        return rendered

    def store_version(self, path: Path) -> tuple[int, int, int] | None:
        """(device, inode, data_version) of the database at `path`; None when there is none."""
        try:
            info = path.stat()
        except OSError:
            return None
        identity = (info.st_dev, info.st_ino)
        with self._watch_lock:
            if self._watched is None or self._watched[0] != identity:
                if self._watched is not None:
                    self._watched[1].close()
                    self._watched = None
                self._watched = (identity, Store.open(path, read_only=True))
            return (*identity, self._watched[1].data_version)

    def close(self) -> None:
        """Close the watching connection."""
        with self._watch_lock:
            if self._watched is not None:
                self._watched[1].close()
                self._watched = None


@dataclass(frozen=True)
class ServeOptions:
    """What the app reads on each request: the config file, the database override, the clock,
    and the cache of rendered pages."""

    config: Path | None
    db: Path | None
    clock: Clock = system_clock
    cache: PageCache = field(default_factory=PageCache, compare=False)


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
            f"<h1>Database</h1><pre>{html.escape(str(exc))}</pre><p>Nothing was changed. "
            "If there is no database yet, run <code>digest fetch</code>, then reload.</p>",
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


def _made_of(options: ServeOptions, settings: Settings) -> Hashable:
    """What a preview page is made of, as a key: the config file's bytes, the store's identity
    and data version, the profiles' library files, the signing secret, and the minute (the
    window moves with the clock). Any change of one is a new key, hence a new render."""
    config = settings.path
    try:
        config_hash = hashlib.sha256(config.read_bytes()).hexdigest()
    except OSError:
        config_hash = ""
    db = _db_path(settings, options)
    libraries = []
    for profile in settings.profile_records():
        for library in profile.library:
            try:
                info = library.stat()
            except OSError:
                libraries.append((str(library), 0, 0))
            else:
                libraries.append((str(library), info.st_mtime_ns, info.st_size))
    store = options.cache.store_version(db)
    secret = signing_secret(settings, db if store is not None else None)
    minute = options.clock().replace(second=0, microsecond=0)
    return (
        config_hash,
        str(db),
        store,
        tuple(libraries),
        hashlib.sha256(secret.encode()).hexdigest(),
        minute,
    )


def _cached(options: ServeOptions, page: str, render: Callable[[], Page]) -> Response:
    """`render`'s page from the cache, rendered anew only when what it is made of changed."""
    from starlette.responses import HTMLResponse

    key = (page, _made_of(options, _settings(options)))
    status, text = options.cache.page(key, render)
    return HTMLResponse(text, status, headers={"Cache-Control": "no-store"})


# --- the pages ------------------------------------------------------------------------------------


def index_page(options: ServeOptions) -> Response:
    """The profiles, each with its next digest's paper count and its verdicts page."""
    return _cached(options, "/", lambda: _index_html(options))


def _index_html(options: ServeOptions) -> Page:
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
    return 200, page("digest", "<h1>Next digests</h1><ul>" + "".join(rows) + "</ul>")


def digest_page(options: ServeOptions, name: str) -> Response:
    """The profile's next digest as the email shows it, with feedback buttons."""
    if not _profile(_settings(options), name):
        return _reply(404, "Not found", f"<p>No profile named {html.escape(name)}.</p>")
    return _cached(options, f"/{name}", lambda: _digest_html(options, name))


def _digest_html(options: ServeOptions, name: str) -> Page:
    with _preview_app(options) as app:
        if not _profile(app.settings, name):
            return 404, page("Not found", f"<p>No profile named {html.escape(name)}.</p>")
        profile = app.settings.profile_records(name)[0]
        plan = plan_digest(app, profile)
        secret = signing_secret(app.settings, app.store.path)
        linker = form_linker(secret, name, app.clock)
        rendered = render_digest(plan.digest, feedback=linker, post_to=f"/{quote(name)}/feedback")
    return 200, rendered.html


def _ask(options: ServeOptions, settings: Settings, name: str, token: str, purpose: str) -> Ask:
    """What the token asks; StoreError (503) first when there is no database: without it
    nothing can be recorded, and its generated secret cannot be read to check the link."""
    db = _db_path(settings, options)
    if not db.is_file():
        raise StoreError(
            f"{db}: the store is not there (no database yet: run `digest fetch`, or check "
            "`--db` and [store] path); nothing was recorded"
        )
    return verify(
        signing_secret(settings, db),
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


def _public_hosts(settings: Settings | None) -> tuple[str, ...]:
    """The Host names `[server] public_url` adds (its host with and without its port)."""
    public_url = settings.server.public_url if settings is not None else ""
    if not public_url:
        return ()
    parts = urlsplit(public_url)
    return tuple({parts.netloc.lower(), (parts.hostname or "").lower()} - {""})


def _request_limits(options: ServeOptions) -> tuple[tuple[str, ...], float]:
    """The public Host names and the form body deadline (defaults when the config is broken:
    the page then says what is wrong)."""
    try:
        settings: Settings | None = _settings(options)
    except DigestError:
        settings = None
    seconds = settings.server.body_seconds if settings is not None else BODY_SECONDS
    return _public_hosts(settings), seconds


def _origin_allowed(request: Request, public: tuple[str, ...]) -> bool:
    """A POST's Origin, when the browser sends one, names this server (its Host or the public
    URL's host); another site's page is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser form post from another site: the token alone guards it
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {request.headers.get("host", "").lower(), *public}


def _refused(status: int, title: str, body: str) -> Response:
    """A 4xx page for a request whose body was not read to its end: the connection is closed
    after it (what is left of the body would be read as the next request otherwise)."""
    response = _reply(status, title, body)
    response.headers["Connection"] = "close"
    return response


async def _form_token(request: Request, seconds: float) -> str | Response:
    """The `t` field of a urlencoded form, or the 4xx page refusing the form: larger than
    MAX_FORM_BYTES (413), more than MAX_FORM_FIELDS fields (400), not all there within
    `seconds` (408), or the client gone before it was (400, which nobody reads).

    The body is read here rather than by Starlette's `request.form()`: that bounds each field
    (1 MB) and the count of fields, not the whole body, has no deadline, and lets a client that
    leaves mid-body raise ClientDisconnect out of the endpoint (a traceback in the log).
    """
    from starlette.requests import ClientDisconnect

    too_large = (
        "<p>The form is too large: a form here holds one token "
        f"({MAX_FORM_BYTES:,} bytes at most).</p>"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return _refused(413, "Too large", too_large)
    body = bytearray()
    try:
        async with asyncio.timeout(seconds), aclosing(request.stream()) as stream:
            async for chunk in stream:
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    return _refused(413, "Too large", too_large)
    except TimeoutError:
        return _refused(
            408, "Too slow", f"<p>The form did not arrive within {seconds:g} seconds.</p>"
        )
    except ClientDisconnect:
        log.debug("a client left before its form had arrived")
        return _refused(400, "Gone", "<p>The form did not arrive.</p>")
    try:
        values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs: "Max number of fields exceeded"
        return _reply(
            400,
            "Bad form",
            f"<p>The form has too many fields (a form here holds one; {MAX_FORM_FIELDS} at "
            "most).</p>",
        )
    return (values.get("t") or [""])[0]


Handler = Callable[[ServeOptions, str, str], "Response"]


def _guarded(options: ServeOptions, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running `handler(options, profile, token)` in a worker thread, behind the
    Host check (and for a POST the Origin check and the bounded form)."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        public, seconds = await run_in_threadpool(_request_limits, options)
        port = int(request.scope.get("server", ("", 0))[1] or 0)
        host = request.headers.get("host")
        if not host_allowed(host, port, public):
            refused = "<p>This server answers only to its own names.</p>"
            return _reply(400 if not host else 421, "Refused", refused)
        token = request.query_params.get("t", "")
        if request.method == "POST":
            if not _origin_allowed(request, public):
                return _refused(403, "Refused", "<p>A form from another site was refused.</p>")
            found = await _form_token(request, seconds)
            if not isinstance(found, str):
                return found
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
        options.cache.close()


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
        options.cache.close()
