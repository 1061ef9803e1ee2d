"""Feedback: signed links in the email, what they do, and the muted-author post-filter.

The email has one short link a paper (`digest.short_links`: a compact token binding the profile
and the paper) to a page listing the paper's actions. Each action there, on the preview page,
and in the emails sent before short links (one link per action, to a confirm page) is a token
(itsdangerous, URL-safe, timed) binding the profile, the paper key and the action, so a
forwarded email cannot act for another profile or paper, and nobody without the secret can forge
one. Opening a link (GET) only shows a page with buttons; a button's POST records its action:
mail scanners that prefetch links never record anything.

The secret comes from `[server] secret` (DIGEST_SERVER__SECRET) or `secret_file`; without one,
one is generated once into a 0600 file beside the database. It is never printed or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from digest.errors import ConfigError, UnchangedError
from digest.models import FeedbackAction, Match, Paper, paper_keys, parse_arxiv_id
from digest.short_links import MAX_CLOCK_SKEW as MAX_CLOCK_SKEW
from digest.short_links import LinkError as LinkError
from digest.short_links import check_age, make_token, other_secret_error

if TYPE_CHECKING:
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    from digest.settings import Settings
    from digest.store import Store

Clock = Callable[[], datetime]
Purpose = Literal["feedback", "undo"]
# A salt per purpose: an undo token is not a feedback token, and neither signs anything else.
_SALTS: dict[Purpose, str] = {"feedback": "digest.feedback.v1", "undo": "digest.undo.v1"}
MUTE_AUTHOR = "mute-author:"
MUTE_TERM = "mute-term:"
_MAX_TOKEN_CHARS = 2000  # a longer token is refused before any decoding
_MAX_VALUE_CHARS = 300  # a muted name or term carried in a token
SECRET_FILE_SUFFIX = ".secret"


@dataclass(frozen=True, slots=True)
class Ask:
    """What a verified token asks for: `action` is like, dislike, mute-author:…, mute-term:…"""

    profile: str
    paper_key: str
    action: str

    @property
    def label(self) -> str:
        """The action in a reader's words."""
        if self.action == "like":
            return "more like this"
        if self.action == "dislike":
            return "less like this"
        if self.action.startswith(MUTE_AUTHOR):
            return f"mute the author {self.action.removeprefix(MUTE_AUTHOR)}"
        return f"mute the term “{self.action.removeprefix(MUTE_TERM)}”"


def valid_action(action: str) -> bool:
    """True for like, dislike, or a mute with a short, single-line name or term."""
    if action in ("like", "dislike"):
        return True
    for prefix in (MUTE_AUTHOR, MUTE_TERM):
        value = action.removeprefix(prefix)
        if action.startswith(prefix) and value.strip() and len(value) <= _MAX_VALUE_CHARS:
            return value.isprintable()
    return False


# --- the secret -----------------------------------------------------------------------------------


def secret_path(db_path: Path) -> Path:
    """The generated secret's file: beside the database, `<db name>.secret`."""
    return db_path.with_name(db_path.name + SECRET_FILE_SUFFIX)


def signing_secret(settings: Settings, db_path: Path | None) -> str:
    """The configured secret, else the one generated beside the database (created once, 0600).

    A store in memory (tests, `digest match --input`) gets a secret for this process alone.
    """
    configured = settings.server.configured_secret()
    if configured is not None:
        return configured
    if db_path is None:
        return _PROCESS_SECRET
    path = secret_path(db_path)
    if not path.exists():
        _create_secret(path)
    return _read_secret(path)


def _create_secret(path: Path) -> None:
    """Generate a secret into `path`, unless another process or thread does so first."""
    # Written whole into a private temporary file, then linked into place, which fails when
    # another process or thread got there first: a reader never sees a half-written secret
    # (the first requests to a new store come many at once), and the first one made wins.
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the link-signing secret: {exc.strerror}") from exc


_PROCESS_SECRET = secrets.token_urlsafe(32)


