"""Delivery: build the MIME message, and hand it to an SMTP server or a local Maildir.

Both mailers take the exact bytes stored in the outbox, so a retry resends the identical message
with the same Message-ID. Within `SmtpMailer.kept_open` (a run's sends: `Outbox.one_session`),
the messages share one SMTP session. Low-level smtplib/ssl/socket errors are translated here into
DeliveryError, marked permanent (5xx, refused login, no STARTTLS) or transient (4xx, timeouts,
dropped connections).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import mailbox
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.charset import Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from digest import __version__
from digest.errors import ConfigError, DeliveryError
from digest.models import RenderedDigest
from digest.render import add_html_part
from digest.settings import SmtpConfig

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

_ENCODED_WORD_MAX = 70  # RFC 2047 allows 75; 70 keeps `From: ` and the word within 78


class Mailer(Protocol):
    """Something that accepts a finished message. Returns the recipients it refused."""

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        """Deliver `raw` or raise DeliveryError; partial refusals are returned, not raised."""
        ...


@runtime_checkable
class SessionMailer(Mailer, Protocol):
    """A mailer whose sends can share one connection (`SmtpMailer`)."""

    def kept_open(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, sends share a session (see `SmtpMailer.kept_open`)."""
        ...


def new_message_id(domain: str) -> str:
    """A fresh, globally unique Message-ID in `domain`."""
    return make_msgid(idstring="digest", domain=domain)


def build_message(
    rendered: RenderedDigest,
    *,
    sender: str,
    sender_name: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
    profile: str,
) -> bytes:
    """The complete multipart/alternative message (text, then HTML), as SMTP-ready bytes.

    `List-Id` names the profile in the Message-ID's domain (the configured one), so a reader can
    filter each profile's digests; `Auto-Submitted` and `X-Auto-Response-Suppress` keep
    vacation responders quiet.
    """
    message = EmailMessage(policy=SMTP)
    local, _, sender_domain = sender.partition("@")
    domain = message_id.rstrip(">").rpartition("@")[2] or sender_domain
    message["Subject"] = _text_header("Subject", rendered.subject)
    message["From"] = _from_header(sender_name, local, sender_domain)
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["List-Id"] = f"Research digest for {profile} <{profile}.digest.{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailer"] = f"digest {__version__}"
    message.set_content(rendered.text, cte="quoted-printable")
    add_html_part(message, rendered.html)
    return message.as_bytes()


class _EncodedHeader(str):
    """A header value already folded into RFC 2047 encoded words, written out unchanged.

    Python 3.11's header folder can emit an empty encoded word (`=?utf-8?q??=`) before a
    non-ASCII character that falls on a fold, which some mail clients show verbatim (the
    subject's `·` does, for every digest). The email package keeps a value that has a matching
    `name` and a `fold` method as it is; read back, it is the plain (decoded) text.
    """

    name: str
    encoded: str

    def __new__(cls, name: str, text: str, encoded: str) -> _EncodedHeader:
        header = super().__new__(cls, text)
        header.name, header.encoded = name, encoded
        return header

    def fold(self, *, policy: Policy) -> str:
        """`Name: value` and the policy's line separator, continuation lines folded."""
        return f"{self.name}: {self.encoded}{policy.linesep}"


def _encode_words(name: str, text: str) -> str:
    """Unstructured `text` as RFC 2047 UTF-8 encoded words, folded at 78 characters."""
    return Header(text, "utf-8", header_name=name).encode(linesep="\r\n")


def _encode_phrase(text: str) -> str:
    """A display name as encoded words, each at most 70 characters and cut only at a space.

    Cutting inside a word would be correct by RFC 2047, but Python's own address parser (and
    so our tests, and aiosmtpd) keeps the folding space between two encoded words of a phrase.
    """
    charset = Charset("utf-8")
    chunks: list[str] = []
    for word in text.split(" "):
        joined = f"{chunks[-1]} {word}" if chunks else word
        if chunks and len(charset.header_encode(joined)) <= _ENCODED_WORD_MAX:
            chunks[-1] = joined
        else:
            if chunks:
                chunks[-1] += " "  # the space between two encoded words must be encoded
            chunks.append(word)
    return "\r\n ".join(charset.header_encode(chunk) for chunk in chunks)


