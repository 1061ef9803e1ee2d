"""Feedback without a server: the links in the email (only with `[server] public_url`), the
settings, muted authors as a post-filter, and `digest feedback` / `digest profile mute`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from digest.app import build_app, fetch, plan_digests
from digest.errors import ConfigError
from digest.feedback import paper_actions
from digest.match import match_profiles
from digest.models import FollowedAuthor, Match, Paper, Profile, Reason, ReasonKind
from digest.plan.decide import drop_muted
from digest.render import CLIP_BYTES, fit_digest
from digest.settings import load_settings, settings_from_dict
from digest.store import Store

from .conftest import DATA, FIXED_NOW, Clock

CONFIG = f"""# the lab's config
[store]
path = "d.sqlite"
{{server}}
[[sources.files]]
path = "{DATA / "listings.jsonl"}"

[[profiles]]
name = "me"  # mine
keywords = ["KV cache", "forgetting"]  # topics
authors = ["Rishabh Tiwari"]  # followed
first_run_days = 1
"""


def _config(tmp_path: Path, server: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.replace("{server}", server))
    return path


def _next_email(config: Path) -> tuple[str, str]:
    app = build_app(load_settings(config))
    try:
        fetch(app)
        rendered = plan_digests(app, app.settings.profile_records())["me"].rendered
    finally:
        app.close()
    return rendered.html, rendered.text


def test_the_email_has_feedback_links_only_with_a_public_url(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    html, text = _next_email(_config(tmp_path / "a"))
    assert "feedback?t=" not in html and "feedback?t=" not in text
    assert "more like this" not in html.lower() and "more like this" not in text.lower()

    (tmp_path / "b").mkdir()
    linked = _config(tmp_path / "b", '[server]\npublic_url = "https://lab.example.org/d/"\n')
    html, text = _next_email(linked)
    # One short link a paper, to its page of actions (tests/test_short_links.py, test_serve.py).
    links = re.findall(r"^   Feedback: https://lab\.example\.org/d/me/f/([\w-]+)$", text, re.M)
    assert links and all(len(token) <= 60 for token in links)
    assert html.count(">feedback</a>") == len(links) == len(set(links))
    for label in ("more like this", "less like this", "mute this author", "mute this term"):
        assert label not in html.lower() and label not in text.lower()
    assert "<form" not in html  # the email links to the paper's page, it posts nothing


def test_rule_matches_offer_mutes_by_reason_kind() -> None:
    paper = Paper(key="arxiv:1", title="KV cache tricks", authors=("Ada Lovelace", "Bo Li"))
    match = Match(
        paper,
        (
            Reason("author", "Ada Lovelace", "authors", "Ada Lovelace"),
            Reason("keyword", "KV cache", "title", "KV cache"),
            Reason("keyword", "KV cache", "abstract", "KV cache"),
            Reason("similar", "A paper", "title", "cache"),
        ),
        1.0,
    )
    assert paper_actions(match) == [
        ("more like this", "like"),
        ("less like this", "dislike"),
        ("mute this author", "mute-author:Ada Lovelace"),
        ("mute this term", "mute-term:KV cache"),
    ]
    suggestion = Match(paper, (Reason("similar", "A paper", "title", "cache"),), 1.0)
    assert [a for _, a in paper_actions(suggestion)] == ["like", "dislike"]


def test_the_links_still_fit_under_the_clip_size() -> None:
    from digest.feedback import email_linker

    profile = Profile("me", keywords=("cache",), max_items=500)
    papers = [
        Paper(
            key=f"arxiv:2401.{i:05d}",
            arxiv_id=f"2401.{i:05d}",
            title=f"Cache paper number {i} with a title of ordinary length for a paper",
            authors=tuple(f"Author {j} Name" for j in range(6)),
            abstract="We study the cache. " * 30,
        )
        for i in range(300)
    ]
    matches = match_profiles(papers, [profile])["me"]
    linker = email_linker("https://lab.example.org", "s" * 32, "me", Clock())
    digest, rendered = fit_digest(profile, matches, FIXED_NOW, feedback=linker)
    assert len(rendered.html.encode()) <= CLIP_BYTES
    assert digest.more > 0 and rendered.html.count("more like this</a>") == len(digest.papers)


@pytest.mark.parametrize(
    ("authors", "kind", "kept"),
    [
        (("Ada Lovelace",), "keyword", False),
        (("A. Lovelace", "Bo Li"), "keyword", False),
        (("ada lovelace",), "keyword", False),
        (("Ada Lovelace", "Rishabh Tiwari"), "keyword", True),
        (("Ada Lovelace",), "author", True),
        (("Ada Lovelace",), "similar", False),
        (("Bo Li",), "keyword", True),
        (("Ada Byron",), "keyword", True),
    ],
    ids=[
        "muted",
        "initial-and-coauthor",
        "case",
        "followed-coauthor",
        "author-reason",
        "suggestion",
        "someone-else",
        "other-given-name",
    ],
)
def test_muted_authors_are_dropped_unless_a_followed_author_wrote_it(
    authors: tuple[str, ...], kind: ReasonKind, kept: bool
) -> None:
    profile = Profile(
        "me", authors=(FollowedAuthor("Rishabh Tiwari"),), mute_authors=("Ada Lovelace",)
    )
    reason = Reason(kind, "x", "title", "x")
    match = Match(Paper(key="k", title="t", authors=authors), (reason,), 1.0)
    assert drop_muted(profile, [match]) == ([match] if kept else [])


def test_a_muted_author_leaves_the_next_digest(tmp_path: Path) -> None:
    config = _config(tmp_path)
    before = _next_email(config)[1]
    assert "A Benchmark of Forgetting" in before
    config.write_text(
        config.read_text().replace(
            "first_run_days = 1", 'first_run_days = 1\nmute_authors = ["Zoe Park"]'
        )
    )
    after = _next_email(config)[1]
    assert "A Benchmark of Forgetting" not in after and "Speculative Decoding" in after


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ({"public_url": "ftp://lab.example.org"}, "not a web address"),
        ({"public_url": "lab.example.org"}, "not a web address"),
        ({"public_url": "https://lab.example.org/\r\nX: y"}, "line breaks"),
        ({"public_url": "https://lab.example.org/?a=1"}, "no query"),
        ({"public_url": "https://" + "a" * 600 + ".org"}, "at most 500"),
        ({"link_days": 0}, "greater than or equal to 1"),
        ({"link_days": 9999}, "less than or equal to 365"),
        ({"secret_file": "/nonexistent/secret"}, None),
    ],
    ids=["ftp", "no-scheme", "crlf", "query", "too-long", "days-0", "days-huge", "secret-file"],
)
def test_server_settings_are_bounded(
    tmp_path: Path, server: dict[str, object], problem: str | None
) -> None:
    if problem is None:
        settings = settings_from_dict({"server": server}, tmp_path / "c.toml")
        with pytest.raises(ConfigError, match=r"server\.secret_file: cannot read"):
            settings.server.configured_secret()
        return
    with pytest.raises(ConfigError, match=re.escape(problem)) as raised:
        settings_from_dict({"server": server}, tmp_path / "c.toml")
    assert "\n" not in str(raised.value) and "server." in str(raised.value)


def test_the_secret_comes_from_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.feedback import secret_path, signing_secret

    monkeypatch.setenv("DIGEST_SERVER__SECRET", "from-the-environment-1234")
    settings = settings_from_dict({}, tmp_path / "c.toml")
    assert signing_secret(settings, tmp_path / "d.sqlite") == "from-the-environment-1234"
    assert not secret_path(tmp_path / "d.sqlite").exists()
    assert "from-the-environment" not in repr(settings)


# --- the command line -----------------------------------------------------------------------------


def digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def fetched(tmp_path: Path) -> Path:
    config = _config(tmp_path)
    assert digest(config, "fetch").returncode == 0
    return config


def _verdicts(config: Path) -> list[tuple[str, str]]:
    store = Store.open(config.parent / "d.sqlite", read_only=True)
    try:
        return [(f.paper_key, f.action) for f in store.feedback("me")]
    finally:
        store.close()


def test_digest_feedback_likes_dislikes_and_undoes(fetched: Path) -> None:
    liked = digest(fetched, "feedback", "me", "2401.01234v2", "like")
    assert liked.returncode == 0, liked.stderr
    assert "arxiv:2401.01234" in liked.stdout and "Recorded" in liked.stdout
    assert _verdicts(fetched) == [("arxiv:2401.01234", "like")]
    again = digest(fetched, "feedback", "me", "arxiv:2401.01234", "like")
    assert "Already recorded" in again.stdout
    disliked = digest(fetched, "feedback", "me", "https://arxiv.org/abs/2401.01234", "dislike")
    assert disliked.returncode == 0 and _verdicts(fetched) == [("arxiv:2401.01234", "dislike")]
    undone = digest(fetched, "feedback", "me", "2401.01234", "--undo")
    assert undone.returncode == 0 and "undone" in undone.stdout and _verdicts(fetched) == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nobody", "2401.01234", "like"), "no profile named 'nobody'"),
        (("me", "2999.99999", "like"), "no stored paper known as '2999.99999'"),
        (("me", "2401.01234"), "give like or dislike, or --undo"),
        (("me", "2401.01234", "like", "--undo"), "give like or dislike, or --undo"),
    ],
    ids=["unknown-profile", "unknown-paper", "no-action", "both"],
)
def test_digest_feedback_refuses_in_one_line(
    fetched: Path, args: tuple[str, ...], said: str
) -> None:
    result = digest(fetched, "feedback", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "Traceback" not in result.stderr


def test_digest_feedback_without_a_database_creates_none(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = digest(config, "feedback", "me", "2401.01234", "like")
    assert result.returncode == 4 and len(result.stderr.strip().splitlines()) == 1
    assert "digest fetch" in result.stderr and not (tmp_path / "d.sqlite").exists()


def test_digest_profile_mute_and_unmute_keep_the_comments(fetched: Path) -> None:
    muted = digest(fetched, "profile", "mute", "me", "Zoe Park")
    assert muted.returncode == 0, muted.stderr
    text = fetched.read_text()
    assert 'mute_authors = ["Zoe Park"]' in text
    for comment in ("# the lab's config", "# mine", "# topics", "# followed"):
        assert comment in text
    twice = digest(fetched, "profile", "mute", "me", "Z. Park")
    assert twice.returncode == 2 and "already mutes 'Zoe Park'" in twice.stderr
    assert "Zoe Park" in digest(fetched, "profile", "show", "me").stdout
    unmuted = digest(fetched, "profile", "unmute", "me", "Zoe Park")
    assert unmuted.returncode == 0 and "Zoe Park" not in fetched.read_text()
    assert "# followed" in fetched.read_text()


@pytest.mark.parametrize(
    "action",
    ["like", "dislike", "mute-author:Ana Gómez", "mute-term:KV cache", "mute-term:a:b"],
    ids=["like", "dislike", "mute-author", "mute-term", "colon-in-term"],
)
def test_a_token_round_trips_its_action_for_its_profile_only(action: str) -> None:
    from digest.feedback import Ask, LinkError, sign, verify

    clock = Clock()
    token = sign("s" * 32, "feedback", Ask("me", "arxiv:2401.01234", action), clock=clock)
    assert verify("s" * 32, "feedback", token, "me", max_age_days=1, clock=clock) == Ask(
        "me", "arxiv:2401.01234", action
    )
    with pytest.raises(LinkError) as refused:
        verify("s" * 32, "feedback", token, "you", max_age_days=1, clock=clock)
    assert refused.value.status == 403


def test_the_demo_with_a_public_url_keeps_most_of_its_papers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo digest with feedback links, measured as the demo's size test measures it (the
    HTML part as sent, 7-bit with its headers): one short link a paper costs about 110 bytes,
    so it holds 95 papers where it holds all 117 without links (issue 23: at least 90)."""
    import mailbox
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    from digest.app import run_demo

    monkeypatch.setenv("DIGEST_SERVER__PUBLIC_URL", "https://lab.example.org/digest")
    monkeypatch.setenv("DIGEST_SERVER__SECRET", "s" * 32)
    result = run_demo(tmp_path / "out", clock=lambda: FIXED_NOW)
    [report] = result.sent
    assert report.rendered is not None
    [message] = list(mailbox.Maildir(result.maildir, create=False))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    assert isinstance(part, EmailMessage)
    assert len(part.as_bytes(policy=policy.SMTP)) <= CLIP_BYTES
    links = re.findall(r"https://lab\.example\.org/digest/me/f/([\w-]+)", report.rendered.text)
    assert report.papers == len(report.rendered.paper_keys) == len(set(links)) >= 90
    assert max(map(len, links)) <= 60
