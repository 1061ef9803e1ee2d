"""The HTML of `digest serve`'s own pages: a small self-contained page, the no-store reply
around it, and the one-button forms that post a token."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.responses import Response


def page(title: str, body: str) -> str:
    """A small, self-contained HTML page (no remote resources)."""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        "<body style='font-family: sans-serif; font-size: 16px; max-width: 640px; margin: 2em "
        f"auto; padding: 0 1em'>{body}</body></html>"
    )


def reply(status: int, title: str, body: str) -> Response:
    """`page(title, body)` as a response that no cache keeps."""
    from starlette.responses import HTMLResponse

    return HTMLResponse(page(title, body), status, headers={"Cache-Control": "no-store"})


def no_profile(name: str) -> Response:
    """The 404 page for a profile the config does not have."""
    return reply(404, "Not found", no_profile_body(name))


def no_profile_body(name: str) -> str:
    """What the 404 page for an unknown profile says."""
    return f"<p>No profile named {html.escape(name)}.</p>"


def button(action: str, token: str, label: str) -> str:
    """A one-button form posting `token` (field `t`) to `action`."""
    return (
        f"<form method='post' action='{html.escape(action)}' style='display:inline'>"
        f"<input type='hidden' name='t' value='{html.escape(token)}'>"
        f"<button type='submit' style='font-size:16px'>{html.escape(label)}</button></form>"
    )