def _read_secret(path: Path) -> str:
    """The secret stored at `path`; ConfigError when unreadable or too short."""
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the link-signing secret: {exc.strerror}") from exc
    if len(value) < 16:
        raise ConfigError(f"{path}: the link-signing secret is too short; delete the file")
    return value


# --- tokens ---------------------------------------------------------------------------------------


# Actions as the token spells them: every link in an email carries one, so they are short.
_CODES = {"like": "l", "dislike": "d", MUTE_AUTHOR: "a:", MUTE_TERM: "t:"}


def _encode(action: str) -> str:
    """An action as the token spells it."""
    if action in _CODES:
        return _CODES[action]
    prefix = MUTE_AUTHOR if action.startswith(MUTE_AUTHOR) else MUTE_TERM
    return _CODES[prefix] + action.removeprefix(prefix)


def _decode(code: str) -> str:
    """The action a token's code spells ('' for none)."""
    for action, short in _CODES.items():
        if code == short and not action.endswith(":"):
            return action
        if action.endswith(":") and code.startswith(short):
            return action + code.removeprefix(short)
    return ""


def _serializer(
    secret: str, purpose: Purpose, profile: str, clock: Clock | None
) -> URLSafeTimedSerializer:
    """The serializer for one purpose and one profile: the profile is in the salt, so a token
    made for one profile does not verify for any other (and need not carry the name)."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class ClockSigner(TimestampSigner):
        """Reads the time from the app's clock (tests move it to expire a link)."""

        def get_timestamp(self) -> int:
            return int(clock().timestamp()) if clock is not None else super().get_timestamp()

    salt = f"{_SALTS[purpose]}:{profile}"
    return URLSafeTimedSerializer(secret, salt=salt, signer=ClockSigner)


