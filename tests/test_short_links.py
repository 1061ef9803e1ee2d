"""The short feedback token (`digest.short_links`): what it binds, how it refuses, its length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.feedback import email_linker
from digest.models import Match, Paper, Reason
from digest.short_links import (
    MAX_TOKEN_CHARS,
    LinkError,
    PaperLink,
    _leb128,
    _read_leb128,
    make_token,
    read_token,
)

from .conftest import FIXED_NOW, Clock

SECRET = "s" * 32
KEY = "doi:10.1000/" + "x" * 120  # a long DOI: the token carries its number, not the key
PAPERS = {7: KEY, 8: "arxiv:2401.01234"}


def _read(token: str, profile: str = "me", *, clock: Clock | None = None, days: int = 30) -> str:
    link = read_token(SECRET, token, profile, PAPERS.get, max_age_days=days, clock=clock or Clock())
    return link.paper_key


def _refused(token: str, profile: str = "me", **kwargs: object) -> LinkError:
    with pytest.raises(LinkError) as refused:
        _read(token, profile, **kwargs)  # type: ignore[arg-type]
    return refused.value


def test_a_token_round_trips_its_paper_for_its_profile() -> None:
    token = make_token(SECRET, "me", KEY, 7, FIXED_NOW)
    assert len(token) <= MAX_TOKEN_CHARS and token.isascii() and "." not in token
    link = read_token(SECRET, token, "me", PAPERS.get, max_age_days=30, clock=Clock())
    assert link == PaperLink("me", KEY, FIXED_NOW)


@pytest.mark.parametrize(
    ("profile", "number", "said"),
    [
        ("you", 7, "not valid for the profile “you”"),
        ("me", 8, "not valid for the profile"),  # another paper's number: the key is bound
        ("me", 9, "not valid for the profile"),  # a number this store does not have
    ],
    ids=["other-profile", "other-paper", "unknown-number"],
)
def test_a_token_is_refused_for_another_profile_or_paper(
    profile: str, number: int, said: str
) -> None:
    token = make_token(SECRET, "me", KEY, 7, FIXED_NOW)
    if number != 7:  # the same token body with the number swapped, the MAC kept
        other = make_token(SECRET, "me", KEY, number, FIXED_NOW)
        token = other[:-16] + token[-16:]
    refused = _refused(token, profile)
    assert refused.status == 403 and said in str(refused)


def test_every_changed_character_is_refused() -> None:
    token = make_token(SECRET, "me", KEY, 7, FIXED_NOW)
    for position in range(len(token)):
        for replacement in "A_":
            if token[position] == replacement:
                continue
            changed = token[:position] + replacement + token[position + 1 :]
            assert _refused(changed).status == 403, changed


@pytest.mark.parametrize(
    "token",
    ["", "garbage!", "A" * 61, "AQ", "é" * 30, "AQID" * 15, "=" * 8, "a.b.c", "AXY4-QHIk0gQZCEr"],
    ids=[
        "empty",
        "not-base64",
        "too-long",
        "short",
        "non-ascii",
        "noise",
        "padding",
        "dots",
        "cut",
    ],
)
def test_malformed_tokens_are_refused_not_crashed(token: str) -> None:
    assert _refused(token).status == 403


def test_a_link_expires_after_link_days_with_the_skew_allowed() -> None:
    token = make_token(SECRET, "me", KEY, 7, FIXED_NOW)
    late = Clock(FIXED_NOW + timedelta(days=30, minutes=4))
    assert _read(token, clock=late) == KEY
    late.now += timedelta(minutes=2)
    refused = _refused(token, clock=late)
    assert refused.status == 410 and "expired" in str(refused)
    assert _read(token, clock=late, days=31) == KEY  # the server's link_days decides


def test_a_link_made_ahead_of_the_servers_clock_is_not_yet_valid() -> None:
    token = make_token(SECRET, "me", KEY, 7, FIXED_NOW + timedelta(minutes=4))
    assert _read(token) == KEY  # within the skew
    ahead = make_token(SECRET, "me", KEY, 7, FIXED_NOW + timedelta(minutes=20))
    refused = _refused(ahead)
    assert refused.status == 403 and "not yet valid" in str(refused)


def test_a_link_signed_under_a_replaced_secret_says_so() -> None:
    token = make_token("another-secret-of-32-characters!", "me", KEY, 7, FIXED_NOW)
    refused = _refused(token)
    assert refused.status == 403 and "secret changed" in str(refused)


profiles = st.text(st.characters(codec="utf-8"), min_size=1, max_size=80)
paper_keys = st.one_of(
    st.builds(lambda n: f"arxiv:2401.{n:05d}", st.integers(0, 99_999)),
    st.builds(lambda s: "doi:10.1000/" + s, st.text(min_size=1, max_size=300)),
    st.builds(lambda s: "title:" + s, st.text(min_size=1, max_size=400)),
)
numbers = st.integers(1, 2**56 - 1)  # at most 8 bytes of LEB128
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)


@given(profiles, paper_keys, numbers, moments)
def test_any_token_is_at_most_60_characters_and_round_trips(
    profile: str, key: str, number: int, made: datetime
) -> None:
    token = make_token(SECRET, profile, key, number, made)
    assert len(token) <= MAX_TOKEN_CHARS
    link = read_token(SECRET, token, profile, {number: key}.get, max_age_days=1, clock=lambda: made)
    assert link == PaperLink(profile, key, made.replace(second=0, microsecond=0))


@given(st.text(max_size=100))
def test_any_text_is_refused_with_a_link_error_only(token: str) -> None:
    with pytest.raises(LinkError):
        read_token(SECRET, token, "me", PAPERS.get, max_age_days=30, clock=Clock())


@given(st.integers(0, 2**56 - 1))
def test_leb128_round_trips_and_only_minimal_forms_are_read(number: int) -> None:
    encoded = _leb128(number)
    assert _read_leb128(encoded) == number
    assert _read_leb128(encoded + b"\x00") is None  # trailing bytes
    assert _read_leb128(encoded[:-1] + bytes([encoded[-1] | 0x80]) + b"\x00") is None


def test_the_email_gets_one_short_link_a_stored_paper_and_long_links_otherwise() -> None:
    paper = Paper(key=KEY, title="KV cache", authors=("Ada Lovelace",))
    match = Match(paper, (Reason("keyword", "KV cache", "title", "KV cache"),), 1.0)
    stored = email_linker(
        "https://lab.example.org/d/", SECRET, "me", Clock(), lambda key: {KEY: 7}.get(key)
    )
    [(label, url)] = stored(match)
    token = url.removeprefix("https://lab.example.org/d/me/f/")
    assert label == "feedback" and len(url) <= len("https://lab.example.org/d/me/f/") + 60
    assert _read(token) == KEY
    unstored = email_linker("https://lab.example.org/d/", SECRET, "me", Clock(), lambda key: None)
    labels = [label for label, _ in unstored(match)]
    assert labels == ["more like this", "less like this", "mute this term"]
    assert all("/me/feedback?t=" in url for _, url in unstored(match))


def test_the_page_offers_the_emails_actions_then_the_papers_authors_once() -> None:
    from digest.feedback import PAGE_AUTHORS, page_actions

    authors = ("Seyed Iman Mirzadeh", "Bo Li", *(f"Author {i}" for i in range(20)))
    paper = Paper(key=KEY, title="KV cache", authors=authors)
    reasons = (
        Reason("author", "Iman Mirzadeh", "authors", "Seyed Iman Mirzadeh"),
        Reason("keyword", "KV cache", "title", "KV cache"),
    )
    offered = [ask.action for ask in page_actions("me", Match(paper, reasons, 1.0), paper)]
    assert offered[:4] == ["like", "dislike", "mute-author:Iman Mirzadeh", "mute-term:KV cache"]
    assert offered[4:] == [f"mute-author:{name}" for name in authors[1:PAGE_AUTHORS]]
    unmatched = [ask.action for ask in page_actions("me", None, paper)]
    assert unmatched[:3] == ["like", "dislike", "mute-author:Seyed Iman Mirzadeh"]
    assert len(unmatched) == 2 + PAGE_AUTHORS
