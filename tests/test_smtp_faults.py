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

import pytest

from digest.app import build_app, fetch, send_profile
from digest.settings import Settings
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
