"""The checks the settings models run on single values: each returns the value (perhaps
normalised) or raises ValueError with the words the one-line config message shows."""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s<>,;]+@(?:localhost|[^@\s<>,;.]+(?:\.[^@\s<>,;.]+)+)$")


def as_list(value: Any) -> Any:
    """Accept a single string where a list of strings is expected (`email = "me@x.org"`)."""
    return [value] if isinstance(value, str) else value


def check_email(value: str) -> str:
    """An email address as given, stripped; ValueError when it is not one."""
    value = value.strip()
    if not _EMAIL.match(value) or _CONTROL.search(value):  # an address goes into headers
        raise ValueError(f"invalid email address {value!r}")
    return value


def check_timezone(value: str) -> str:
    """An IANA time zone name; ValueError naming it when zoneinfo does not know it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None
    return value


def no_inline_url(value: Any) -> Any:
    """`notify` entries are tables: a URL written in the config would put its token there."""
    entries = value if isinstance(value, list) else [value]
    if any(isinstance(entry, str) for entry in entries):
        raise ValueError(
            "a URL holds its token: read it from the environment or a file, as"
            ' { env = "VAR" } or { file = "path" }'
        )
    return entries


def check_unique(kind: str, names: list[str]) -> None:
    """ValueError naming the first name that occurs twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} name {name!r} is used twice")
        seen.add(name)


def single_line(value: str) -> str:
    """A string bound for a mail header or an SMTP command: no CR, LF or other control
    characters, which would start a header or a command of their own."""
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or control characters")
    return value


def clock_time(value: Any) -> Any:
    """`send_at` as TOML gives it: a time (`07:30:00`) or a string ("07:30"); a number would be
    read as seconds since midnight (730 is 00:12), so it is refused."""
    if isinstance(value, time | str):
        return value
    raise ValueError('must be a time in quotes, "HH:MM" (e.g. "07:30")')


def check_public_url(value: str) -> str:
    """An http(s) base URL without query or fragment: the links in the email start with it."""
    if not value:
        return value
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain spaces, line breaks or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not a web address (it must start with http:// or https://)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r}: no query, fragment or user name in the public URL")
    return value.rstrip("/")
