"""Short feedback links: one per paper in the email, to a page of `digest serve` listing that
paper's actions.

A token is 32 to 38 characters of base64url (at most `MAX_TOKEN_CHARS`), of these bytes:

    version (1) | key id (3) | minute made (4) | paper number (1-8, LEB128) | MAC (12)

- The paper is named by its number in the store (`Store.paper_number`: the `seq` a paper gets
  once, when first stored, never changed, reused or renumbered, by VACUUM or a backup either),
  not by its key: a key may be a 100-character DOI or a title fingerprint, a number is two or
  three bytes. The key is still bound: the MAC covers the paper key the number names, so a
  number that names another paper (another database behind the same secret) fails the check.
- The profile is not carried: it is in the link's path (`/<profile>/f/<token>`), and the MAC
  covers it, so a forwarded link cannot act for another profile.
- The minute the link was made, as today's itsdangerous tokens carry the second: the server's
  `[server] link_days` decides the expiry when the link is opened (shortening it applies to
  links already sent), and a link made ahead of the server's clock is told apart.
- The key id names the secret (the same as `digest.feedback.key_id`, 24 bits of it), so a link
  signed under a secret since replaced says so rather than "changed".
- The MAC is HMAC-SHA256 under the link-signing secret, over a label of this format, the
  profile, the paper key and every byte before it, cut to 96 bits. Cutting is safe here because
  nobody can check a guess offline (the secret never leaves the server): a forger must ask the
  server, one request per guess; at 10,000 requests a second for ten years (2^42 guesses) the
  chance of one passing is 2^-54. 64 bits would leave 2^-22; 96 cost 5 characters more a link.

Why not itsdangerous (which the long links use, and which `digest.feedback` still verifies):
its tokens are JSON of the payload plus a 10-character timestamp and a 27-character signature,
about 80 characters before any paper key; this format is the same construction (HMAC of a
payload with a time) in binary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from digest.errors import ConfigError

Clock = Callable[[], datetime]

VERSION = 1
MAX_TOKEN_CHARS = 60
_MAC_BYTES = 12
_KEY_ID_BYTES = 3
_MAX_NUMBER_BYTES = 8
_LABEL = b"digest.paper-link.v1"
_HEAD = struct.Struct(">B3sI")  # version, key id, minute made
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Clocks of the machine that sends the email and the one that serves the links differ by a few
# minutes at worst (NTP keeps them far closer): a link is taken this much early or late.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class LinkError(ConfigError):
    """A feedback link that cannot be used: tampered, expired or for another profile."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def other_secret_error() -> LinkError:
    """The refusal of a link signed under a secret since replaced."""
    return LinkError(
        "This link is not valid any more: the link-signing secret changed since it was "
        "made (the secret file beside the database was replaced, or [server] secret "
        "changed), so links from before cannot be checked. Use the links of a digest "
        "sent from now on, or the preview.",
        403,
    )


def check_age(age: timedelta, max_age_days: int) -> None:
    """LinkError for a token made in the future (403) or expired (410), MAX_CLOCK_SKEW allowed
    either way."""
    if age < -MAX_CLOCK_SKEW:
        ahead = int(-age.total_seconds() // 60)
        raise LinkError(
            f"This link is not yet valid: it was made {ahead} minutes ahead of this server's "
            f"clock (more than the {_minutes(MAX_CLOCK_SKEW)} allowed); check the clocks of the "
            "machine that sent it and of this one.",
            403,
        )
    if age > timedelta(days=max_age_days) + MAX_CLOCK_SKEW:
        raise LinkError(
            "This link has expired; use the one in a newer digest, or the preview.", 410
        )


def _minutes(span: timedelta) -> str:
    """A span in whole minutes, in words."""
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class PaperLink:
    """What a verified short token names: the profile, the paper, and when it was made."""

    profile: str
    paper_key: str
    made: datetime


def key_id_bytes(secret: str) -> bytes:
    """The first bytes of the secret's key id (`digest.feedback.key_id`'s HMAC)."""
    digest = hmac.new(secret.encode(), b"digest.key-id.v1", hashlib.sha256).digest()
    return digest[:_KEY_ID_BYTES]


def make_token(secret: str, profile: str, paper_key: str, number: int, made: datetime) -> str:
    """The short token for paper `number` (whose key is `paper_key`) of `profile`, made at
    `made` (its minute is kept)."""
    minute = int((made - _EPOCH).total_seconds() // 60)
    body = _HEAD.pack(VERSION, key_id_bytes(secret), minute) + _leb128(number)
    mac = _mac(secret, profile, paper_key, body)
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read_token(
    secret: str,
    token: str,
    profile: str,
    paper_key_of: Callable[[int], str | None],
    *,
    max_age_days: int,
    clock: Clock,
) -> PaperLink:
    """The paper a short token names for `profile`, looked up with `paper_key_of(number)`;
    LinkError otherwise: 403 when malformed, changed, another profile's, naming no stored paper
    or signed under a secret since replaced (saying so), or made ahead of `clock` beyond the
    allowed skew; 410 when older than `max_age_days`."""
    raw = _decode(token)
    if raw is None or len(raw) < _HEAD.size + 1 + _MAC_BYTES:
        raise LinkError("This link is not valid.", 403)
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    version, key_id, minute = _HEAD.unpack_from(body)
    number = _read_leb128(body[_HEAD.size :])
    if version != VERSION or number is None:
        raise LinkError("This link is not valid.", 403)
    paper_key = paper_key_of(number)
    if paper_key is None or not hmac.compare_digest(mac, _mac(secret, profile, paper_key, body)):
        raise _refusal(secret, key_id, profile)
    made = datetime.fromtimestamp(minute * 60, UTC)
    check_age(clock() - made, max_age_days)
    return PaperLink(profile, paper_key, made)


def _refusal(secret: str, key_id: bytes, profile: str) -> LinkError:
    """Why a token whose MAC failed is refused: signed under another secret, else changed."""
    if not hmac.compare_digest(key_id, key_id_bytes(secret)):
        return other_secret_error()
    return LinkError(
        f"This link is not valid for the profile “{profile}” (changed, cut, made for another "
        "profile, or for a paper this server does not have).",
        403,
    )


def _mac(secret: str, profile: str, paper_key: str, body: bytes) -> bytes:
    """The MAC over this format's label, the profile, the paper key and the token's body (each
    string length-prefixed, so no two inputs run together the same way)."""
    message = bytearray(_LABEL)
    for text in (profile, paper_key):
        encoded = text.encode()
        message += struct.pack(">I", len(encoded)) + encoded
    message += body
    return hmac.new(secret.encode(), bytes(message), hashlib.sha256).digest()[:_MAC_BYTES]


def _decode(token: str) -> bytes | None:
    """The bytes of a base64url token without padding; None when it is not one (or too long)."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    # One spelling a token: the unused low bits of a last character must be zero.
    return raw if base64.urlsafe_b64encode(raw).decode().rstrip("=") == token else None


def _leb128(number: int) -> bytes:
    """`number` (>= 0) as unsigned LEB128: 7 bits a byte, the high bit set on all but the last."""
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_leb128(data: bytes) -> int | None:
    """The number `_leb128` wrote, when `data` is exactly one (at most 8 bytes, no needless
    trailing zero byte); else None."""
    number = 0
    for position, byte in enumerate(data[:_MAX_NUMBER_BYTES]):
        number |= (byte & 0x7F) << (7 * position)
        if not byte & 0x80:
            last = position == len(data) - 1
            minimal = byte != 0 or position == 0
            return number if last and minimal else None
    return None