def _text_header(name: str, text: str) -> str:
    """An unstructured header: plain ASCII as it is, anything else as encoded words."""
    return text if text.isascii() else _EncodedHeader(name, text, _encode_words(name, text))


def _from_header(display_name: str, local: str, domain: str) -> str | Address:
    """The From header: `Display Name <local@domain>`, the name encoded when not ASCII."""
    address = Address(display_name=display_name, username=local, domain=domain)
    if display_name.isascii():
        return address
    encoded = f"{_encode_phrase(display_name)} <{local}@{domain}>"
    return _EncodedHeader("From", str(address), encoded)


class MaildirMailer:
    """Delivers into a local Maildir: the demo's and the cautious user's mailbox."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        """Add the message to the Maildir (created if needed)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            box.add(mailbox.MaildirMessage(raw))
        except OSError as exc:
            raise DeliveryError(f"{self.path}: cannot write to Maildir: {exc.strerror}") from None
        return {}


def _is_loopback(host: str) -> bool:
    """Whether `host` is this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Watchdog:
    """Ends an SMTP session at its deadline, however slowly the server trickles its replies.

    smtplib's timeout bounds each read, not a reply: a greeting of one line a second never
    times out. At the deadline the watchdog shuts the connection down through its own handle on
    the socket (a duplicate, so it stays valid however smtplib wraps or closes its own), and
    the blocked read returns at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Take a handle on the session's connection (right after it is made)."""
        with self._lock:
            self._socket = socket.fromfd(sock.fileno(), sock.family, sock.type)
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def rearm(self) -> None:
        """A new deadline, `seconds` from now: the next message of a session kept open. A
        watchdog that fired stays fired (it shut the connection down)."""
        self._timer.cancel()
        self._timer.join()
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """The session is over: cancel the timer and let go of the connection."""
        self._timer.cancel()
        self._timer.join()
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


class _Session(smtplib.SMTP):
    """smtplib.SMTP under a watchdog, noting when the message's final dot has gone out (from
    then on, a lost connection leaves the delivery ambiguous)."""

    message_sent = False

    def __init__(self, watchdog: _Watchdog, host: str, port: int, timeout: float) -> None:
        self.watchdog = watchdog
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # As smtplib's own; SMTP_SSL wraps what this returns.
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self.watchdog.watch(sock)
        return sock

    def send(self, s: ReadableBuffer | str) -> None:
        """Send `s`; the message ends with `CRLF.CRLF` (smtplib sends it in one piece)."""
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_sent = True


