"""`digest demo`: the whole pipeline offline on the seeds, in a fresh directory."""

from __future__ import annotations

import mailbox
import re
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from digest.store import Store

FOLLOWED = ("Rishabh Tiwari", "Mehrdad Farajtabar", "Mirzadeh")


def run_demo_command(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`digest demo` in `cwd`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "digest", "demo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_prints_the_digest_path_and_delivers_through_the_outbox(tmp_path: Path) -> None:
    result = run_demo_command(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Loaded 298 listings from the seeds: 287 distinct papers." in result.stdout
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("Open the digest: ")]
    html_path = Path(line.removeprefix("Open the digest: "))
    assert html_path == (tmp_path / "out" / "demo" / "me.html").resolve()
    html = html_path.read_text(encoding="utf-8")

    # Followed authors' papers first, each with its reasons; then the topical ones.
    followed_at = html.index("From people you follow")
    topics_at = html.index("On your topics")
    assert followed_at < topics_at
    followed_part, topical_part = html[followed_at:topics_at], html[topics_at:]
    assert followed_part.count("Because you follow") >= 30
    assert "Because you follow" not in topical_part
    assert topical_part.count("Matches “") >= 5
    assert re.search(r"<mark[^>]*>KV Cache</mark>", html)
    # Every candidate fits (abstracts cut short on a day this full): none waits.
    assert "more papers match your profile" not in html

    # Delivered into the Maildir through the outbox, and recorded as delivered.
    [message] = list(mailbox.Maildir(tmp_path / "out" / "maildir", create=False))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    store = Store.open(tmp_path / "out" / "demo.sqlite")
    [entry] = store.outbox("me")
    assert entry.status == "sent" and parsed["Message-ID"] == entry.message_id
    # 50 papers in full, then a compact list while the HTML part stays under 100 KB.
    assert len(store.delivered_keys("me")) == entry.paper_count > 50
    assert store.integrity_ok()
    store.close()

    # Run again: a fresh database each time, the same digest.
    again = run_demo_command(tmp_path)
    assert again.returncode == 0
    assert f"Profile me: {entry.paper_count} papers" in again.stdout


def test_demo_digest_text_part_lists_followed_authors_first(tmp_path: Path) -> None:
    from digest.app import run_demo

    result = run_demo(tmp_path / "out")
    text = (tmp_path / "out" / "demo" / "me.txt").read_text(encoding="utf-8")
    assert result.html_paths == (tmp_path / "out" / "demo" / "me.html",)
    followed, topical = text.split("ON YOUR TOPICS")
    # each entry: its title and author lines (both may wrap), before its date and reasons
    entries = [b.split("   Why:")[0] for b in re.split(r"^\d+\. ", followed, flags=re.M)[1:]]
    assert entries and all(any(name in head for name in FOLLOWED) for head in entries)
    assert "Why: matches" in topical and "because you follow" not in topical


def test_demo_digest_reads_cleanly(tmp_path: Path) -> None:
    """The demo digest has no raw TeX, no doubled reason, no "new version" badge on a paper
    first seen, and names its sources as a reader knows them."""
    from datetime import UTC, datetime

    from digest.app import run_demo

    result = run_demo(tmp_path / "out", clock=lambda: datetime(2026, 11, 22, 6, tzinfo=UTC))
    [report] = result.sent
    assert report.rendered is not None
    html, text = report.rendered.html, report.rendered.text
    body = html.split("<body", 1)[1]
    for part in (body, text):
        assert not re.search(r"\$[^$\n]*\\", part), re.search(r".{40}\$[^$\n]*\\.{20}", part)
        assert "\\texttt" not in part and "$\\" not in part
        assert not re.search(r"\((title|abstract)( and \w+)* and \1\b", part)
        assert "new version" not in part  # every demo paper is stored once, at one version
    assert "SPECS: Faster Test-Time Scaling through Speculative Drafts" in text
    assert "Sources: seeds" in text


def test_demo_suggests_papers_like_its_library_in_email_and_preview(tmp_path: Path) -> None:
    """The example profile's library (seeds/library.bib) brings a "Suggested for you" section
    after the rule matches, with reasons, in both parts; the suggestions are delivered like the
    others, so the preview of the next digest suggests other papers."""
    from datetime import UTC, datetime

    from digest.app import data_path, run_demo
    from digest.preview import open_preview_app, render_previews
    from digest.settings import load_settings

    result = run_demo(tmp_path / "out", clock=lambda: datetime(2026, 11, 22, 6, tzinfo=UTC))
    [report] = result.sent
    assert report.rendered is not None
    html, text = report.rendered.html, report.rendered.text
    section = html[html.index("Suggested for you · 5") :]
    assert html.index("On your topics") < html.index("Suggested for you")
    assert section.count("Similar to “") == 5 and "weighs most: " in section
    assert "Because you follow" not in section and "Matches “" not in section
    assert "SUGGESTED FOR YOU (5)" in text and text.count("Why: similar to") == 5
    assert len(html.encode()) <= 100_000
    store = Store.open(tmp_path / "out" / "demo.sqlite")
    delivered = store.delivered_keys("me")
    store.close()
    assert len(delivered) == len(report.rendered.paper_keys)

    settings = load_settings(data_path("config.example.toml"))
    app = open_preview_app(settings, tmp_path / "out" / "demo.sqlite")
    try:
        [(path, _count)] = render_previews(app, tmp_path / "preview")
    finally:
        app.close()
    preview = path.read_text(encoding="utf-8")
    assert "Suggested for you" in preview and "Similar to “" in preview
    shown = re.findall(
        r'<a href="([^"]+)"[^>]*>([^<]+)</a></div>', preview.split("Suggested for you")[1]
    )
    assert shown and not any(title in section for _, title in shown), "not suggested again"
