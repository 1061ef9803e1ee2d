"""The send job's pure decisions: what an attempt means for its outbox row, and which lookups
are recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.errors import DeliveryError
from digest.fetching import lookup_outcomes
from digest.models import Paper
from digest.sending import decide_attempt
from digest.store import OutboxEntry, RecipientStatus

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
ENTRY = OutboxEntry(
    id=1,
    profile="me",
    message_id="<m@x>",
    status="pending",
    created_at=NOW,
    cutoff=NOW,
    recipients=("a@x.org",),
    subject="s",
    raw=b"",
    paper_count=1,
    attempts=2,
    last_error="",
    sent_at=None,
)
PERMANENT = DeliveryError("550 no such user", permanent=True)
TEMPORARY = DeliveryError("421 try later")
WAITING: dict[str, tuple[RecipientStatus, str]] = {"a@x.org": ("pending", "421 try later")}
SENT: dict[str, tuple[RecipientStatus, str]] = {"a@x.org": ("sent", "accepted")}


@pytest.mark.parametrize(
    ("failure", "tried", "bound", "too_old", "last", "give_up", "final", "says_given_up"),
    [
        (None, SENT, False, False, False, False, False, False),
        (PERMANENT, WAITING, False, False, False, True, True, False),  # nobody has it
        (PERMANENT, WAITING, True, False, False, False, True, False),  # someone may have it
        (TEMPORARY, WAITING, False, False, True, False, False, False),  # retried later
        (TEMPORARY, WAITING, False, True, False, False, False, False),  # more tries this run
        (TEMPORARY, WAITING, True, True, True, True, False, True),  # past retry_hours
        (PERMANENT, SENT, True, True, False, True, True, False),  # nobody left waiting
    ],
    ids=[
        "delivered",
        "permanent-unbound",
        "permanent-bound",
        "temporary",
        "too-old-mid-run",
        "too-old-end-of-run",
        "too-old-nobody-waiting",
    ],
)
def test_decide_attempt(
    failure: DeliveryError | None,
    tried: dict[str, tuple[RecipientStatus, str]],
    bound: bool,
    too_old: bool,
    last: bool,
    give_up: bool,
    final: bool,
    says_given_up: bool,
) -> None:
    decided = decide_attempt(
        ENTRY,
        tried,
        "the error",
        failure,
        bound=bound,
        too_old=too_old,
        last_of_run=last,
        retry_hours=72,
    )
    assert (decided.give_up, decided.final) == (give_up, final)
    given_up = "given up after 3 tries over 72 h: the error"
    assert decided.error == (given_up if says_given_up else "the error")


ASKED = [Paper(key="arxiv:1", title="a", arxiv_id="1"), Paper(key="arxiv:2", title="b")]


@pytest.mark.parametrize(
    ("ran_out", "expected"),
    [(False, {"arxiv:1": True, "arxiv:2": False}), (True, {"arxiv:1": True})],
    ids=["all-asked", "budget-ran-out"],
)
def test_lookup_outcomes(ran_out: bool, expected: dict[str, bool]) -> None:
    assert lookup_outcomes(ASKED, [ASKED[0]], budget_ran_out=ran_out) == expected
