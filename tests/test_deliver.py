"""Delivery through a real SMTP server on loopback (aiosmtpd: STARTTLS and AUTH required)."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digest.app import App, build_app, fetch, send_profile
from digest.deliver import MaildirMailer, SmtpMailer, build_message
from digest.errors import DeliveryError
from digest.models import RenderedDigest
from digest.settings import Settings
from digest.store import Store

from .conftest import DATA, FIXED_NOW, PROFILE, Clock, Script, ScriptedSmtp, SmtpServer


def _app(settings: Settings, clock: Clock, **parts: Any) -> App:
    app = build_app(settings, store=Store.open(None), clock=clock, **parts)
    assert not [r for r in fetch(app) if r.error]
    return app


def _lines(raw: bytes) -> list[bytes]:
    return raw.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")


def test_digest_received_over_starttls_with_auth(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    app = _app(listing_settings(smtp=smtp_server.smtp_settings()), clock)
    report = send_profile(app, app.settings.profile_records()[0])

    assert report.error == ""
    assert len(smtp_server.handler.messages) == 1
    message = smtp_server.handler.messages[0]
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Subject"].startswith("Research digest, Sun 22 Nov: 2 from people you follow")
    assert str(message["From"]) == "Research digest <digest@example.org>"
    assert str(message["To"]) == "me@example.org"
    assert message["Date"].datetime == clock.now
    assert message["Message-ID"] == report.sent[0].message_id
    assert message["Message-ID"].endswith("@example.org>")
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Speculative Decoding with KV-Caches" in text
    assert "because you follow Rishabh Tiwari" in text
    assert re.search(r"<mark[^>]*>KV-Caches</mark>", html)
    # Followed authors' papers come first.
    assert html.index("A Benchmark of Forgetting") < html.index("Mei Chen")


def test_451_then_250_is_delivered_once_after_a_retry(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    waits: list[float] = []
    app = _app(listing_settings(smtp=smtp_server.smtp_settings()), clock, sleep=waits.append)
    smtp_server.handler.data_replies = ["451 4.3.0 Try again later"]

    report = send_profile(app, app.settings.profile_records()[0])

    assert report.error == "" and len(report.sent) == 1
    assert waits == [10.0]  # one backoff between the two tries
    assert len(smtp_server.handler.messages) == 1
    [entry] = app.store.outbox("me")
    assert (entry.status, entry.attempts) == ("sent", 2)
    assert len(app.store.delivered_keys("me")) == entry.paper_count == 3


def test_451_every_try_leaves_papers_undelivered_then_a_later_send_delivers_once(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    waits: list[float] = []
    app = _app(listing_settings(smtp=smtp_server.smtp_settings()), clock, sleep=waits.append)
    profile = app.settings.profile_records()[0]
    smtp_server.handler.data_replies = ["451 4.3.0 Try again later"] * 3

    first = send_profile(app, profile)

    assert "451" in first.error
    assert waits == [10.0, 20.0]  # exponential backoff between the three tries
    [pending] = app.store.outbox("me")
    assert (pending.status, pending.attempts) == ("pending", 3)
    assert "451 4.3.0 Try again later" in pending.last_error
    assert app.store.delivered_keys("me") == set()
    assert smtp_server.handler.messages == []

    clock.now += timedelta(hours=1)
    second = send_profile(app, profile)
    third = send_profile(app, profile)

    assert second.error == "" and [e.id for e in second.sent] == [pending.id]
    assert third.sent == () and third.skipped == "nothing new"
    assert len(smtp_server.handler.messages) == 1
    # The retry carried the very bytes queued the first time: same Message-ID, same body.
    assert _lines(smtp_server.handler.raw[0]) == _lines(pending.raw)
    assert smtp_server.handler.messages[0]["Message-ID"] == pending.message_id
    assert len(app.store.delivered_keys("me")) == pending.paper_count == 3
    [sent] = app.store.outbox("me")
    assert (sent.status, sent.attempts) == ("sent", 4)


@pytest.mark.parametrize(
    ("overrides", "reply_script", "fragment"),
    [
        ({"password": "wrong"}, {}, "refused the login"),
        ({}, {"rcpt_replies": ["550 5.1.1 No such user"]}, "550"),
        ({}, {"data_replies": ["554 5.7.1 Rejected as spam"]}, "554"),
    ],
)
def test_permanent_failures_mark_the_row_failed_and_release_the_papers(
    smtp_server: SmtpServer,
    listing_settings: Callable[..., Settings],
    clock: Clock,
    overrides: dict[str, Any],
    reply_script: dict[str, list[str]],
    fragment: str,
) -> None:
    app = _app(listing_settings(smtp=smtp_server.smtp_settings(**overrides)), clock)
    for name, replies in reply_script.items():
        setattr(smtp_server.handler, name, list(replies))
    profile = app.settings.profile_records()[0]

    report = send_profile(app, profile)

    assert fragment in report.error
    [failed] = app.store.outbox("me")
    assert failed.status == "failed" and fragment in failed.last_error
    assert app.store.delivered_keys("me") == set()
    # With the problem fixed, the next run delivers the same papers in a new digest.
    app.mailer = SmtpMailer(listing_settings(smtp=smtp_server.smtp_settings()).smtp)
    clock.now += timedelta(days=1)
    again = send_profile(app, profile)
    assert again.error == "" and len(again.sent) == 1
    assert again.sent[0].message_id != failed.message_id
    assert len(app.store.delivered_keys("me")) == failed.paper_count == 3


def test_password_never_appears_in_errors(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    settings = listing_settings(smtp=smtp_server.smtp_settings(password="hunter2-secret"))
    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(settings.smtp).send(b"Subject: x\r\n\r\nx", "digest@example.org", ["a@b.org"])
    assert caught.value.permanent
    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings.smtp)


def test_starttls_refused_when_server_does_not_offer_it(clock: Clock) -> None:
    from aiosmtpd.controller import Controller

    from .conftest import SmtpHandler, free_port

    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        from digest.settings import SmtpConfig

        mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, security="starttls"))
        with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
            mailer.send(b"Subject: x\r\n\r\nx", "digest@example.org", ["a@b.org"])
        assert caught.value.permanent
        assert handler.messages == []
    finally:
        controller.stop()


def test_unreachable_server_is_transient(clock: Clock) -> None:
    from digest.settings import SmtpConfig

    from .conftest import free_port

    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port(), security="none", timeout=2))
    with pytest.raises(DeliveryError) as caught:
        mailer.send(b"Subject: x\r\n\r\nx", "digest@example.org", ["a@b.org"])
    assert not caught.value.permanent


def test_maildir_delivery_uses_the_same_outbox_path(
    tmp_path: Path, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    app = _app(listing_settings(), clock, mailer=MaildirMailer(tmp_path / "mail" / "box"))
    report = send_profile(app, app.settings.profile_records()[0])
    [entry] = app.store.outbox("me")
    assert entry.status == "sent" and report.sent[0].id == entry.id
    [delivered] = list((tmp_path / "mail" / "box" / "new").iterdir())
    assert entry.message_id.encode() in delivered.read_bytes()


def test_connection_dropped_after_the_data_is_resent_unchanged(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    """The ambiguous window: the server got the message but the reply was lost."""
    drops = [True]
    handler = smtp_server.handler
    original = handler.handle_DATA

    async def receive_then_drop(server: Any, session: Any, envelope: Any) -> str:
        reply = await original(server, session, envelope)
        if drops and drops.pop():
            server.transport.close()  # received, recorded, but the client never hears "250"
        return reply

    handler.handle_DATA = receive_then_drop  # type: ignore[method-assign]
    waits: list[float] = []
    app = _app(listing_settings(smtp=smtp_server.smtp_settings()), clock, sleep=waits.append)

    report = send_profile(app, app.settings.profile_records()[0])

    assert report.error == "" and len(waits) == 1
    ids = [m["Message-ID"] for m in handler.messages]
    assert len(ids) == 2 and len(set(ids)) == 1  # two copies, one Message-ID
    assert _lines(handler.raw[0]) == _lines(handler.raw[1])
    [entry] = app.store.outbox("me")
    assert entry.status == "sent" and entry.attempts == 2
    assert "[ambiguous: resent with the same Message-ID]" in entry.last_error
    assert len(app.store.delivered_keys("me")) == entry.paper_count


def test_partial_recipient_refusal_is_recorded_per_recipient(
    smtp_server: SmtpServer, listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    app = _app(
        listing_settings(
            smtp=smtp_server.smtp_settings(), email=["me@example.org", "gone@example.org"]
        ),
        clock,
    )
    smtp_server.handler.rcpt_replies = ["250 OK", "550 5.1.1 gone@example.org: no such user"]
    report = send_profile(app, app.settings.profile_records()[0])
    assert report.error == ""
    [entry] = app.store.outbox("me")
    assert entry.status == "sent"
    assert entry.last_error == (
        "recipients refused: gone@example.org: 550 5.1.1 gone@example.org: no such user"
    )
    assert len(smtp_server.handler.messages) == 1


def test_send_empty_sends_a_short_nothing_new_email(
    listing_settings: Callable[..., Settings], clock: Clock, tmp_path: Path
) -> None:
    app = _app(
        listing_settings(send_empty=True, keywords=["no such topic"], authors=[], all_of=[]),
        clock,
        mailer=MaildirMailer(tmp_path / "box"),
    )
    report = send_profile(app, app.settings.profile_records()[0])
    assert report.papers == 0 and len(report.sent) == 1
    assert report.rendered is not None
    assert report.rendered.subject == "Research digest, Sun 22 Nov: nothing new"
    assert "Nothing new matched your profile today: 6 papers fetched since" in report.rendered.text

    quiet = _app(listing_settings(keywords=["no such topic"], authors=[], all_of=[]), clock)
    skipped = send_profile(quiet, quiet.settings.profile_records()[0])
    assert skipped.skipped == "nothing new" and quiet.store.outbox("me") == []
    assert quiet.store.last_send_run("me") == clock.now  # nothing sent, but recorded


@pytest.mark.parametrize(
    ("sources", "fetched", "reason"),
    [
        pytest.param(
            {},
            True,
            "nothing new: 6 papers fetched since Fri 20 Nov 07:00, none matched",
            id="none-matched",
        ),
        pytest.param(
            {},
            False,
            "nothing new: no new papers fetched since Fri 20 Nov 07:00",
            id="none-fetched",
        ),
        pytest.param(
            {"arxiv": {}},
            False,
            "nothing new: no new papers fetched since Fri 20 Nov 07:00 "
            "— arXiv announces nothing on weekends",
            id="weekend",
        ),
        pytest.param(
            {"files": [{"name": "lab-files", "path": "/nonexistent/*.jsonl"}]},
            True,
            "nothing new: no new papers fetched since Fri 20 Nov 07:00; "
            "lab-files failing since Sun 22 Nov 07:00",
            id="source-failing",
        ),
    ],
)
def test_an_empty_morning_says_why(
    make_settings: Callable[..., Settings],
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    sources: dict[str, Any],
    fetched: bool,
    reason: str,
) -> None:
    listing = {"files": [{"name": "listings", "path": str(DATA / "listings.jsonl")}]}
    profile = {**PROFILE, "keywords": ["no such topic"], "authors": [], "all_of": []}
    settings = make_settings(sources=sources or listing, profiles=[profile])
    box = MaildirMailer(tmp_path / "box")
    app = build_app(settings, store=Store.open(None), clock=clock, mailer=box)
    if fetched:
        fetch(app)
    with caplog.at_level(logging.INFO, logger="digest.sending"):
        report = send_profile(app, settings.profile_records()[0])
    assert f"{report.skipped}: {report.why}" == reason
    assert f"me: nothing sent: {reason.removeprefix('nothing new: ')}" in caplog.messages
    # with send_empty, the short email says the same
    app.close()
    loud = make_settings(sources=sources or listing, profiles=[{**profile, "send_empty": True}])
    app = build_app(loud, store=Store.open(None), clock=clock, mailer=box)
    if fetched:
        fetch(app)
    sent = send_profile(app, loud.profile_records()[0])
    assert sent.rendered is not None and len(sent.sent) == 1
    why = reason.removeprefix("nothing new: ")
    assert why in " ".join(sent.rendered.text.split())
    assert why in " ".join(sent.rendered.html.split())
    app.close()


# --- the message's headers ----------------------------------------------------------------------

SUBJECT = "Research digest, Sun 22 Nov: 3 from people you follow · 12 on your topics"
LONG_NAME = "Forschungs-Digest für Zoë Müller-Lüdenscheidt und Kollegen aus dem Institut"


def _built(sender_name: str, subject: str = SUBJECT) -> tuple[bytes, EmailMessage]:
    raw = build_message(
        RenderedDigest(subject, "<p>Grüße</p>", "Grüße"),
        sender="digest@example.org",
        sender_name=sender_name,
        recipients=["me@example.org", "you@example.org"],
        message_id="<digest.1@mail.example.net>",
        date=FIXED_NOW,
        profile="me",
    )
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


@pytest.mark.parametrize(
    "name", ["Research digest", "Zoë Müller", "研究ダイジェスト", "Digest, Inc.", LONG_NAME]
)
@pytest.mark.parametrize("subject", [SUBJECT, "Research digest, Sun 22 Nov: nothing new"])
def test_display_name_and_subject_survive_encoding(name: str, subject: str) -> None:
    raw, parsed = _built(name, subject)
    head = raw.split(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    # Python 3.11's folder writes an empty encoded word before a folded `·`; some clients show it.
    assert not re.search(rb"=\?utf-8\?[qb]\?\?=", head, re.I)
    assert str(parsed["Subject"]) == subject
    [sender] = parsed["From"].addresses
    assert sender.addr_spec == "digest@example.org"
    # Python's parser keeps the fold between two encoded words of a long name as a space.
    assert " ".join(sender.display_name.split()) == name


def test_headers_of_a_digest() -> None:
    _, parsed = _built("Zoë Müller")
    assert parsed["Date"].datetime == FIXED_NOW
    assert parsed["Message-ID"] == "<digest.1@mail.example.net>"
    assert parsed["List-Id"] == "Research digest for me <me.digest.mail.example.net>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["me@example.org", "you@example.org"]
    parts = [(p.get_content_type(), p.get_content()) for p in parsed.iter_parts()]
    # The HTML part travels as 7-bit ASCII: what lies beyond it as character references.
    assert parts == [("text/plain", "Grüße\r\n"), ("text/html", "<p>Gr&#252;&#223;e</p>\r\n")]
    html_part = list(parsed.iter_parts())[1]
    assert html_part["Content-Transfer-Encoding"] == "7bit"
    assert html.unescape(html_part.get_content()) == "<p>Grüße</p>\r\n"


# --- SMTP faults: what is delivered, held or released (issue 11) ---------------------------------


def _fault_app(settings: Settings, clock: Clock) -> App:
    app = build_app(settings, store=Store.open(None), clock=clock)
    assert not [r for r in fetch(app) if r.error]
    return app


DROP_AFTER_DATA = Script(dot="drop")


def _message_ids(server: ScriptedSmtp, recipient: str = "me@example.org") -> list[str]:
    return [r.message_id for r in server.received if recipient in r.recipients]


@pytest.mark.parametrize(
    ("retry", "status"),
    [
        (Script(dot="554 5.7.1 rejected"), "sent"),
        (Script(rcpt={"me@example.org": "550 5.1.1 no such user"}), "undeliverable"),
        (Script(auth="535 5.7.8 bad credentials"), "sent"),
    ],
    ids=["then-554-data", "then-550-rcpt", "then-535-auth"],
)
def test_ambiguous_then_permanent_keeps_the_papers_bound_to_their_message_id(
    scripted_smtp: ScriptedSmtp,
    five_paper_settings: Callable[..., Settings],
    clock: Clock,
    retry: Script,
    status: str,
) -> None:
    """Item 4: a paper whose delivery is ambiguous is never planned into another message."""
    scripted_smtp.scripts = [Script(dot="drop"), retry]
    app = _fault_app(five_paper_settings(scripted_smtp), clock)
    profile = app.settings.profile_records()[0]

    send_profile(app, profile)
    [held] = app.store.outbox("me")
    assert held.status in ("ambiguous", "undeliverable")
    scripted_smtp.scripts = []
    for _ in range(3):
        clock.now += timedelta(hours=1)
        send_profile(app, profile)

    [entry] = app.store.outbox("me")  # no second digest was planned
    assert entry.status == status
    assert set(_message_ids(scripted_smtp)) == {entry.message_id}
    assert "ambiguous" in entry.last_error  # the history keeps what happened


@pytest.mark.parametrize("quit_reply", ["554 5.0.0 go away", "421 4.3.2 closing", "drop"])
def test_a_250_after_data_is_delivery_whatever_quit_says(
    scripted_smtp: ScriptedSmtp,
    five_paper_settings: Callable[..., Settings],
    clock: Clock,
    quit_reply: str,
) -> None:
    """Item 5: what QUIT answers after the 250 does not change the delivery."""
    scripted_smtp.scripts = [Script(quit=quit_reply)]
    app = _fault_app(five_paper_settings(scripted_smtp), clock)
    profile = app.settings.profile_records()[0]

    first = send_profile(app, profile)
    clock.now += timedelta(hours=1)
    second = send_profile(app, profile)

    assert first.error == "" and len(first.sent) == 1
    assert second.skipped == "nothing new"
    assert len(scripted_smtp.received) == 1
    [entry] = app.store.outbox("me")
    assert (entry.status, entry.attempts) == ("sent", 1)
    assert len(app.store.delivered_keys("me")) == 5


def test_a_temporarily_refused_recipient_is_retried_later_with_the_same_message_id(
    scripted_smtp: ScriptedSmtp, five_paper_settings: Callable[..., Settings], clock: Clock
) -> None:
    """Item 6: one of two recipients answered 452; it gets the same message later, alone."""
    scripted_smtp.scripts = [Script(rcpt={"you@example.org": "452 4.2.2 mailbox full"})]
    emails = ("me@example.org", "you@example.org")
    app = _fault_app(five_paper_settings(scripted_smtp, emails, attempts=1), clock)
    profile = app.settings.profile_records()[0]

    first = send_profile(app, profile)
    [partial] = app.store.outbox("me")
    assert partial.status == "partial" and "452 4.2.2 mailbox full" in partial.last_error
    assert [(r.address, r.status) for r in app.store.outbox_recipients(partial.id)] == [
        ("me@example.org", "sent"),
        ("you@example.org", "pending"),
    ]
    assert first.waiting == 1

    scripted_smtp.scripts = []
    clock.now += timedelta(hours=1)
    send_profile(app, profile)

    [entry] = app.store.outbox("me")
    assert entry.status == "sent"
    assert [r.recipients for r in scripted_smtp.received] == [
        ("me@example.org",),
        ("you@example.org",),
    ]
    assert {r.message_id for r in scripted_smtp.received} == {entry.message_id}
    assert _lines(scripted_smtp.received[1].raw) == _lines(entry.raw)
    assert {r.status for r in app.store.outbox_recipients(entry.id)} == {"sent"}


@pytest.mark.parametrize(
    "greeting", ["drip 220 " + "slow " * 40, "endless"], ids=["drip", "endless-multiline"]
)
def test_the_session_deadline_ends_a_greeting_that_never_finishes(
    scripted_smtp: ScriptedSmtp, five_paper_settings: Callable[..., Settings], greeting: str
) -> None:
    """Item 7: a reply that keeps coming (one byte, or one line, at a time) ends at the
    session deadline with a transient error; without one it would take 20-30 s."""
    scripted_smtp.scripts = [Script(greeting=greeting)]
    settings = five_paper_settings(scripted_smtp, timeout=1, deadline_seconds=1.5)

    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(settings.smtp).send(b"Subject: x\r\n\r\nx", "digest@example.org", ["a@b.org"])

    assert not caught.value.permanent and not caught.value.ambiguous
    assert "1.5 s session deadline" in str(caught.value)
    assert scripted_smtp.received == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_server_quoting_the_auth_exchange_never_shows_the_password(
    tmp_path: Path,
    scripted_smtp: ScriptedSmtp,
    five_paper_config: Callable[..., dict[str, Any]],
    mechanism: str,
) -> None:
    """Item 9: the password, its base64 and the AUTH PLAIN blob are redacted from the replies
    before `digest send` prints them, `doctor` shows them or the outbox stores them."""
    import base64
    import sqlite3
    import subprocess
    import sys

    import tomlkit

    from .conftest import SMTP_PASSWORD, SMTP_USER

    scripted_smtp.scripts = [
        Script(auth_mechanisms=mechanism, auth="535 5.7.8 rejected, you sent: {echo}")
    ]
    config = tmp_path / "config.toml"
    config.write_text(tomlkit.dumps(five_paper_config(scripted_smtp)))
    forms = {SMTP_PASSWORD}
    for blob in (SMTP_PASSWORD, f"\0{SMTP_USER}\0{SMTP_PASSWORD}"):
        encoded = base64.b64encode(blob.encode()).decode()
        forms |= {encoded, encoded.rstrip("=")}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        return done.stdout + done.stderr

    run("fetch")
    sent, checked = run("send"), run("doctor")
    with sqlite3.connect(tmp_path / "digest.sqlite") as db:
        [(stored,)] = db.execute("SELECT last_error FROM outbox").fetchall()

    for shown in (sent, checked, stored):
        assert "535 5.7.8 rejected, you sent: AUTH" in shown  # the reply is there, redacted
        assert not [form for form in forms if form in shown], shown


@pytest.mark.parametrize(
    ("scripts", "emails", "status", "recipients"),
    [
        (
            [Script(rcpt={"you@example.org": "452 4.2.2 mailbox full"})],
            ("me@example.org", "you@example.org"),
            "sent",
            ["sent", "abandoned"],
        ),
        (
            [DROP_AFTER_DATA, Script(dot="554 5.7.1 rejected")],
            ("me@example.org",),
            "undeliverable",
            ["abandoned"],
        ),
        ([Script(greeting="421 4.3.2 too busy")], ("me@example.org",), "failed", ["abandoned"]),
    ],
    ids=["partial", "ambiguous", "never-reached"],
)
def test_a_digest_still_open_after_retry_hours_is_given_up_and_says_so(
    scripted_smtp: ScriptedSmtp,
    five_paper_settings: Callable[..., Settings],
    clock: Clock,
    scripts: list[Script],
    emails: tuple[str, ...],
    status: str,
    recipients: list[str],
) -> None:
    scripted_smtp.scripts = scripts
    app = _fault_app(five_paper_settings(scripted_smtp, emails, attempts=1), clock)
    profile = app.settings.profile_records()[0]

    send_profile(app, profile)
    clock.now += timedelta(hours=71)
    send_profile(app, profile)
    [held] = app.store.outbox("me")
    assert held.status in ("pending", "partial", "ambiguous")  # still retried within 72 h
    clock.now += timedelta(hours=2)
    report = send_profile(app, profile)

    entry = app.store.outbox("me")[0]
    assert entry.status == status and "given up after 3 tries over 72 h" in entry.last_error
    assert [r.status for r in app.store.outbox_recipients(entry.id)] == recipients
    said = " ".join((report.error, *report.notes))
    assert "given up after 3 tries over 72 h" in said
    # Nobody has it: its papers are candidates again. Someone has it, or may: they stay with it.
    released = list(app.store.candidates("me", FIXED_NOW - timedelta(days=1)))
    assert len(released) == (5 if status == "failed" else 0)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("535 bad password hunter2-pw", "535 bad password [redacted]"),
        (f"535 you sent {_b64('hunter2-pw')}", "535 you sent [redacted]"),
        (f"535 no: {_b64(chr(0) + 'me' + chr(0) + 'hunter2-pw')}", "535 no: [redacted]"),
        (
            f"535 no: {_b64('me' + chr(0) + 'me' + chr(0) + 'hunter2-pw').rstrip('=')}",
            "535 no: [redacted]",
        ),
        ("535 you sent AUTH XOAUTH2 dXNlcj1tZQFhdXRo", "535 you sent AUTH XOAUTH2 [redacted]"),
        ("535 you sent auth login bWU=", "535 you sent auth login [redacted]"),
        ("250 2.0.0 queued as 4Bx1", "250 2.0.0 queued as 4Bx1"),
    ],
    ids=[
        "plain",
        "base64",
        "auth-plain-blob",
        "with-authzid-unpadded",
        "auth-echo",
        "login",
        "none",
    ],
)
def test_redact_removes_every_form_of_the_password(reply: str, expected: str) -> None:
    from digest.deliver import redact

    assert redact(reply, "me", "hunter2-pw") == expected
    assert redact(reply, "me", None) == redact(reply, "me", "")


def test_an_empty_morning_after_a_digest_names_the_last_digest(
    make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path
) -> None:
    """Issue 21: "no new papers fetched since Fri 20 Nov" right after Sunday's digest named the
    window's start; nothing new since the last digest is what happened."""
    listing = {"files": [{"name": "listings", "path": str(DATA / "listings.jsonl")}]}
    settings = make_settings(sources=listing, profiles=[PROFILE])
    app = build_app(
        settings, store=Store.open(None), clock=clock, mailer=MaildirMailer(tmp_path / "box")
    )
    try:
        fetch(app)
        profile = settings.profile_records()[0]
        first = send_profile(app, profile)
        assert first.papers > 0
        clock.now += timedelta(days=1)
        second = send_profile(app, profile)
    finally:
        app.close()
    assert second.skipped == "nothing new"
    assert second.why == "no new papers since the last digest (Sun 22 Nov 07:00)", second.why
