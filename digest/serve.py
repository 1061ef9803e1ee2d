"""`digest serve`: the preview and the feedback pages, a small Starlette app run by uvicorn.

Pages: `/` lists the profiles; `/<profile>` is that profile's next digest, with a button per
feedback action, rendered once per change of what it is made of (the TOML, the store, the
library files, the signing secret, the minute) and that render served to every reader
(`PageCache`); `/<profile>/feedback`
(GET, from the email's links) shows what a link asks with one button, and its POST records it;
`/<profile>/f/<token>` (GET, the email's one short link a paper, `digest.short_links`) shows
the paper with a button per action, each posting to `/<profile>/feedback`;
`/<profile>/verdicts` lists the liked and disliked papers with an undo button each;
`/<profile>/feed.atom?key=…` is the profile's Atom feed of delivered papers (digest.serve_feed).

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

The request checks are in `digest.serve_guard`, the page cache in `digest.page_cache`, the
shared HTML in `digest.serve_html`.
"""

from __future__ import annotations

import errno
import hashlib
import html
import socket
import threading
import webbrowser
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from digest.app import App, Clock, plan_digest, plan_digests, system_clock
from digest.errors import ConfigError, DigestError, StoreError
from digest.feedback import (
    Ask,
    LinkError,
    apply,
    form_linker,
    page_actions,
    sign,
    signing_secret,
    verify,
)
from digest.models import Feedback
from digest.page_cache import Page
from digest.page_cache import PageCache as PageCache
from digest.preview import open_preview_app
from digest.render import render_digest
from digest.serve_feed import Conditions, FeedSource, feed_response
from digest.serve_feed import not_found as feed_not_found
from digest.serve_guard import MAX_FORM_BYTES as MAX_FORM_BYTES
from digest.serve_guard import MAX_FORM_FIELDS as MAX_FORM_FIELDS
from digest.serve_guard import admitted_token, public_hosts
from digest.serve_html import button, no_profile, no_profile_body, page, reply
from digest.settings import Settings
from digest.store import Store

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

BODY_SECONDS = 10.0  # `[server] body_seconds` when the config cannot be read


@dataclass(frozen=True)
class ServeOptions:
    """What the app reads on each request: the config file, the database override, the clock,
    and the cache of rendered pages."""

    config: Path | None
    db: Path | None
    clock: Clock = system_clock
    cache: PageCache = field(default_factory=PageCache, compare=False)


# --- loading per request --------------------------------------------------------------------------


def _settings(options: ServeOptions) -> Settings:
    """The config as it is now (read on every request)."""
    from digest.settings import load_settings

    return load_settings(options.config)


def _db_path(settings: Settings, options: ServeOptions) -> Path:
    """The database: `--db`, else `[store] path`."""
    return options.db or settings.resolve(settings.store.path)


def _problem(exc: DigestError) -> Response:
    """A store or config problem as a page: the server keeps running, a reload retries."""
    if isinstance(exc, StoreError):
        return reply(
            503,
            "Database",
            f"<h1>Database</h1><pre>{html.escape(str(exc))}</pre><p>Nothing was changed. "
            "If there is no database yet, run <code>digest fetch</code>, then reload.</p>",
        )
    return reply(
        500,
        "Config error",
        f"<h1>Config error</h1><pre>{html.escape(str(exc))}</pre><p>Fix it and reload.</p>",
    )


@contextmanager
def _preview_app(options: ServeOptions) -> Iterator[App]:
    """A read-only app for rendering previews, on the server's clock."""
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
    """Whether the config has a profile named `name`."""
    return any(p.name == name for p in settings.profiles)


def _made_of(options: ServeOptions, settings: Settings, *, daily: bool = False) -> Hashable:
    """What a preview page is made of, as a key: the config file's bytes, the store's identity
    and data version, the profiles' library files, the signing secret, and the minute (the
    window moves with the clock; `daily`: the UTC day, for the feeds, whose days are whole).
    Any change of one is a new key, hence a new render."""
    config = settings.path
    try:
        config_hash = hashlib.sha256(config.read_bytes()).hexdigest()
    except OSError:
        config_hash = ""
    db = _db_path(settings, options)
    libraries = [
        _file_stamp(library)
        for profile in settings.profile_records()
        for library in profile.library
    ]
    store = options.cache.store_version(db)
    secret = signing_secret(settings, db if store is not None else None)
    now = options.clock()
    minute = now.astimezone(UTC).date() if daily else now.replace(second=0, microsecond=0)
    return (
        config_hash,
        str(db),
        store,
        tuple(libraries),
        hashlib.sha256(secret.encode()).hexdigest(),
        minute,
    )


