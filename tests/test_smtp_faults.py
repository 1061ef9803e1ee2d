"""The SMTP fault matrix: each fault of a scripted server on 127.0.0.1, then a healthy server.

Per case: a store with 5 papers for a profile with one or two recipients; `send_profile` while
the server misbehaves, then a few more sends against a healthy server. At the end every paper
reached every recipient that was not refused for good, no paper reached a recipient under two
Message-IDs (a message the server accepted counts, and so does one it read to its final dot and
then never answered: it may have been delivered), nothing is left half-done, and the store
agrees with what the server accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.app import build_app, fetch, send, send_profile
from digest.deliver import SmtpMailer
from digest.settings import Settings, settings_from_dict
from digest.store import RETRY_STATUSES, Store

from .conftest import FIVE_PAPERS, Clock, Script, ScriptedSmtp

ME, YOU = "me@example.org", "you@example.org"
BOTH = (ME, YOU)
DROP = Script(dot="drop")


@dataclass(frozen=True)
class Case:
    """One fault: the scripts the faulty server plays (the last repeats), the recipients, and
    those it refuses for good (they need not get the papers)."""

    scripts: tuple[Script, ...]
    emails: tuple[str, ...] = (ME,)
    refused_for_good: frozenset[str] = field(default_factory=frozenset)


CASES = {
    "greeting-421": Case((Script(greeting="421 4.3.2 too busy"),)),
    "mail-451": Case((Script(mail="451 4.3.0 try again later"),)),
    "rcpt-452": Case((Script(rcpt={ME: "452 4.2.2 mailbox full"}),)),
    "rcpt-550": Case((Script(rcpt={ME: "550 5.1.1 no such user"}),)),
    "auth-535": Case((Script(auth="535 5.7.8 bad credentials"),)),
    "data-554": Case((Script(dot="554 5.7.1 rejected as spam"),)),
    "data-451": Case((Script(dot="451 4.3.0 queue full"),)),
    "data-command-554": Case((Script(data="554 5.5.1 no valid recipients"),)),
    "drop-after-data": Case((DROP,)),
    "stall-after-data": Case((Script(dot="stall"),)),
    "stall-greeting": Case((Script(greeting="stall"),)),
    "drip-greeting": Case((Script(greeting="drip 220 " + "slow " * 40),)),
    "endless-multiline-greeting": Case((Script(greeting="endless"),)),
    "starttls-454": Case((Script(starttls="454 4.7.0 TLS not available"),)),
    "starttls-not-offered": Case((Script(starttls_offered=False),)),
    "tls-handshake-failure": Case((Script(starttls="garbage"),)),
    "untrusted-certificate": Case((Script(untrusted_cert=True),)),
    "partial-452": Case((Script(rcpt={YOU: "452 4.2.2 mailbox full"}),), BOTH),
    "partial-550": Case((Script(rcpt={YOU: "550 5.1.1 no such user"}),), BOTH, frozenset({YOU})),
    "both-refused-452-550": Case(
        (Script(rcpt={ME: "452 4.2.2 mailbox full", YOU: "550 5.1.1 no such user"}),),
        BOTH,
        frozenset({YOU}),
    ),
    "ambiguous-then-554": Case((DROP, Script(dot="554 5.7.1 rejected"))),
    "ambiguous-then-550-rcpt": Case(
        (DROP, Script(rcpt={ME: "550 5.1.1 no such user"})), refused_for_good=frozenset({ME})
    ),
    "ambiguous-then-535": Case((DROP, Script(auth="535 5.7.8 bad credentials"))),
    "ambiguous-then-452-rcpt": Case((DROP, Script(rcpt={ME: "452 4.2.2 mailbox full"}))),
    "partial-452-then-ambiguous": Case((Script(rcpt={YOU: "452 4.2.2 full"}), DROP), BOTH),
    "250-then-quit-554": Case((Script(quit="554 5.0.0 go away"),)),
    "250-then-quit-421": Case((Script(quit="421 4.3.2 closing"),)),
    "250-then-drop-at-quit": Case((Script(quit="drop"),)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_no_paper_missing_and_none_under_two_message_ids(
    scripted_smtp: ScriptedSmtp,
    five_paper_settings: Callable[..., Settings],
    clock: Clock,
    case: Case,
) -> None:
    settings = five_paper_settings(scripted_smtp, case.emails, timeout=1, deadline_seconds=1.5)
    app = build_app(settings, store=Store.open(None), clock=clock)
    assert not [r for r in fetch(app) if r.error]
    profile = app.settings.profile_records()[0]
    scripted_smtp.scripts = list(case.scripts)

    send_profile(app, profile)
    scripted_smtp.scripts = []
    for _ in range(3):
        clock.now += timedelta(hours=1)
        send_profile(app, profile)

    store = app.store
    rows = store.outbox("me")
    papers_of = {
        row.message_id: {
            key
            for (key,) in store.db.execute(
                "SELECT paper_key FROM outbox_papers WHERE outbox_id = ?", [row.id]
            )
        }
        for row in rows
    }
    every_paper = set().union(*papers_of.values())
    assert len(every_paper) == len(FIVE_PAPERS)
    for recipient in case.emails:
        message_ids: dict[str, set[str]] = {key: set() for key in every_paper}
        for received in scripted_smtp.received:
            if recipient in received.recipients and received.may_have_arrived:
                for key in papers_of[received.message_id]:
                    message_ids[key].add(received.message_id)
        assert all(len(ids) <= 1 for ids in message_ids.values()), (recipient, message_ids)
        if recipient not in case.refused_for_good:
            assert all(len(ids) == 1 for ids in message_ids.values()), (recipient, message_ids)

    # Nothing is left half-done, and the store agrees with what the server accepted.
    assert [row.status for row in rows if row.status in RETRY_STATUSES] == []
    delivered: set[str] = set()
    for row in rows:
        accepted = {
            recipient
            for received in scripted_smtp.received
            if received.message_id == row.message_id and received.accepted
            for recipient in received.recipients
        }
        states = store.outbox_recipients(row.id)
        assert {r.address for r in states if r.status == "sent"} == accepted, row.status
        if accepted:
            delivered |= papers_of[row.message_id]
    assert store.delivered_keys("me") == delivered
    bound = {
        key for row in rows if row.status == "undeliverable" for key in papers_of[row.message_id]
    }
    assert delivered | bound == every_paper  # each paper delivered, or held with its message


# --- a run's digests over one session -----------------------------------------------------------

THREE = ("me@example.org", "you@example.org", "them@example.org")


@dataclass(frozen=True)
class GroupCase:
    """A send of three profiles' digests in one run against a server playing `scripts` (the
    last repeats), then healthy runs; how many connections the first run may open."""

    scripts: tuple[Script, ...]
    connections: int


GROUP_CASES = {
    # one connection, one login, three messages
    "healthy": GroupCase((Script(),), 1),
    # the server ends the session after a message (421 at the next MAIL, or it closes): the
    # next digest opens a new one, nothing is lost or doubled
    "421-at-second-mail": GroupCase((Script(mails=("250 OK", "421 4.7.0 too many")), Script()), 2),
    "closed-at-second-mail": GroupCase((Script(mails=("250 OK", "drop")), Script()), 2),
    # a message of a kept session fails after its dot: the session is closed, that digest is
    # retried (same Message-ID) on a new one, which the last digest shares
    "second-dropped-after-data": GroupCase((Script(dots=("250 ok", "drop")), Script()), 2),
    "second-refused-554": GroupCase((Script(dots=("250 ok", "554 5.7.1 spam")), Script()), 2),
    "second-451-then-250": GroupCase((Script(dots=("250 ok", "451 4.3.0 later")), Script()), 2),
}


@pytest.mark.parametrize("case", GROUP_CASES.values(), ids=GROUP_CASES.keys())
def test_a_run_sends_its_digests_over_one_session_and_survives_its_faults(
    scripted_smtp: ScriptedSmtp,
    five_paper_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    clock: Clock,
    case: GroupCase,
) -> None:
    """Three profiles due together get their digests over one SMTP connection (one login);
    whatever the server does to the session on the way, every paper reaches every profile
    under one Message-ID, and nothing is left half-done."""
    config = five_paper_config(scripted_smtp, timeout=1, deadline_seconds=1.5)
    config["profiles"] = [
        {"name": address.split("@")[0], "email": [address], "keywords": ["KV cache"]}
        for address in THREE
    ]
    app = build_app(settings_from_dict(config, tmp_path / "config.toml"), clock=clock)
    assert not [r for r in fetch(app) if r.error]
    profiles = app.settings.profile_records()
    scripted_smtp.scripts = list(case.scripts)

    send(app, profiles)
    assert scripted_smtp.connections == case.connections
    scripted_smtp.scripts = []
    for _ in range(3):
        clock.now += timedelta(hours=1)
        send(app, profiles)

    store = app.store
    for profile, address in zip(profiles, THREE, strict=True):
        rows = store.outbox(profile.name)
        assert [row.status for row in rows if row.status in RETRY_STATUSES] == []
        arrived: dict[str, set[str]] = {}
        for received in scripted_smtp.received:
            if address in received.recipients and received.may_have_arrived:
                for (key,) in store.db.execute(
                    "SELECT op.paper_key FROM outbox_papers op JOIN outbox o"
                    " ON o.id = op.outbox_id WHERE o.message_id = ?",
                    [received.message_id],
                ):
                    arrived.setdefault(key, set()).add(received.message_id)
        assert len(arrived) == len(FIVE_PAPERS), profile.name
        assert all(len(ids) == 1 for ids in arrived.values()), (profile.name, arrived)
        assert store.delivered_keys(profile.name) == set(arrived)


def _mailer(server: ScriptedSmtp, config: dict[str, Any], tmp_path: Path) -> SmtpMailer:
    settings = settings_from_dict(config, tmp_path / "config.toml")
    return SmtpMailer(settings.smtp)


def _message(number: int) -> bytes:
    return f"Message-ID: <{number}@example.org>\r\nSubject: {number}\r\n\r\nbody\r\n".encode()


def test_a_kept_session_carries_a_bounded_number_of_messages(
    scripted_smtp: ScriptedSmtp,
    five_paper_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past `SESSION_MESSAGES` the session is ended (QUIT) and the next send opens another."""
    import digest.deliver

    monkeypatch.setattr(digest.deliver, "SESSION_MESSAGES", 2)
    mailer = _mailer(scripted_smtp, five_paper_config(scripted_smtp), tmp_path)
    with mailer.kept_open():
        for number in range(5):
            assert mailer.send(_message(number), "digest@example.org", [ME]) == {}
    assert scripted_smtp.connections == 3
    assert [r.message_id for r in scripted_smtp.received] == [
        f"<{n}@example.org>" for n in range(5)
    ]


def test_a_kept_session_idle_past_its_deadline_is_opened_again_not_failed(
    scripted_smtp: ScriptedSmtp,
    five_paper_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    """The deadline bounds each message: a kept session that sat idle past it (the run was
    planning) was shut down by its watchdog, and the next send opens a new one."""
    import time

    config = five_paper_config(scripted_smtp, timeout=1, deadline_seconds=1)
    mailer = _mailer(scripted_smtp, config, tmp_path)
    with mailer.kept_open():
        mailer.send(_message(1), "digest@example.org", [ME])
        waited = 0.0
        while scripted_smtp.ended < 1 and waited < 10:  # the watchdog shuts the idle session
            time.sleep(0.05)
            waited += 0.05
        assert scripted_smtp.ended == 1
        mailer.send(_message(2), "digest@example.org", [ME])
    assert scripted_smtp.connections == 2
    assert [r.accepted for r in scripted_smtp.received] == [True, True]
