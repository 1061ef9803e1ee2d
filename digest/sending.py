"""The send job: digests queued in the outbox, delivered to each recipient, retried.

An `Outbox` is given its parts (the store, the settings, the clock, the mailer, how to wait);
`App.outbox` builds one. `send` runs the job for several profiles: first any digest still to
retry, then the new ones, planned in one pass (`digest.plan`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from digest.deliver import (
    Mailer,
    SessionMailer,
    build_message,
    new_message_id,
    refusal_is_permanent,
)
from digest.errors import ConfigError, DeliveryError
from digest.models import NotifyTarget, Profile, RenderedDigest
from digest.notify import ChatMessage, chat_message, deliver_chats
from digest.plan.planning import Plan, PlanPass
from digest.settings import NOTIFY_PREFIX, Settings
from digest.store import (
    OPEN_RECIPIENT_STATUSES,
    RETRY_STATUSES,
    OutboxEntry,
    OutboxStatus,
    RecipientState,
    RecipientStatus,
    Store,
)

log = logging.getLogger(__name__)


def message_domain(settings: Settings) -> str:
    """The domain for Message-IDs: configured, else the sender's, else `digest.localhost`."""
    smtp = settings.smtp
    return smtp.message_id_domain or smtp.from_address.partition("@")[2] or "digest.localhost"


def sender_address(settings: Settings) -> str:
    """The From address: configured, else a local one (Maildir delivery needs no real sender)."""
    return settings.smtp.from_address or "digest@localhost"


@dataclass(frozen=True)
class SendReport:
    """What sending did for one profile.

    `outcome` is the status of the digest `error` is about: pending (kept for retry), failed
    (its papers go in the next digest), ambiguous (resent unchanged), undeliverable (given
    up, its papers stay with it). `waiting` counts recipients refused for now, retried later;
    `notes` say which digests reached some recipients and not others; `why` says why nothing
    was sent.
    """

    profile: str
    sent: tuple[OutboxEntry, ...] = ()
    papers: int = 0
    error: str = ""
    skipped: str = ""
    followed: int = 0
    rendered: RenderedDigest | None = field(default=None, repr=False)
    outcome: OutboxStatus | None = None
    waiting: int = 0
    notes: tuple[str, ...] = ()
    why: str = ""  # with `skipped`: why nothing was sent (`empty_reason`)


@dataclass(frozen=True)
class Delivery:
    """What delivering one outbox row did: the row as it now stands, the last attempt's error
    or refusals ('' when every recipient tried has it), and how many recipients wait for a
    later try."""

    entry: OutboxEntry
    error: str = ""
    waiting: int = 0

    @property
    def reached_someone(self) -> bool:
        """Some recipient has the message: the profile's next digest may be planned."""
        return self.entry.status in ("sent", "partial")


_AMBIGUOUS_NOTE = " [ambiguous: resent with the same Message-ID]"
_BOUND_NOTE = " [an earlier try was ambiguous: its papers stay with this Message-ID]"


def _recipient_outcomes(
    targets: Sequence[str], refused: Mapping[str, str], failure: DeliveryError | None
) -> dict[str, tuple[RecipientStatus, str]]:
    """What one attempt did to each recipient tried: accepted, refused (5xx), refused for now
    (4xx: tried again later), ambiguous, or untouched by a failure of the whole session."""
    outcomes: dict[str, tuple[RecipientStatus, str]] = {}
    for address in targets:
        if address in refused:
            reply = refused[address]
            outcomes[address] = ("refused" if refusal_is_permanent(reply) else "pending", reply)
        elif failure is None:
            outcomes[address] = ("sent", "accepted")
        else:
            outcomes[address] = ("ambiguous" if failure.ambiguous else "pending", str(failure))
    return outcomes


def _attempt_error(
    refused: Mapping[str, str],
    failure: DeliveryError | None,
    bound: bool,
    chats: Mapping[str, tuple[RecipientStatus, str]],
) -> str:
    """The text history keeps for one attempt ('' for a clean delivery): the email's, then each
    chat or push target's that did not take it."""
    parts = [_email_error(refused, failure, bound)]
    parts += [reply for status, reply in chats.values() if status != "sent"]
    return "; ".join(part for part in parts if part)


def is_chat(address: str) -> bool:
    """Whether an outbox recipient is a chat or push target (`notify:NAME`), not an email."""
    return address.startswith(NOTIFY_PREFIX)