class _SslSession(smtplib.SMTP_SSL, _Session):
    """The same over implicit TLS (the watchdog holds the socket before the handshake)."""

    def __init__(
        self,
        watchdog: _Watchdog,
        host: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        self.watchdog = watchdog
        smtplib.SMTP_SSL.__init__(self, host, port, timeout=timeout, context=context)


class SmtpMailer:
    """Delivers through an SMTP server: implicit TLS, STARTTLS, or plain (loopback relays).

    Every session has an overall deadline (`smtp.deadline_seconds`) besides the socket timeout,
    and every server reply is redacted (the password and its AUTH forms) before it becomes
    text.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.where = f"{config.host}:{config.effective_port}"
        # Per thread: inside `kept_open`, and the session sends share there once opened.
        self._local = _KeptState()

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS context: the system's CAs or `ca_file`, verification as configured."""
        context = ssl.create_default_context(
            cafile=str(self.config.ca_file) if self.config.ca_file else None
        )
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def redact(self, text: str) -> str:
        """`text` without the configured password in any form an AUTH exchange gives it."""
        try:
            password = self.config.secret()
        except ConfigError:  # an unreadable password file: it cannot be in any reply
            password = None
        return redact(text, self.config.username, password)

    @contextlib.contextmanager
    def session(self) -> Iterator[_Session]:
        """An open connection, secured as `security` says (no login yet), under the session
        deadline; `doctor` uses it to check the server without sending. Leaving the block
        ends the session: QUIT (whatever it answers) after success, a plain close after an
        error."""
        live = self._connect()
        try:
            yield live.smtp
        except BaseException as exc:
            self._end(live, quit=False, failure=exc)
            raise
        self._end(live, quit=True)

    def _connect(self) -> _LiveSession:
        """A connected session under a deadline of its own (not logged in); DeadlineExpired
        when the deadline passed while connecting."""
        watchdog = _Watchdog(self.config.deadline_seconds)
        try:
            return _LiveSession(self._open(watchdog), watchdog)
        except BaseException as exc:
            watchdog.stop()
            if isinstance(exc, OSError) and watchdog.fired:
                raise DeadlineExpired(self.config.deadline_seconds) from exc
            raise

    def _end(self, live: _LiveSession, *, quit: bool, failure: BaseException | None = None) -> None:
        """End a session: QUIT (whatever it answers: after a 250 the message is delivered,
        QUIT cannot change that) or only close it, and stop its watchdog. `failure`, the
        error that ended it, is raised as DeadlineExpired when the watchdog had fired."""
        fired = live.watchdog.fired
        try:
            if quit:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    live.smtp.quit()
            live.smtp.close()
        finally:
            live.watchdog.stop()
        if isinstance(failure, OSError) and fired:
            raise DeadlineExpired(self.config.deadline_seconds) from failure

    @contextlib.contextmanager
    def kept_open(self) -> Iterator[None]:
        """Within the block, sends share one session: opened (and logged in) at the first,
        each message under a deadline of its own, ended with QUIT when the block ends, after
        `SESSION_MESSAGES` messages, or closed at the first error (the next send opens a
        new one). A send of many digests then costs one connection, TLS handshake and login,
        not one each.

        A kept session the server ended between two messages (it closed the connection, or
        answered 421 before the message went out) is opened again once for that message:
        nothing of it was sent, so it cannot arrive twice."""
        if self._local.keeping:  # nested: the outer block keeps the session
            yield
            return
        self._local.keeping = True
        try:
            yield
        finally:
            self._local.keeping = False
            self._end_kept()

    def _kept_session(self) -> tuple[_LiveSession, bool]:
        """The kept session, opened now if there is none (True beside it then)."""
        kept = self._local.kept
        if kept is not None and kept.watchdog.fired:  # idle past the deadline: shut down
            self._end_kept(quit=False)
        elif kept is not None:
            kept.watchdog.rearm()
            return kept, False
        self._local.kept = self._connect()
        return self._local.kept, True

    def _end_kept(self, *, quit: bool = True, failure: BaseException | None = None) -> None:
        """End the kept session, if any (`_end`)."""
        kept, self._local.kept = self._local.kept, None
        if kept is not None:
            self._end(kept, quit=quit, failure=failure)

    def _send_kept(
        self, raw: bytes, sender: str, recipients: Sequence[str], progress: _Progress
    ) -> tuple[int, bytes]:
        """`_transact` over the kept session (opened again once if the server ended it
        before this message went out)."""
        for attempt in range(2):
            kept, opened = self._kept_session()
            kept.smtp.message_sent = False
            try:
                result = self._transact(kept.smtp, raw, sender, recipients, progress, opened)
            except BaseException as exc:
                self._end_kept(quit=False, failure=exc)  # DeadlineExpired if the deadline passed
                stale = isinstance(exc, OSError) and _ended_by_server(exc)
                if attempt == 0 and not opened and not progress.sent and stale:
                    log.debug("%s ended the kept session; opening a new one", self.where)
                    progress.refused = {}
                    continue
                raise
            kept.messages += 1
            if kept.messages >= SESSION_MESSAGES:
                self._end_kept()
            return result
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _open(self, watchdog: _Watchdog) -> _Session:
        """A connected session, secured as `security` says (not logged in)."""
        config = self.config
        timeout = min(config.timeout, config.deadline_seconds)
        if config.security == "ssl":
            return _SslSession(
                watchdog, config.host, config.effective_port, timeout, self._tls_context()
            )
        if config.security == "none" and not _is_loopback(config.host):
            log.warning("sending to %s without TLS: only do this on a loopback relay", self.where)
        smtp = _Session(watchdog, config.host, config.effective_port, timeout)
        if config.security == "starttls":
            try:
                self._start_tls(smtp)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _start_tls(self, smtp: _Session) -> None:
        """Upgrade a plain session with STARTTLS; a permanent DeliveryError if not offered."""
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise DeliveryError(
                f"{self.where} does not offer STARTTLS; refusing to send in clear text",
                permanent=True,
            )
        smtp.starttls(context=self._tls_context())
        smtp.ehlo()

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        """Log in if configured, send, and return the recipients the server refused.

        Raises DeliveryError (its text redacted) when no recipient has the message; `refused`
        on it names those refused at RCPT, `ambiguous` says the connection was lost after the
        message went out (it may have arrived).
        """
        try:
            return self._send(raw, sender, recipients)
        except DeliveryError as exc:
            raise DeliveryError(
                self.redact(str(exc)),
                permanent=exc.permanent,
                ambiguous=exc.ambiguous,
                refused={r: self.redact(reply) for r, reply in exc.refused.items()},
            ) from None

    def _send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        """Deliver `raw` in one session: the recipients refused at RCPT; DeliveryError (not yet
        redacted) when the message was not delivered."""
        progress = _Progress()
        try:
            if self._local.keeping:
                code, reply = self._send_kept(raw, sender, recipients, progress)
            else:
                with self.session() as smtp:
                    code, reply = self._transact(smtp, raw, sender, recipients, progress)
        # DeliveryError is no OSError: it passes unchanged. smtplib's and ssl's exceptions are
        # OSErrors too.
        except OSError as exc:
            raise self._failure(exc, progress) from None
        log.debug("%s accepted the message: %s %s", self.where, code, self.redact(_text(reply)))
        return progress.refused

    def _transact(
        self,
        smtp: _Session,
        raw: bytes,
        sender: str,
        recipients: Sequence[str],
        progress: _Progress,
        login: bool = True,
    ) -> tuple[int, bytes]:
        """Log in if configured (and `login`: not again on a kept session), then the envelope
        and the message, noting `progress` on the way; DATA's reply (SMTPDataError unless it
        is a 250)."""
        password = self.config.secret()
        if self.config.username and login:
            smtp.login(self.config.username, password or "")
        progress.refused = self._envelope(smtp, sender, recipients)
        try:
            code, reply = smtp.data(raw)  # returns the reply; only sendmail raises on it
        finally:
            progress.sent = smtp.message_sent
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return code, reply

    def _failure(self, exc: OSError, progress: _Progress) -> DeliveryError:
        """The DeliveryError for what ended a session early, most specific first."""
        if isinstance(exc, DeadlineExpired):
            return self._lost(str(exc), progress.sent, progress.refused)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return DeliveryError(
                f"{self.where} refused the login for {self.config.username!r}: {_reply(exc)}",
                permanent=True,
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._everyone_refused(exc)
        if isinstance(exc, smtplib.SMTPResponseException):
            return DeliveryError(
                f"{self.where} answered {_reply(exc)}",
                permanent=exc.smtp_code >= 500,
                refused=progress.refused,
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(
                f"{self.where}: TLS certificate not trusted ({exc.verify_message}); "
                "set smtp.ca_file for a private server",
                permanent=True,
            )
        # dropped, refused, timed out, TLS
        what = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else str(exc)
        return self._lost(what or type(exc).__name__, progress.sent, progress.refused)

    def _everyone_refused(self, exc: smtplib.SMTPRecipientsRefused) -> DeliveryError:
        """Every recipient refused at RCPT: permanent when every refusal is a 5xx."""
        codes = [code for code, _ in exc.recipients.values()]
        everyone = {r: f"{c} {_text(m)}" for r, (c, m) in exc.recipients.items()}
        detail = "; ".join(f"{r}: {reply}" for r, reply in everyone.items())
        return DeliveryError(
            f"{self.where} refused every recipient: {detail}",
            permanent=all(code >= 500 for code in codes),
            refused=everyone,
        )

    def _lost(self, what: str, sent: bool, refused: Mapping[str, str]) -> DeliveryError:
        """The connection ended early; after the message went out, that is ambiguous."""
        if sent:
            return DeliveryError(
                f"{self.where}: connection lost after the message was sent ({what}); it may "
                "have arrived, so it is resent unchanged (same Message-ID)",
                ambiguous=True,
                refused=refused,
            )
        return DeliveryError(f"{self.where}: {what}", refused=refused)

    @staticmethod
    def _envelope(smtp: smtplib.SMTP, sender: str, recipients: Sequence[str]) -> dict[str, str]:
        """MAIL FROM and RCPT TO, step by step (as smtplib.sendmail does), so that a connection
        lost later is known to have happened after the data was sent. Returns the refusals."""
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(sender)
        if code != 250:
            smtp.rset()
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if len(refused) == len(recipients):
            smtp.rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        return {r: f"{c} {_text(m)}" for r, (c, m) in refused.items()}


# Messages one kept session carries before it is ended and a new one opened: servers limit
# them (Exchange Online and Gmail a hundred or so; some relays far fewer) and answer 421 past it.
SESSION_MESSAGES = 50


@dataclass
class _LiveSession:
    """A connected session with its watchdog, and the messages it carried (kept open)."""

    smtp: _Session
    watchdog: _Watchdog
    messages: int = 0


class _KeptState(threading.local):
    """A thread's kept session (`SmtpMailer.kept_open`): two threads never share one."""

    keeping = False
    kept: _LiveSession | None = None


def _ended_by_server(exc: OSError) -> bool:
    """Whether a kept session failed because the server had ended it: closed the connection,
    or answered 421 (closing), rather than for something about this message."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421


@dataclass
class _Progress:
    """How far a session got: the recipients refused at RCPT, and whether the message's final
    dot went out (after it, a lost connection leaves the delivery ambiguous)."""

    refused: dict[str, str] = field(default_factory=dict)
    sent: bool = False


class DeadlineExpired(OSError):
    """The watchdog ended the session at `smtp.deadline_seconds` (sending makes it a transient
    DeliveryError)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within the {seconds:g} s session deadline")


def refusal_is_permanent(reply: str) -> bool:
    """True when a refusal (`"550 5.1.1 …"`, as `Mailer.send` returns them) is final: 5xx."""
    return reply[:1] == "5"


# A quoted AUTH command: whatever follows the mechanism is a credential.
_AUTH_ECHO = re.compile(r"\b(AUTH\s+[A-Z0-9_-]+)\s+\S+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str, username: str, password: str | None) -> str:
    """`text` (a server reply, or an error made of one) without the password: as it is, in
    base64 (AUTH LOGIN), as the AUTH PLAIN blob (NUL user NUL password, base64, with or
    without the authorization identity and padding), and whatever follows a quoted AUTH."""
    if password:
        blobs = (password, f"\0{username}\0{password}", f"{username}\0{username}\0{password}")
        forms = {password}
        for blob in blobs:
            encoded = base64.b64encode(blob.encode()).decode()
            forms.update((encoded, encoded.rstrip("=")))
        for form in sorted(forms, key=len, reverse=True):  # longest first: no half-redactions
            text = text.replace(form, REDACTED)
    return _AUTH_ECHO.sub(rf"\1 {REDACTED}", text)


def _text(message: bytes | str) -> str:
    """A server reply as text."""
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    """`code text` of an SMTP error reply."""
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"