def _file_stamp(path: Path) -> tuple[str, int, int]:
    """(path, mtime in ns, size) of a library file; zeros when it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), info.st_mtime_ns, info.st_size)


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
    """Render the index page."""
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
        return no_profile(name)
    return _cached(options, f"/{name}", lambda: _digest_html(options, name))


def _digest_html(options: ServeOptions, name: str) -> Page:
    """Render the profile's next digest with its feedback buttons."""
    with _preview_app(options) as app:
        if not _profile(app.settings, name):
            return 404, page("Not found", no_profile_body(name))
        profile = app.settings.profile_records(name)[0]
        plan = plan_digest(app, profile)
        secret = signing_secret(app.settings, app.store.path)
        linker = form_linker(secret, name, app.clock)
        rendered = render_digest(plan.digest, feedback=linker, post_to=f"/{quote(name)}/feedback")
    return 200, rendered.html


def _existing_db(options: ServeOptions, settings: Settings) -> Path:
    """The database, or StoreError (503) when there is none: without it nothing can be
    recorded, and its generated secret cannot be read to check a link."""
    db = _db_path(settings, options)
    if not db.is_file():
        raise StoreError(
            f"{db}: the store is not there (no database yet: run `digest fetch`, or check "
            "`--db` and [store] path); nothing was recorded"
        )
    return db


def _ask(options: ServeOptions, settings: Settings, name: str, token: str, purpose: str) -> Ask:
    """What the token asks; StoreError (503) first when there is no database."""
    db = _existing_db(options, settings)
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
        return no_profile(name)
    ask = _ask(options, settings, name, token, "feedback")
    with _preview_app(options) as app:
        paper = app.store.get_paper(ask.paper_key)
    title = paper.title if paper is not None else ask.paper_key
    body = (
        f"<h1>{html.escape(ask.label[:1].upper() + ask.label[1:])}?</h1>"
        f"<p>Profile “{html.escape(name)}”, paper: <b>{html.escape(title)}</b></p>"
        + button(f"/{quote(name)}/feedback", token, f"Yes, {ask.label}")
    )
    return reply(200, "Feedback", body)


def paper_page(options: ServeOptions, name: str, token: str) -> Response:
    """GET of an email's one feedback link (`digest.short_links`): the paper, and a button per
    action, each posting its own signed token to `/<profile>/feedback` as the preview's buttons
    do (`record_page` records it). Records nothing."""
    from digest.match import match_profiles
    from digest.short_links import read_token

    settings = _settings(options)
    if not _profile(settings, name):
        return no_profile(name)
    _existing_db(options, settings)
    with _preview_app(options) as app:
        store = app.store
        secret = signing_secret(app.settings, store.path)
        link = read_token(
            secret,
            token,
            name,
            lambda number: _numbered_key(store, number),
            max_age_days=app.settings.server.link_days,
            clock=options.clock,
        )
        paper = store.get_paper(link.paper_key)
        profile = app.settings.profile_records(name)[0]
    if paper is None:  # numbered a moment ago: the store lost it meanwhile
        raise LinkError("This link is not valid.", 403)
    matched = match_profiles([paper], [profile])[name]
    asks = page_actions(name, matched[0] if matched else None, paper)
    forms = "".join(
        "<p>"
        + button(
            f"/{quote(name)}/feedback",
            sign(secret, "feedback", ask, clock=options.clock),
            ask.label[:1].upper() + ask.label[1:],
        )
        + "</p>"
        for ask in asks
    )
    authors = ", ".join(paper.authors[:10]) + (" et al." if len(paper.authors) > 10 else "")
    body = (
        f"<h1>{html.escape(paper.title)}</h1><p>{html.escape(authors)}</p>"
        f"<p>Feedback for the profile “{html.escape(name)}”:</p>{forms}"
        f"<p><a href='/{quote(name)}/verdicts'>Liked and disliked</a></p>"
    )
    return reply(200, "Feedback", body)


def _numbered_key(store: Store, number: int) -> str | None:
    """The key of the stored paper with this number, if any."""
    paper = store.numbered_paper(number)
    return paper.key if paper is not None else None


def record_page(options: ServeOptions, name: str, token: str) -> Response:
    """POST of a feedback token: do it once; a replay says it is already recorded."""
    settings = _settings(options)
    if not _profile(settings, name):
        return no_profile(name)
    ask = _ask(options, settings, name, token, "feedback")
    with _writable_store(settings, options) as store:
        _, said = apply(ask, store, settings.path, options.clock())
    back = f"<p><a href='/{quote(name)}'>Next digest</a> · <a href='/{quote(name)}/verdicts'>"
    return reply(200, "Feedback", f"<h1>{html.escape(said)}</h1>{back}Liked and disliked</a></p>")