def _email_error(refused: Mapping[str, str], failure: DeliveryError | None, bound: bool) -> str:
    """The email's part of an attempt's error text ('' when every address took it)."""
    if failure is not None:
        note = _AMBIGUOUS_NOTE if failure.ambiguous else _BOUND_NOTE if bound else ""
        return f"{failure}{note}"
    if not refused:
        return ""
    later = " (retried later)"
    return "recipients refused: " + "; ".join(
        f"{address}: {reply}{'' if refusal_is_permanent(reply) else later}"
        for address, reply in refused.items()
    )


@dataclass(frozen=True)
class AttemptDecision:
    """What one attempt means for its outbox row: the error history keeps, whether the row is
    given up on, and whether the failure was permanent (no other try in this run)."""

    error: str
    give_up: bool
    final: bool


def decide_attempt(
    entry: OutboxEntry,
    tried: Mapping[str, tuple[RecipientStatus, str]],
    error: str,
    failure: DeliveryError | None,
    *,
    bound: bool,
    too_old: bool,
    last_of_run: bool,
    retry_hours: float,
) -> AttemptDecision:
    """A permanent failure gives up a row nobody has (its papers go in the next digest); a
    row past `retry_hours` is given up at the end of a run or on a permanent failure, and its
    error says so when recipients were still waiting."""
    final = failure is not None and failure.permanent
    give_up = (final and not bound) or (too_old and (last_of_run or final))
    if give_up and too_old and _someone_waits(tried):
        error = f"given up after {entry.attempts + 1} tries over {retry_hours:g} h: {error}"
    return AttemptDecision(error, give_up, final)


def _someone_waits(tried: Mapping[str, tuple[RecipientStatus, str]]) -> bool:
    """Whether a recipient of the attempt is still open (to be tried again)."""
    return any(status in OPEN_RECIPIENT_STATUSES for status, _ in tried.values())


def _open_addresses(states: Sequence[RecipientState]) -> list[str]:
    """The recipients still to try."""
    return [r.address for r in states if r.status in OPEN_RECIPIENT_STATUSES]


def _bound(states: Sequence[RecipientState]) -> bool:
    """Whether someone has the message or may have it (an ambiguous try): its papers stay
    bound to its Message-ID."""
    return any(r.status == "sent" or r.ambiguous_attempts for r in states)


def _waiting(deliveries: Sequence[Delivery]) -> dict[str, Any]:
    """The report's fields for digests that reached some recipients and not others."""
    notes = []
    for d in deliveries:
        if d.waiting:
            notes.append(f"partly delivered, {d.waiting} recipient(s) retried later: {d.error}")
        elif d.error:
            notes.append(f"delivered, not to every recipient: {d.error}")
    return {"waiting": sum(d.waiting for d in deliveries), "notes": tuple(notes)}