def key_id(secret: str) -> str:
    """A short name of the signing secret (not a way to it: 36 bits of an HMAC under it), which
    every token carries, so a link signed under another secret says so instead of "tampered"."""
    digest = hmac.new(secret.encode(), b"digest.key-id.v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode()[:6]


def sign(secret: str, purpose: Purpose, ask: Ask, *, clock: Clock | None = None) -> str:
    """A token binding the profile (through the salt), paper key and action, and naming the
    secret it was signed under (`key_id`)."""
    payload = [ask.paper_key, _encode(ask.action), key_id(secret)]
    token = _serializer(secret, purpose, ask.profile, clock).dumps(payload)
    return token if isinstance(token, str) else token.decode()


def verify(
    secret: str,
    purpose: Purpose,
    token: str,
    profile: str,
    *,
    max_age_days: int,
    clock: Clock,
) -> Ask:
    """The request a token signs, for `profile`; LinkError otherwise: 403 tampered, forged,
    another profile's, signed under a secret since replaced, or made in the future (beyond
    MAX_CLOCK_SKEW of `clock`); 410 expired (older than `max_age_days` plus the skew)."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise LinkError("This link is not valid.", 403)
    serializer = _serializer(secret, purpose, profile, clock)
    payload, signed = _load(serializer, token, secret, profile)
    check_age(clock() - signed.astimezone(UTC), max_age_days)
    if not _well_formed(payload):
        raise LinkError("This link is not valid.", 403)
    return Ask(profile, payload[0], _decode(payload[1]))


def _load(
    serializer: URLSafeTimedSerializer, token: str, secret: str, profile: str
) -> tuple[Any, datetime]:
    """The token's payload and when it was signed; LinkError (403) when its signature fails,
    saying so when it was signed under another secret."""
    from itsdangerous import BadData, BadSignature

    try:
        # The age is checked by `check_age` against our clock with the skew allowed, not by
        # itsdangerous (which calls a token signed a second ahead of this machine's clock expired).
        payload, signed = serializer.loads(token, return_timestamp=True)
    except BadSignature as exc:
        if _other_key(serializer, exc, secret):
            raise other_secret_error() from exc
        raise LinkError(
            f"This link is not valid for the profile “{profile}” (changed, cut, or made for "
            "another profile).",
            403,
        ) from exc
    except BadData as exc:
        raise LinkError("This link is not valid.", 403) from exc
    return payload, signed


def _well_formed(payload: Any) -> bool:
    """Whether a verified payload is [paper key, action code(, key id)] with a valid action."""
    return (
        isinstance(payload, list)
        and len(payload) in (2, 3)  # tokens made before key ids carry two parts
        and all(isinstance(part, str) for part in payload)
        and valid_action(_decode(payload[1]))
    )


def _other_key(serializer: URLSafeTimedSerializer, exc: BadSignature, secret: str) -> bool:
    """True when a token that failed its signature names a secret other than `secret`: its
    (unverified) payload decodes and carries another key id. A tampered token rarely does."""
    from itsdangerous import BadData

    if exc.payload is None:
        return False
    try:
        payload: Any = serializer.load_payload(exc.payload)
    except BadData:
        return False
    return (
        isinstance(payload, list)
        and len(payload) == 3
        and isinstance(payload[2], str)
        and payload[2] != key_id(secret)
    )


# --- the links in a digest ------------------------------------------------------------------------

FeedbackLink = tuple[str, str]  # (label, URL or token)


def paper_actions(match: Match) -> list[tuple[str, str]]:
    """(label, action) of the feedback a paper offers: more/less like this on every paper; on
    a rule match also "mute this author" per followed author and "mute this term" per term."""
    found = [("more like this", "like"), ("less like this", "dislike")]
    mutes = _mutes(match)
    labels = list(mutes.values())
    for action, label in mutes.items():
        if valid_action(action):
            # Two of a kind on one paper: say which one each link mutes.
            named = labels.count(label) > 1
            found.append((f"{label} ({action.partition(':')[2]})" if named else label, action))
    return found


def _mutes(match: Match) -> dict[str, str]:
    """The mutes a rule match offers, action -> label, in the order of its reasons."""
    mutes: dict[str, str] = {}
    for reason in match.reasons:
        if reason.kind == "author":
            mutes.setdefault(MUTE_AUTHOR + reason.term, "mute this author")
        elif reason.kind in ("keyword", "all_of"):
            mutes.setdefault(MUTE_TERM + reason.term, "mute this term")
    return mutes


Linker = Callable[[Match], list[FeedbackLink]]


PAPER_LINK_LABEL = "feedback"  # the one link a paper has in the email
PAGE_AUTHORS = 10  # authors of a paper its feedback page offers to mute (papers have thousands)
PaperNumber = Callable[[str], "int | None"]


def email_linker(
    public_url: str,
    secret: str,
    profile: str,
    clock: Clock,
    number: PaperNumber | None = None,
) -> Linker:
    """Each paper's feedback link for the email: one short link (`digest.short_links`),
    `public_url/<profile>/f/<token>`, to the page of `digest serve` listing the paper's actions.
    `number` gives a stored paper's number (`Store.paper_number`); a paper without one (not
    stored) gets the long links of before instead, a confirm page per action."""
    root = f"{public_url.rstrip('/')}/{quote(profile)}"
    numbers: dict[str, int | None] = {}  # a digest is rendered several times to fit

    def links(match: Match) -> list[FeedbackLink]:
        key = match.paper.key
        if key not in numbers:
            numbers[key] = number(key) if number is not None else None
        found = numbers[key]
        if found is None:
            return _long_links(root, secret, profile, match, clock)
        return [(PAPER_LINK_LABEL, f"{root}/f/{make_token(secret, profile, key, found, clock())}")]

    return links


def _long_links(
    root: str, secret: str, profile: str, match: Match, clock: Clock
) -> list[FeedbackLink]:
    """A link per action, each to its confirm page (the email's links before short ones)."""
    return [
        (label, f"{root}/feedback?t=" + sign(secret, "feedback", ask, clock=clock))
        for label, action in paper_actions(match)
        for ask in [Ask(profile, match.paper.key, action)]
    ]


def page_actions(profile: str, match: Match | None, paper: Paper) -> list[Ask]:
    """What a paper's feedback page offers: what the email's links offered for the match
    (`paper_actions`; like and dislike alone when the paper no longer matches), then a mute for
    each of the paper's first PAGE_AUTHORS authors not offered yet (a followed author, offered
    under the name the profile follows, is not offered again as the paper spells it)."""
    chosen = paper_actions(match) if match is not None else [("", "like"), ("", "dislike")]
    actions = [action for _, action in chosen]
    followed = set(match.followed_names) if match is not None else set()
    for author in paper.authors[:PAGE_AUTHORS]:
        action = MUTE_AUTHOR + author
        if author not in followed and action not in actions and valid_action(action):
            actions.append(action)
    return [Ask(profile, paper.key, action) for action in actions]


def form_linker(secret: str, profile: str, clock: Clock | None = None) -> Linker:
    """Each paper's feedback for the preview page: (label, token) posted straight to the
    server."""

    def links(match: Match) -> list[FeedbackLink]:
        return [
            (label, sign(secret, "feedback", Ask(profile, match.paper.key, action), clock=clock))
            for label, action in paper_actions(match)
        ]

    return links


# --- doing it -------------------------------------------------------------------------------------


def resolve_paper(store: Store, given: str) -> str:
    """The stored paper key for a key (`arxiv:…`, `doi:…`), an arXiv id or URL, or a DOI;
    ConfigError when the store knows no such paper."""
    text = given.strip()
    candidates = [text]
    arxiv_id, _ = parse_arxiv_id(text)
    if arxiv_id:
        candidates.append(f"arxiv:{arxiv_id}")
    doi = text.removeprefix("https://doi.org/").removeprefix("doi:")
    if doi.startswith("10."):
        candidates.extend(paper_keys("", doi, ""))
    for candidate in candidates:
        paper = store.get_paper(candidate)
        if paper is not None:
            return paper.key
    raise ConfigError(f"no stored paper known as {given!r} (a key, an arXiv id or a DOI)")


def apply(ask: Ask, store: Store, config: Path, now: datetime) -> tuple[bool, str]:
    """Do what `ask` asks: record a like or dislike, or mute through the profile file.

    Returns (changed anything, a sentence for the reader). A replay changes nothing.
    """
    if ask.action in ("like", "dislike"):
        action: FeedbackAction = "like" if ask.action == "like" else "dislike"
        if store.record_feedback(ask.profile, ask.paper_key, action, now):
            return True, f"Recorded: {ask.label}."
        return False, f"Already recorded: {ask.label}."
    if ask.action.startswith(MUTE_TERM):
        return _mute_term(config, ask.profile, ask.action.removeprefix(MUTE_TERM))
    return _mute_author(config, ask.profile, ask.action.removeprefix(MUTE_AUTHOR))


def _mute_term(config: Path, profile: str, term: str) -> tuple[bool, str]:
    """Exclude `term`; a term the profile already excludes (or covers) is "already muted",
    decided under the edit's lock, so a double click is one edit and one "already"."""
    from digest.profile_edit import add_term

    try:
        add_term(config, profile, "exclude", term)
    except UnchangedError:
        return False, f"Already muted: papers that mention “{term}” are left out."
    return True, f"Muted: papers that mention “{term}” are left out from now on."


def _mute_author(config: Path, profile: str, name: str) -> tuple[bool, str]:
    """Unfollow a followed author; any other author goes on the profile's `mute_authors`."""
    from digest.profile_edit import unfollow_or_mute

    try:
        done = unfollow_or_mute(config, profile, name)
    except UnchangedError:
        return False, f"Already muted: {name}."
    if done == "unfollowed":
        return True, f"No longer following {name}."
    return True, f"Muted: papers by {name} are left out from now on."


# --- muted authors --------------------------------------------------------------------------------
