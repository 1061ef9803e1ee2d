"""Chat and push delivery through apprise: the short message, and the edge that sends it.

A profile's `notify` targets are recipients of the same outbox row as its email, addressed by
their label (`notify:NAME`). The chat message is made once, when the digest is queued
(`chat_message`, stored with the row), and fitted to each service's length limit when sent
(`fit`): papers that do not fit become "and N more", never an error.

apprise reports most failures by logging and returning False, and logs URLs (tokens) at some
levels; so its logger is kept to itself (nothing propagates to ours), its records are read
(by a filter on its logger that lets none through to any handler) only to tell an HTTP status
or a timeout apart, and every error names the target's label,
never its URL nor what a server answered. apprise is imported only when something is sent or
checked.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote

from digest.display import paper_link, short_reason
from digest.errors import DeliveryError
from digest.models import Digest, Match, NotifyTarget
from digest.tex import readable

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

log = logging.getLogger(__name__)

TOP_PAPERS = 5  # papers a chat message names at most; the rest are "and N more"
_TITLE_CHARS = 200
_WHY_CHARS = 140
_URL_CHARS = 4096  # the most a URL (from the environment or its file) may hold
# apprise's socket timeouts (its `cto` / `rto` URL arguments, 4 s each by default) at most.
MAX_TIMEOUT_SECONDS = 30.0
_SAFETY_CHARS = 64  # kept free below a service's limit (a title amalgamated into the body)

ChatStatus = Literal["sent", "pending", "ambiguous", "refused"]


class NotifyError(DeliveryError):
    """A chat or push target did not take the message (the text names its label only)."""


class ChatMessage(NamedTuple):
    """A digest as a chat message: the headline (the email's subject), one Markdown line per
    top paper, how many papers the digest has, and the link to the full digest ('' without a
    `[server] public_url`)."""

    title: str
    items: tuple[str, ...]
    total: int
    link: str

    def to_json(self) -> str:
        """The message as the outbox keeps it."""
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str) -> ChatMessage | None:
        """The message the outbox kept ('' or unreadable: None)."""
        try:
            data = json.loads(text)
            items = tuple(map(str, data["items"]))
            return cls(str(data["title"]), items, int(data["total"]), str(data["link"]))
        except (ValueError, TypeError, KeyError):
            return None


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def _escape(text: str, limit: int) -> str:
    """One line of plain text, cut to `limit` characters, Markdown's specials escaped."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", line)


def _link_target(url: str) -> str:
    """A URL safe inside a Markdown link's parentheses."""
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")


def paper_item(match: Match) -> str:
    """`- [Title](link) — why`: one paper of the chat message."""
    paper = match.paper
    title = _escape(readable(paper.title).text, _TITLE_CHARS)
    why = _escape(short_reason(match), _WHY_CHARS)
    line = f"- [{title}]({_link_target(paper_link(paper))})"
    return f"{line} — {why}" if why else line


def chat_message(digest: Digest, subject: str, public_url: str) -> ChatMessage:
    """The chat message of a digest: `subject` as the headline (its counts), the first
    `TOP_PAPERS` papers in the email's order (or why there is none), and the profile's page on
    `digest serve`."""
    papers = digest.papers
    link = f"{public_url.rstrip('/')}/{quote(digest.profile.name)}" if public_url else ""
    items = tuple(map(paper_item, papers[:TOP_PAPERS]))
    if not papers and digest.empty_reason:  # a "nothing new" digest (`send_empty`) says why
        items = (_escape(f"Nothing new: {digest.empty_reason}.", _TITLE_CHARS * 2),)
    return ChatMessage(subject, items, len(papers), link)


def _footer(message: ChatMessage, shown: int) -> str:
    """The last line: the link to the full digest and how many papers are not named."""
    rest = message.total - shown
    if message.link:
        more = f" ({rest} more)" if rest > 0 else ""
        return f"[Full digest]({_link_target(message.link)}){more}"
    if rest > 0:
        return f"… and {rest} more" if shown else f"{rest} papers"
    return "" if shown else "Nothing new."


def fit(message: ChatMessage, limit: int) -> str:
    """The Markdown body within `limit` characters: as many papers as fit, then the footer;
    a limit too small for even the footer cuts it."""
    for shown in range(len(message.items), -1, -1):
        parts = [*message.items[:shown], _footer(message, shown)]
        body = "\n".join(part for part in parts if part)
        if len(body) <= limit:
            return body
    return body[: max(limit, 0)]


def _shorter(message: ChatMessage, body: str) -> str | None:
    """A body about half as long as `body` (fewer papers; the footer whole), None when there is
    none shorter: what a server that refused `body` as too large (413) is offered next."""
    shorter = fit(message, max(len(body) // 2, len(_footer(message, 0))))
    return shorter if len(shorter) < len(body) else None


# --- the edge: apprise ---------------------------------------------------------------------------


def target_url(target: NotifyTarget, environ: Mapping[str, str]) -> str:
    """The target's URL from its environment variable or file; NotifyError (naming the
    variable or file, never a URL) when it is missing."""
    if target.env:
        url = environ.get(target.env, "").strip()
        if not url:
            raise NotifyError(f"{target.label}: the environment variable {target.env} is not set")
    else:
        assert target.file is not None
        try:
            with target.file.open(encoding="utf-8", errors="replace") as handle:
                url = handle.read(_URL_CHARS + 1).strip()
        except OSError as exc:
            raise NotifyError(f"{target.label}: cannot read {target.file}: {exc.strerror}") from exc
        if not url:
            raise NotifyError(f"{target.label}: {target.file} is empty")
    if len(url) > _URL_CHARS:
        raise NotifyError(f"{target.label}: the URL is longer than {_URL_CHARS} characters")
    return url


class _Capture(logging.Filter):
    """The filter of apprise's logger: keeps, for the thread that asked (`seen`), what apprise
    said while sending, and lets no record through to any handler (apprise logs URLs)."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        said: list[str] | None = getattr(self.local, "said", None)
        if said is not None and len(said) < 200:
            said.append(record.getMessage())
        return False

    @contextmanager
    def seen(self) -> Iterator[list[str]]:
        """What apprise logs in this thread inside the block."""
        said: list[str] = []
        self.local.said = said
        try:
            yield said
        finally:
            self.local.said = None


class _Quiet(logging.Filter):
    """urllib3 logs each request line, path and all (a webhook's token): not while sending."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "on", False)


_CAPTURE = _Capture()
_QUIET = _Quiet()
_SETUP = threading.Lock()


def _apprise() -> Any:
    """The apprise module, its logger kept to itself from before its import."""
    with _SETUP:
        logger = logging.getLogger("apprise")
        if _CAPTURE not in logger.filters:
            logger.addFilter(_CAPTURE)
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            logging.getLogger("urllib3.connectionpool").addFilter(_QUIET)
    import apprise

    return apprise


def _plugin(label: str, url: str) -> NotifyBase:
    """apprise's plugin for `url`, its timeouts bounded; NotifyError (permanent) when apprise
    does not accept the URL."""
    apprise = _apprise()
    with _CAPTURE.seen():
        # Nothing on disk: some plugins would keep tokens in apprise's persistent store.
        asset = apprise.AppriseAsset(secure_logging=True, storage_mode="memory")
        plugin: NotifyBase | None = apprise.Apprise.instantiate(url, asset=asset)
    if plugin is None:
        raise NotifyError(
            f"{label}: not a URL apprise accepts (check its scheme and parts)", permanent=True
        )
    if _renders_markdown_if_told(url):
        plugin.notify_format = apprise.NotifyFormat.MARKDOWN
    plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, MAX_TIMEOUT_SECONDS)
    plugin.socket_read_timeout = min(plugin.socket_read_timeout, MAX_TIMEOUT_SECONDS)
    return plugin


def _renders_markdown_if_told(url: str) -> bool:
    """ntfy renders Markdown when told so (apprise's `format=markdown`, its X-Markdown header);
    apprise's default for it is plain text. The URL's own `format=` wins."""
    scheme, _, rest = url.partition("://")
    return scheme.lower() in ("ntfy", "ntfys") and "format=" not in rest.lower()


def check_target(target: NotifyTarget, environ: Mapping[str, str]) -> str:
    """'' when the target's URL is there and apprise accepts it (nothing is sent), else the
    problem (naming the label, never the URL)."""
    try:
        _plugin(target.label, target_url(target, environ))
    except NotifyError as exc:
        return str(exc)
    return ""


def _budget(plugin: NotifyBase, title: str) -> int:
    """How many characters the body may have on this service (its title may share them)."""
    budget = int(plugin.body_maxlen)
    if int(plugin.title_maxlen) <= 0:
        budget -= len(title) + 2
    return max(budget - _SAFETY_CHARS, 0)


_STATUS = re.compile(r"error=(\d{3})\b")


class _Outcome(NamedTuple):
    ok: bool
    status: int  # the last HTTP status apprise logged (0: none)
    timed_out: bool  # no answer in time, after the request went out
    waited: float = 0.0  # set when the post was given up at its deadline


def post_deadline(plugin: NotifyBase) -> float:
    """How long one post may take in all: twice its connect and read timeouts and a second
    (the read timeout bounds each read, not the answer: a server could trickle it for ever)."""
    return 2 * (plugin.socket_connect_timeout + plugin.socket_read_timeout) + 1


def _post_within(plugin: NotifyBase, title: str, body: str) -> _Outcome:
    """`_post` in a worker thread, given up at `post_deadline` (the post may have arrived; the
    worker ends with its connection, which apprise's read timeout keeps moving)."""
    done: list[_Outcome | Exception] = []

    def work() -> None:
        try:
            done.append(_post(plugin, title, body))
        except Exception as exc:  # handed to the caller below
            done.append(exc)

    deadline = post_deadline(plugin)
    worker = threading.Thread(target=work, name="digest-notify", daemon=True)
    worker.start()
    worker.join(deadline)
    if not done:
        return _Outcome(False, 0, True, waited=deadline)
    if isinstance(done[0], Exception):
        raise done[0]
    return done[0]


def _post(plugin: NotifyBase, title: str, body: str) -> _Outcome:
    """One notify() call, and what apprise said about it."""
    apprise = _apprise()
    _QUIET.local.on = True
    try:
        with _CAPTURE.seen() as said:
            ok = bool(
                plugin.notify(
                    body=body,
                    title=title,
                    body_format=apprise.NotifyFormat.MARKDOWN,
                    overflow=apprise.OverflowMode.TRUNCATE,
                )
            )
    finally:
        _QUIET.local.on = False
    statuses = [int(found) for line in said for found in _STATUS.findall(line)]
    timed_out = any("Read timed out" in line or "ReadTimeout" in line for line in said)
    return _Outcome(ok, statuses[-1] if statuses else 0, timed_out)


def _failure(label: str, outcome: _Outcome, seconds: float) -> NotifyError:
    """The NotifyError for a failed post: permanent for a 4xx other than 408 and 429, ambiguous
    for a request that went out and got no answer, transient otherwise."""
    status = outcome.status
    if status:
        phrase = _phrase(status)
        permanent = 400 <= status < 500 and status not in (408, 429)
        later = "" if permanent else " (retried later)"
        return NotifyError(f"{label}: answered {status} {phrase}{later}", permanent=permanent)
    if outcome.timed_out:
        return NotifyError(
            f"{label}: no answer within {seconds:g} s; it may have arrived (retried later)",
            ambiguous=True,
        )
    return NotifyError(f"{label}: could not deliver (connection failed; retried later)")


def _phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (never the server's own words)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def send_chat(label: str, url: str, message: ChatMessage) -> None:
    """Post the message to one target, fitted to its service's limit; a 413 (the server's own
    limit is smaller) is tried again with half the papers, down to the footer alone. NotifyError
    when it failed."""
    plugin = _plugin(label, url)
    body: str | None = fit(message, _budget(plugin, message.title))
    outcome = _Outcome(False, 0, False)
    while body is not None:
        try:
            outcome = _post_within(plugin, message.title, body)
        except Exception as exc:  # a plugin's own bug: its text may hold the URL
            raise NotifyError(f"{label}: apprise failed ({type(exc).__name__})") from exc
        body = _shorter(message, body) if outcome.status == 413 else None
        if body is not None:
            plugin = _plugin(label, url)  # a new one: apprise's throttle would wait seconds
    if not outcome.ok:
        raise _failure(label, outcome, outcome.waited or float(plugin.socket_read_timeout))
    log.info("%s: delivered", label)


def deliver_chats(
    targets: Mapping[str, NotifyTarget],
    labels: Sequence[str],
    message: ChatMessage | None,
    environ: Mapping[str, str],
) -> dict[str, tuple[ChatStatus, str]]:
    """Post to each target (by label) on its own: each one's outcome and reply, as the outbox
    keeps them. A target no longer configured is refused; one whose URL is missing waits."""
    outcomes: dict[str, tuple[ChatStatus, str]] = {}
    for label in labels:
        outcomes[label] = _deliver_one(targets.get(label), label, message, environ)
    return outcomes


def _deliver_one(
    target: NotifyTarget | None,
    label: str,
    message: ChatMessage | None,
    environ: Mapping[str, str],
) -> tuple[ChatStatus, str]:
    """One target's outcome: (status, reply)."""
    if target is None:
        return "refused", f"{label}: no longer in the profile's notify targets"
    if message is None:
        return "refused", f"{label}: this digest has no chat message"
    try:
        send_chat(label, target_url(target, environ), message)
    except NotifyError as exc:
        status: ChatStatus = (
            "refused" if exc.permanent else "ambiguous" if exc.ambiguous else "pending"
        )
        return status, str(exc)
    return "sent", "accepted"