@dataclass
class Outbox:
    """The outbox worker: queues planned digests and delivers outbox rows."""

    store: Store
    settings: Settings
    clock: Callable[[], datetime]
    mailer: Callable[[], Mailer]  # built on first use: SMTP settings are needed only to send
    sleep: Callable[[float], None]
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)  # notify URLs
    # Inside `one_session`: where the mailer's kept session is ended, once a send opened it.
    _sessions: contextlib.ExitStack | None = field(default=None, init=False, repr=False)
    _keeping: bool = field(default=False, init=False, repr=False)

    @contextlib.contextmanager
    def one_session(self) -> Iterator[None]:
        """Within the block, the digests delivered share one mailer session where the mailer
        keeps sessions (`SessionMailer`: SMTP), ended when the block ends. The mailer is still
        built only when something is sent."""
        if self._sessions is not None:  # nested: the outer block ends the session
            yield
            return
        with contextlib.ExitStack() as self._sessions:
            try:
                yield
            finally:
                self._sessions, self._keeping = None, False

    def queue(self, plan: Plan) -> tuple[OutboxEntry, RenderedDigest]:
        """Put a planned digest in the outbox (pending), reserving its papers."""
        profile = plan.digest.profile
        if not profile.emails and not profile.notify:
            raise ConfigError(
                f"{self.settings.path}: profiles ({profile.name!r}).email: needed to send"
                " (or `notify` targets)"
            )
        now = plan.digest.generated_at
        rendered = plan.rendered
        message_id = new_message_id(message_domain(self.settings))
        chat = chat_message(plan.digest, rendered.subject, self.settings.server.public_url)
        outbox_id = self.store.add_outbox(
            profile=profile.name,
            message_id=message_id,
            recipients=profile.emails + tuple(t.label for t in profile.notify),
            subject=rendered.subject,
            raw=self._email(plan, message_id) if profile.emails else b"",
            paper_keys=rendered.paper_keys,
            cutoff=now,
            now=now,
            chat=chat.to_json() if profile.notify else "",
        )
        return self.store.outbox_entry(outbox_id), rendered

    def _email(self, plan: Plan, message_id: str) -> bytes:
        """The digest's email to the profile's addresses, as the outbox keeps it."""
        profile = plan.digest.profile
        return build_message(
            plan.rendered,
            sender=sender_address(self.settings),
            sender_name=self.settings.smtp.from_name,
            recipients=profile.emails,
            message_id=message_id,
            date=plan.digest.generated_at,
            profile=profile.name,
        )

    def deliver(self, entry: OutboxEntry) -> Delivery:
        """Send one outbox row to its recipients still to try, retrying temporary failures a few
        times with backoff; every attempt is recorded per recipient.

        The row ends sent (a recipient's server answered 250 after DATA, and none is left to
        try), failed (a permanent failure, and nobody has it or may have it: its papers go in the
        next digest) or undeliverable (given up on, while someone may have it: its papers stay
        with it). A row still open after `[delivery] retry_hours` is given up on.
        """
        delivery = self.settings.delivery
        result = Delivery(entry)
        for attempt in range(delivery.attempts):
            last = attempt + 1 == delivery.attempts
            result, again = self._attempt(result.entry, last_of_run=last)
            if not again or last:
                break
            self.sleep(delivery.retry_backoff_seconds * 2**attempt)
        return result

    def _attempt(self, entry: OutboxEntry, *, last_of_run: bool) -> tuple[Delivery, bool]:
        """One try of an outbox row; True beside it when another try in this run may help."""
        states = self.store.outbox_recipients(entry.id)
        targets = _open_addresses(states)
        if not targets:  # nobody left to try (a row left open by an older digest): settle it
            settled = self.store.record_attempt(
                entry.id, self.clock(), tried={}, error="", give_up=True
            )
            return Delivery(settled), False
        bound = _bound(states)
        emails = [address for address in targets if not is_chat(address)]
        failure, refused = self._try_send(entry, emails) if emails else (None, {})
        tried = _recipient_outcomes(emails, refused, failure)
        chats = self._try_chats(entry, [address for address in targets if is_chat(address)])
        tried.update(chats)
        now = self.clock()
        decided = decide_attempt(
            entry,
            tried,
            _attempt_error(refused, failure, bound, chats),
            failure,
            bound=bound,
            too_old=now - entry.created_at > timedelta(hours=self.settings.delivery.retry_hours),
            last_of_run=last_of_run,
            retry_hours=self.settings.delivery.retry_hours,
        )
        updated = self.store.record_attempt(
            entry.id, now, tried=tried, error=decided.error, give_up=decided.give_up
        )
        waiting = len(_open_addresses(self.store.outbox_recipients(entry.id)))
        if decided.error:
            log.warning("digest %s for %s: %s", entry.message_id, entry.profile, decided.error)
        again = updated.status in RETRY_STATUSES and not decided.final
        return Delivery(updated, decided.error, waiting), again

    def _try_send(
        self, entry: OutboxEntry, targets: Sequence[str]
    ) -> tuple[DeliveryError | None, Mapping[str, str]]:
        """Hand the message to the mailer for `targets`: the failure of the whole session (if
        any) and the recipients refused, with the server's reply."""
        try:
            return None, self._mailer().send(entry.raw, sender_address(self.settings), targets)
        except DeliveryError as exc:
            return exc, exc.refused

    def _mailer(self) -> Mailer:
        """The mailer, its session kept open inside `one_session`."""
        mailer = self.mailer()
        if self._sessions is not None and not self._keeping and isinstance(mailer, SessionMailer):
            self._sessions.enter_context(mailer.kept_open())
            self._keeping = True
        return mailer

    def _try_chats(
        self, entry: OutboxEntry, labels: Sequence[str]
    ) -> dict[str, tuple[RecipientStatus, str]]:
        """Post the row's chat message to each chat or push target still to try, one by one
        (one failing never stops the others): each one's outcome."""
        if not labels:
            return {}
        targets: dict[str, NotifyTarget] = {}
        for profile in self.settings.profile_records():
            if profile.name == entry.profile:
                targets = {target.label: target for target in profile.notify}
        message = ChatMessage.from_json(entry.chat)
        return dict(deliver_chats(targets, labels, message, self.environ))

    def retry(
        self, profile: Profile, *, dry_run: bool
    ) -> tuple[SendReport | None, list[OutboxEntry], list[Delivery]]:
        """Retry the profile's digests still in the outbox: the report that ends its run when one
        reached nobody (else None), the rows now sent, and those still waiting for someone."""
        sent: list[OutboxEntry] = []
        waiting: list[Delivery] = []
        for entry in self.store.outbox_to_retry(profile.name):
            if dry_run:
                continue
            retried = self.deliver(entry)
            if not retried.reached_someone:
                stopped = SendReport(
                    profile.name,
                    tuple(sent),
                    error=retried.error,
                    outcome=retried.entry.status,
                    **_waiting(waiting),
                )
                return stopped, sent, waiting
            if retried.entry.status == "sent":
                sent.append(retried.entry)
            if retried.error:
                waiting.append(retried)
        return None, sent, waiting

    def send_plan(
        self, plan: Plan, sent: list[OutboxEntry], waiting: list[Delivery], *, dry_run: bool
    ) -> SendReport:
        """Queue and deliver one profile's planned digest (unless it is empty and not wanted)."""
        profile = plan.digest.profile
        if not plan.digest.papers:
            log.info("%s: nothing sent: %s", profile.name, plan.digest.empty_reason)
            if not profile.send_empty:
                return self._nothing_new(plan, sent, waiting, dry_run=dry_run)
        if dry_run:
            return SendReport(
                profile.name,
                papers=len(plan.digest.papers),
                rendered=plan.rendered,
                followed=plan.digest.followed_count,
            )
        return self._send_new(plan, sent, waiting)

    def _nothing_new(
        self, plan: Plan, sent: list[OutboxEntry], waiting: list[Delivery], *, dry_run: bool
    ) -> SendReport:
        """The report of a run that sends no digest: nothing new, and no empty one wanted."""
        name = plan.digest.profile.name
        if not dry_run:
            self.store.record_send_run(name, self.clock(), "nothing new")
        return SendReport(
            name,
            tuple(sent),
            skipped="nothing new",
            why=plan.digest.empty_reason,
            **_waiting(waiting),
        )

    def _send_new(self, plan: Plan, sent: list[OutboxEntry], waiting: list[Delivery]) -> SendReport:
        """Queue and deliver the planned digest: the run's report."""
        name = plan.digest.profile.name
        entry, rendered = self.queue(plan)
        delivered = self.deliver(entry)
        failed = not delivered.reached_someone
        if not failed:
            sent.append(delivered.entry)
            self.store.record_send_run(name, self.clock(), "sent")
            if delivered.error:
                waiting.append(delivered)
        return SendReport(
            name,
            tuple(sent),
            papers=len(plan.digest.papers),
            error=delivered.error if failed else "",
            followed=plan.digest.followed_count,
            rendered=rendered,
            outcome=delivered.entry.status if failed else None,
            **_waiting(waiting),
        )


