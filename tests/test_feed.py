"""The Atom feed's pure parts and its store rows: entry ids as IRIs, the XML valid against RFC
4287's RELAX NG schema (tests/data/atom.rng) and the rules the RFC states beside it, the same
bytes for the same records (a strong ETag), conditional GET, feed keys, their revocation, and
the delivered papers a feed lists (real SQLite)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from digest.errors import ConfigError
from digest.feed import (
    ATOM_NS,
    TAG_PREFIX,
    FeedEntry,
    FeedHead,
    FeedLink,
    atom_bytes,
    entry_iri,
    etag_of,
    feed_key,
    http_date,
    key_matches,
    not_modified,
    xml_text,
)
from digest.feed_entries import paper_feed_links
from digest.models import Paper
from digest.settings import settings_from_dict
from digest.store import Store

from .conftest import DATA, FIXED_NOW

A = f"{{{ATOM_NS}}}"
SCHEMA = etree.RelaxNG(etree.parse(str(DATA / "atom.rng")))
# RFC 3987's IRI: no spaces, controls or the characters it excludes, and a scheme first.
IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20<>\"{}|\\^`\x7f]+")


def atom_errors(body: bytes) -> list[str]:
    """What is wrong with an Atom document: the RELAX NG schema's errors, then the rules RFC
    4287 states in prose and Schematron (4.1.1, 4.1.2)."""
    doc = etree.fromstring(body)
    if not SCHEMA.validate(doc):
        return [str(error) for error in SCHEMA.error_log]
    problems = []
    entries = doc.findall(A + "entry")
    if doc.find(A + "author") is None and any(e.find(A + "author") is None for e in entries):
        problems.append("a feed without an author has an entry without one")
    for entry in entries:
        alternates = [
            (link.get("type"), link.get("hreflang"))
            for link in entry.findall(A + "link")
            if link.get("rel", "alternate") == "alternate"
        ]
        if len(alternates) != len(set(alternates)):
            problems.append(f"{entry.findtext(A + 'id')}: two alternate links of one type")
        if entry.find(A + "content") is None and not alternates:
            problems.append(f"{entry.findtext(A + 'id')}: no content and no alternate link")
        if not IRI.fullmatch(entry.findtext(A + "id") or ""):
            problems.append(f"{entry.findtext(A + 'id')}: not an IRI")
    ids = [e.findtext(A + "id") for e in entries]
    if len(ids) != len(set(ids)):
        problems.append("two entries share an id")
    return problems


def _entry(key: str = "arxiv:2401.01234", **changes: object) -> FeedEntry:
    values: dict[str, object] = {
        "paper_key": key,
        "title": "Compressing KV caches",
        "updated": FIXED_NOW,
        "published": datetime(2026, 11, 20, tzinfo=UTC),
        "authors": ("Ada Lovelace", "Alan Turing"),
        "summary": "Matches “KV cache” (title).",
        "content": "We compress the KV cache & more <b>.",
        "links": (FeedLink("https://arxiv.org/abs/2401.01234", type="text/html"),),
        "categories": ("cs.LG",),
    }
    values.update(changes)
    return FeedEntry(**values)  # type: ignore[arg-type]


HEAD = FeedHead("me", "digest: me", "https://lab.example.org/me/feed.atom", FIXED_NOW)


# --- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "iri"),
    [
        ("arxiv:2401.01234", "tag:digest,2026:arxiv:2401.01234"),
        ("arxiv:hep-th/9901001", "tag:digest,2026:arxiv:hep-th/9901001"),
        ("doi:10.1000/xyz(1)", "tag:digest,2026:doi:10.1000/xyz(1)"),
        ("doi:10.1002/<a b>#c", "tag:digest,2026:doi:10.1002/%3Ca%20b%3E%23c"),
        ("title:08bc4cae504d3946235f", "tag:digest,2026:title:08bc4cae504d3946235f"),
        ("doi:10.1/ü", "tag:digest,2026:doi:10.1/%C3%BC"),
    ],
)
def test_an_entry_id_is_the_paper_key_in_a_tag_uri(key: str, iri: str) -> None:
    assert entry_iri(key) == iri
    assert IRI.fullmatch(iri)


@given(st.text(min_size=1, max_size=80))
def test_every_key_gives_an_iri_that_reads_back_as_the_key(key: str) -> None:
    iri = entry_iri(key)
    assert IRI.fullmatch(iri), iri
    assert unquote(iri.removeprefix(TAG_PREFIX), errors="surrogatepass") == key


# --- the document ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [_entry()],
        [_entry(authors=()), _entry("doi:10.1/a b", content="", published=None)],
        [_entry(title="Bad \x01 control \x0b chars \ufffe", summary="x\x00y")],
        [_entry(f"arxiv:2401.{n:05d}") for n in range(50)],
    ],
    ids=["empty", "one", "no-authors-no-content", "control-characters", "fifty"],
)
def test_the_feed_is_valid_atom(entries: list[FeedEntry]) -> None:
    body = atom_bytes(HEAD, entries)
    assert atom_errors(body) == []
    doc = etree.fromstring(body)
    assert doc.findtext(A + "id") == "tag:digest,2026:feed/me"
    assert doc.find(A + "link[@rel='self']").get("href") == HEAD.self_url
    assert len(doc.findall(A + "entry")) == len(entries)


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_text_reads_back_as_itself_less_what_xml_cannot_carry(title: str, name: str) -> None:
    body = atom_bytes(HEAD, [_entry(title=title, authors=(name,), summary=title)])
    entry = etree.fromstring(body).find(A + "entry")
    assert entry is not None
    shown = xml_text(title)
    assert entry.findtext(A + "title") == (shown if shown.strip() else "arxiv:2401.01234")
    assert entry.findtext(A + "summary") == shown
    assert [a.findtext(A + "name") for a in entry.findall(A + "author")] == (
        [xml_text(name)] if xml_text(name).strip() else []
    )


def test_the_schema_refuses_what_rfc_4287_refuses() -> None:
    """The hand-converted schema is not a schema that accepts anything."""
    good = etree.fromstring(atom_bytes(HEAD, [_entry()]))
    assert SCHEMA.validate(good)
    for path, change in [
        ("entry/id", "remove"),
        ("entry/updated", "2026-13-01"),
        ("updated", "yesterday"),
        ("entry/title", "remove"),
    ]:
        doc = etree.fromstring(atom_bytes(HEAD, [_entry()]))
        node = doc.find("/".join(A + part for part in path.split("/")))
        assert node is not None
        if change == "remove":
            node.getparent().remove(node)
        else:
            node.text = change
        assert not SCHEMA.validate(doc), path
    doc = etree.fromstring(atom_bytes(HEAD, [_entry()]))
    doc.append(etree.Element(A + "unknown"))
    assert not SCHEMA.validate(doc)


def test_the_entry_carries_what_the_email_says() -> None:
    doc = etree.fromstring(atom_bytes(HEAD, [_entry()]))
    entry = doc.find(A + "entry")
    assert entry is not None
    assert entry.findtext(A + "title") == "Compressing KV caches"
    assert entry.findtext(A + "updated") == "2026-11-22T06:00:00Z"
    assert entry.findtext(A + "published") == "2026-11-20T00:00:00Z"
    assert [a.findtext(A + "name") for a in entry.findall(A + "author")] == [
        "Ada Lovelace",
        "Alan Turing",
    ]
    assert entry.findtext(A + "summary") == "Matches “KV cache” (title)."
    assert entry.findtext(A + "content") == "We compress the KV cache & more <b>."


def test_the_same_records_are_the_same_bytes() -> None:
    entries = [_entry(), _entry("doi:10.1/x")]
    assert atom_bytes(HEAD, entries) == atom_bytes(HEAD, list(entries))
    changed = atom_bytes(HEAD, [_entry(title="Other"), _entry("doi:10.1/x")])
    assert etag_of(changed) != etag_of(atom_bytes(HEAD, entries))


@pytest.mark.parametrize(
    ("paper", "expected"),
    [
        (
            Paper("arxiv:2401.01234", "T", arxiv_id="2401.01234", doi="10.1/x"),
            [
                ("alternate", "text/html", "https://arxiv.org/abs/2401.01234"),
                ("alternate", "application/pdf", "https://arxiv.org/pdf/2401.01234"),
                ("related", "", "https://doi.org/10.1/x"),
            ],
        ),
        (
            Paper("doi:10.1/x", "T", doi="10.1/x"),
            [("alternate", "text/html", "https://doi.org/10.1/x")],
        ),
        (
            Paper("title:abc", "A title", url="https://example.org/p"),
            [("alternate", "text/html", "https://example.org/p")],
        ),
        (
            Paper("title:abc", "A title", url="javascript:alert(1)"),
            [
                (
                    "alternate",
                    "text/html",
                    "https://arxiv.org/search/?searchtype=title&query=A+title",
                )
            ],
        ),
    ],
)
def test_an_entry_links_its_page_pdf_and_doi(
    paper: Paper, expected: list[tuple[str, str, str]]
) -> None:
    assert [(link.rel, link.type, link.href) for link in paper_feed_links(paper)] == expected


# --- conditional GET ------------------------------------------------------------------------------

ETAG = '"abc"'
NEWEST = datetime(2026, 11, 22, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        (None, None, False),
        ('"abc"', None, True),
        ('W/"abc"', None, True),
        ('"x", "abc"', None, True),
        ("*", None, True),
        ('"other"', None, False),
        ('"other"', http_date(NEWEST), False),  # If-None-Match decides when sent
        (None, http_date(NEWEST), True),
        (None, http_date(NEWEST + timedelta(hours=1)), True),
        (None, http_date(NEWEST - timedelta(seconds=1)), False),
        (None, "not a date", False),
        (None, "x" * 5000, False),
        ('"abc"' * 1000, None, False),
    ],
)
def test_a_conditional_get_is_not_modified_only_when_the_validators_say(
    if_none_match: str | None, if_modified_since: str | None, expected: bool
) -> None:
    assert not_modified(ETAG, NEWEST, if_none_match, if_modified_since) is expected


# --- keys -----------------------------------------------------------------------------------------


def test_a_feed_key_is_bound_to_secret_profile_and_generation() -> None:
    secret = "s" * 32
    key = feed_key(secret, "me", 0)
    assert len(key) == 32 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
    others = {feed_key(secret, "you", 0), feed_key(secret, "me", 1), feed_key("t" * 32, "me", 0)}
    assert key not in others and len(others) == 3
    assert key_matches(key, key)
    assert not key_matches(key[:-1], key)
    assert not key_matches(key[:-1] + "é", key)
    assert not key_matches("", key)


# --- the store ------------------------------------------------------------------------------------


def _paper(n: int, **changes: object) -> Paper:
    values: dict[str, object] = {
        "key": f"arxiv:2401.{n:05d}",
        "title": f"Paper {n} on KV caches",
        "arxiv_id": f"2401.{n:05d}",
        "version": 1,
        "authors": ("Ada Lovelace",),
        "published": date(2026, 11, 1),
        "source": "arxiv",
    }
    values.update(changes)
    return Paper(**values)  # type: ignore[arg-type]


def deliver(store: Store, profile: str, papers: list[Paper], at: datetime) -> None:
    """Store `papers` and deliver them to `profile` at `at` (the outbox's own path)."""
    store.upsert_papers(papers, at)
    outbox_id = store.add_outbox(
        profile=profile,
        message_id=f"<{profile}.{at.timestamp()}@test>",
        recipients=("me@example.org",),
        subject="digest",
        raw=b"message",
        paper_keys=tuple(p.key for p in papers),
        cutoff=at,
        now=at,
    )
    store.record_attempt(outbox_id, at, tried={"me@example.org": ("sent", "250 OK")}, error="")


def test_a_feed_lists_the_profiles_deliveries_of_its_days_newest_first(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "d.sqlite")
    try:
        old = FIXED_NOW - timedelta(days=40)
        deliver(store, "me", [_paper(1)], old)
        deliver(store, "me", [_paper(2), _paper(3)], FIXED_NOW - timedelta(days=2))
        deliver(store, "you", [_paper(4)], FIXED_NOW)
        deliver(store, "me", [_paper(5)], FIXED_NOW)
        since = FIXED_NOW - timedelta(days=30)
        listed = store.delivered_papers("me", since, 10)
        assert [row.paper.key for row in listed] == [
            "arxiv:2401.00005",
            "arxiv:2401.00002",
            "arxiv:2401.00003",
        ]
        assert [row.paper.key for row in store.delivered_papers("me", since, 2)] == [
            "arxiv:2401.00005",
            "arxiv:2401.00002",
        ]
        assert listed[0].delivered_at == FIXED_NOW and listed[0].updated_at == FIXED_NOW
    finally:
        store.close()


def test_revoking_a_key_bumps_only_that_profiles_generation(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "d.sqlite")
    try:
        assert store.feed_generation("me") == 0
        assert store.revoke_feed_key("me", FIXED_NOW) == 1
        assert store.revoke_feed_key("me", FIXED_NOW) == 2
        assert store.feed_generation("you") == 0
    finally:
        store.close()
    reopened = Store.open(tmp_path / "d.sqlite", read_only=True)
    try:
        assert reopened.feed_generation("me") == 2
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ({"feed_days": 0}, "server.feed_days"),
        ({"feed_days": 366}, "server.feed_days"),
        ({"feed_entries": 0}, "server.feed_entries"),
        ({"feed_entries": 5001}, "server.feed_entries"),
    ],
)
def test_feed_settings_are_bounded(tmp_path: Path, server: dict[str, int], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_dict({"server": server}, tmp_path / "config.toml")
    assert problem in str(raised.value) and "\n" not in str(raised.value)
