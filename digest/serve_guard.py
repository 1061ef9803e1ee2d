"""What `digest serve` checks before a handler runs: the Host a request names, a POST's
Origin, and its form body, read to at most MAX_FORM_BYTES and MAX_FORM_FIELDS within the
`[server] body_seconds` deadline (413, 400, 408, each closing the connection)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from digest.preview import host_allowed
from digest.serve_html import reply

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from digest.settings import Settings

log = logging.getLogger("digest.serve")  # the server's own log, as before the split

MAX_FORM_BYTES = 8_192  # a feedback form holds one token
MAX_FORM_FIELDS = 5  # ... in one field; a few more are tolerated, hundreds are refused
_TOO_LARGE = (
    f"<p>The form is too large: a form here holds one token ({MAX_FORM_BYTES:,} bytes at most).</p>"
)


def public_hosts(settings: Settings | None) -> tuple[str, ...]:
    """The Host names `[server] public_url` adds (its host with and without its port)."""
    public_url = settings.server.public_url if settings is not None else ""
    if not public_url:
        return ()
    parts = urlsplit(public_url)
    return tuple({parts.netloc.lower(), (parts.hostname or "").lower()} - {""})


async def admitted_token(
    request: Request, public: tuple[str, ...], seconds: float
) -> str | Response:
    """The request's token once it passes the Host check (and for a POST the Origin check and
    the bounded form, whose `t` field it is); else the page refusing it."""
    port = int(request.scope.get("server", ("", 0))[1] or 0)
    host = request.headers.get("host")
    if not host_allowed(host, port, public):
        refused = "<p>This server answers only to its own names.</p>"
        return reply(400 if not host else 421, "Refused", refused)
    if request.method != "POST":
        return request.query_params.get("t", "")
    if not origin_allowed(request, public):
        return refuse(403, "Refused", "<p>A form from another site was refused.</p>")
    return await form_token(request, seconds)


def origin_allowed(request: Request, public: tuple[str, ...]) -> bool:
    """A POST's Origin, when the browser sends one, names this server (its Host or the public
    URL's host); another site's page is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser form post from another site: the token alone guards it
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {request.headers.get("host", "").lower(), *public}


def refuse(status: int, title: str, body: str) -> Response:
    """A 4xx page for a request whose body was not read to its end: the connection is closed
    after it (what is left of the body would be read as the next request otherwise)."""
    response = reply(status, title, body)
    response.headers["Connection"] = "close"
    return response


async def form_token(request: Request, seconds: float) -> str | Response:
    """The `t` field of a urlencoded form, or the 4xx page refusing the form: larger than
    MAX_FORM_BYTES (413), more than MAX_FORM_FIELDS fields (400), not all there within
    `seconds` (408), or the client gone before it was (400, which nobody reads).

    The body is read here rather than by Starlette's `request.form()`: that bounds each field
    (1 MB) and the count of fields, not the whole body, has no deadline, and lets a client that
    leaves mid-body raise ClientDisconnect out of the endpoint (a traceback in the log).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return refuse(413, "Too large", _TOO_LARGE)
    body = await _read_form(request, seconds)
    if not isinstance(body, bytearray):
        return body
    return _token_field(body)


async def _read_form(request: Request, seconds: float) -> bytearray | Response:
    """The form body, read within `seconds` and MAX_FORM_BYTES; else the page refusing it."""
    from starlette.requests import ClientDisconnect

    body = bytearray()
    try:
        async with asyncio.timeout(seconds), aclosing(request.stream()) as stream:
            async for chunk in stream:
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    return refuse(413, "Too large", _TOO_LARGE)
    except TimeoutError:
        return refuse(
            408, "Too slow", f"<p>The form did not arrive within {seconds:g} seconds.</p>"
        )
    except ClientDisconnect:
        log.debug("a client left before its form had arrived")
        return refuse(400, "Gone", "<p>The form did not arrive.</p>")
    return body


def _token_field(body: bytearray) -> str | Response:
    """The `t` field of a form body ('' without one); a 400 page for too many fields."""
    try:
        values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs: "Max number of fields exceeded"
        return reply(
            400,
            "Bad form",
            f"<p>The form has too many fields (a form here holds one; {MAX_FORM_FIELDS} at "
            "most).</p>",
        )
    return (values.get("t") or [""])[0]