def send(
    outbox: Outbox,
    plan_pass: Callable[[], PlanPass],
    profiles: Sequence[Profile],
    *,
    dry_run: bool = False,
) -> list[SendReport]:
    """Deliver what is due for each profile now: first any digest still to retry, then a new
    one; the new digests of all of them are planned in one pass (`PlanPass.plan`).

    A retried digest that reaches nobody stops that profile's run (the server is down, or
    refuses); one that reached some recipients (others refused for now) does not.
    """
    with outbox.one_session():  # every digest of the run over one SMTP connection
        reports, retried = _retry_all(outbox, plan_pass, profiles, dry_run=dry_run)
        due = [profile for profile in profiles if profile.name in retried]
        plans = plan_pass().plan(due)
        for profile in due:
            sent, waiting = retried[profile.name]
            reports[profile.name] = outbox.send_plan(
                plans[profile.name], sent, waiting, dry_run=dry_run
            )
    return [reports[profile.name] for profile in profiles]


def _retry_all(
    outbox: Outbox,
    plan_pass: Callable[[], PlanPass],
    profiles: Sequence[Profile],
    *,
    dry_run: bool,
) -> tuple[dict[str, SendReport], dict[str, tuple[list[OutboxEntry], list[Delivery]]]]:
    """Retry each profile's digests still in the outbox: the reports of the runs that stopped
    there, and for the others what their retries sent and left waiting (by profile name)."""
    reports: dict[str, SendReport] = {}
    retried: dict[str, tuple[list[OutboxEntry], list[Delivery]]] = {}
    for profile in profiles:
        stopped, sent, waiting = outbox.retry(profile, dry_run=dry_run)
        if stopped is not None:
            reports[profile.name] = stopped
            continue
        retried[profile.name] = (sent, waiting)
        if not dry_run:
            plan_pass().expire_stale(profile)
    return reports, retried