def verdicts_page(options: ServeOptions, name: str) -> Response:
    """The profile's liked and disliked papers, newest first, each with an undo button."""
    settings = _settings(options)
    if not _profile(settings, name):
        return no_profile(name)
    with _preview_app(options) as app:
        verdicts = app.store.feedback(name)
        secret = signing_secret(app.settings, app.store.path)
        rows = [_verdict_row(app.store, secret, name, verdict) for verdict in verdicts]
    listed = "<ul>" + "".join(rows) + "</ul>" if rows else "<p>Nothing yet.</p>"
    return reply(
        200, "Liked and disliked", f"<h1>Liked and disliked: {html.escape(name)}</h1>" + listed
    )


def _verdict_row(store: Store, secret: str, name: str, verdict: Feedback) -> str:
    """One liked or disliked paper, with its undo button."""
    paper = store.get_paper(verdict.paper_key)
    title = paper.title if paper is not None else verdict.paper_key
    token = sign(secret, "undo", Ask(name, verdict.paper_key, verdict.action))
    return (
        f"<li>{'liked' if verdict.action == 'like' else 'disliked'}: "
        f"{html.escape(title)} " + button(f"/{quote(name)}/undo", token, "undo") + "</li>"
    )


def undo_page(options: ServeOptions, name: str, token: str) -> Response:
    """POST of an undo token: forget that verdict."""
    settings = _settings(options)
    if not _profile(settings, name):
        return no_profile(name)
    ask = _ask(options, settings, name, token, "undo")
    with _writable_store(settings, options) as store:
        removed = store.remove_feedback(name, ask.paper_key)
    said = "Undone." if removed else "Nothing to undo: it was already undone."
    return reply(
        200,
        "Undo",
        f"<h1>{said}</h1><p><a href='/{quote(name)}/verdicts'>Liked and disliked</a></p>",
    )


def feed_page(
    options: ServeOptions, name: str, key: str, base: str, conditions: Conditions
) -> Response:
    """`/<profile>/feed.atom?key=…`: the profile's Atom feed (digest.serve_feed), 404 alike for
    a wrong key, an unknown profile and no database."""
    settings = _settings(options)
    if not _profile(settings, name) or not _db_path(settings, options).is_file():
        return feed_not_found()
    source = FeedSource(
        lambda: _preview_app(options),
        options.cache,
        _made_of(options, settings, daily=True),
        settings.server.public_url or base,
    )
    return feed_response(source, name, key, conditions)


def _feed_endpoint(options: ServeOptions) -> Callable[[Request], Awaitable[Response]]:
    """The feed's endpoint: the Host check, then `feed_page` in a worker thread."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        admitted = await _admitted(request, options)
        if not isinstance(admitted, str):
            return admitted
        name = str(request.path_params.get("profile", ""))
        key = request.query_params.get("key", "")
        headers = request.headers
        conditions = Conditions(headers.get("if-none-match"), headers.get("if-modified-since"))
        base = str(request.base_url)
        try:
            return await run_in_threadpool(feed_page, options, name, key, base, conditions)
        except DigestError as exc:
            return _problem(exc)

    return endpoint


# --- the app --------------------------------------------------------------------------------------


def _request_limits(options: ServeOptions) -> tuple[tuple[str, ...], float]:
    """The public Host names and the form body deadline (defaults when the config is broken:
    the page then says what is wrong)."""
    try:
        settings: Settings | None = _settings(options)
    except DigestError:
        settings = None
    seconds = settings.server.body_seconds if settings is not None else BODY_SECONDS
    return public_hosts(settings), seconds


async def _admitted(request: Request, options: ServeOptions) -> Response | str:
    """The request's form token once the Host check (and for a POST the Origin check and the
    bounded form) let it in; else the refusal to send."""
    from starlette.concurrency import run_in_threadpool

    public, seconds = await run_in_threadpool(_request_limits, options)
    return await admitted_token(request, public, seconds)


Handler = Callable[[ServeOptions, str, str], "Response"]


def _guarded(options: ServeOptions, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running `handler(options, profile, token)` in a worker thread, behind the
    Host check (and for a POST the Origin check and the bounded form)."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        token = await _admitted(request, options)
        if not isinstance(token, str):
            return token
        name = str(request.path_params.get("profile", ""))
        token = str(request.path_params.get("token", token))  # a short link's, in its path
        try:
            return await run_in_threadpool(handler, options, name, token)
        except LinkError as exc:
            said = f"<h1>{html.escape(str(exc))}</h1><p>Nothing was recorded.</p>"
            return reply(exc.status, "Link refused", said)
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
            route("/{profile}/f/{token}", paper_page, "GET"),
            route("/{profile}/verdicts", lambda o, name, _token: verdicts_page(o, name), "GET"),
            route("/{profile}/undo", undo_page, "POST"),
            Route("/{profile}/feed.atom", _feed_endpoint(options), methods=["GET"]),
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
