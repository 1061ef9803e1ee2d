"""Rendering a digest: capping, subject line, highlighting, abstract trimming, and the HTML and
plain-text parts of the email. Matches are built by the real matcher, so spans are real."""

from __future__ import annotations

import html as html_lib
import mailbox
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.match import match_profiles
from digest.models import (
    Digest,
    FollowedAuthor,
    Match,
    Paper,
    Profile,
    Reason,
    RenderedDigest,
    SourceStatus,
)
from digest.render import (
    CLIP_BYTES,
    SHORT_ABSTRACT_CHARS,
    badges,
    build_digest,
    built_part_bytes,
    counts_summary,
    fit_digest,
    highlight,
    html_part_bytes,
    listing_links,
    long_date,
    paper_link,
    paper_links,
    reason_summary,
    render_digest,
    seven_bit_html,
    source_names,
    spans_of,
    subject_for,
    trim_abstract,
)

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # a Sunday
MARK = re.compile(r"<mark[^>]*>(.*?)</mark>", re.S)
TAG = re.compile(r"</?[A-Za-z][^>]*>")

PROFILE = Profile(
    "me",
    keywords=("KV cache", "quantiz*"),
    authors=(FollowedAuthor("Rishabh Tiwari"), FollowedAuthor("Lauren A. Hannah")),
    max_items=10,
)

LONG_ABSTRACT = (
    "We study how a KV cache grows with context length. "
    + "Each additional sentence adds detail about memory and throughput. " * 12
    + "Finally we quantize everything."
)

PAPERS = [
    Paper(
        key="arxiv:2401.00001",
        title="Topical paper about the KV-cache",
        authors=("Ann Example", "Bob Example"),
        abstract="A short abstract on quantization of the KV cache.",
        published=date(2026, 11, 20),
        arxiv_id="2401.00001",
        extra=(("upvotes", 7),),
    ),
    Paper(
        key="arxiv:2401.00002",
        title="Followed author's <script>alert('x')</script> paper",
        authors=("Carol Example", "R. Tiwari"),
        abstract=LONG_ABSTRACT,
        published=date(2026, 11, 19),
        arxiv_id="2401.00002",
    ),
    Paper(
        key="arxiv:2401.00003",
        title="Another followed paper",
        authors=("Hannah, Lauren",),
        abstract="Nothing about the topics.",
        published=date(2026, 11, 18),
    ),
]


def ranked(profile: Profile = PROFILE, papers: list[Paper] = PAPERS) -> tuple[Match, ...]:
    return match_profiles(papers, [profile])[profile.name]


def digest_of(profile: Profile = PROFILE, papers: list[Paper] = PAPERS) -> Digest:
    return build_digest(profile, ranked(profile, papers), NOW)


def visible_text(html: str) -> str:
    """The text a reader sees (no tags, no style sheet), whitespace collapsed."""

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.skip += tag in ("style", "head")

        def handle_endtag(self, tag: str) -> None:
            self.skip -= tag in ("style", "head")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Collect()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def block(html: str, css_class: str, containing: str) -> str:
    """The inner HTML of the one `<div class=css_class>` whose text contains `containing`."""
    found = [
        inner
        for inner in re.findall(rf'<div class="{css_class}"[^>]*>(.*?)</div>', html, re.S)
        if containing in TAG.sub("", inner)
    ]
    assert len(found) == 1, found
    return str(found[0])


# --- build_digest and subject -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_items", "kept", "compact"), [(10, 3, 0), (3, 3, 0), (2, 2, 1), (1, 1, 2)]
)
def test_build_digest_caps_at_max_items(max_items: int, kept: int, compact: int) -> None:
    profile = replace(PROFILE, max_items=max_items)
    matches = ranked(profile)
    digest = build_digest(profile, matches, NOW)
    assert digest.matches == matches[:kept]
    assert digest.overflow == matches[kept:] and len(digest.overflow) == compact
    assert digest.papers == matches and digest.more == 0
    assert digest.generated_at == NOW


def test_ranked_digest_puts_followed_authors_first() -> None:
    digest = digest_of()
    assert [m.followed for m in digest.matches] == [True, True, False]
    assert (digest.followed_count, digest.topic_count) == (2, 1)


@pytest.mark.parametrize(
    ("papers", "subject"),
    [
        (PAPERS, "Research digest, Sun 22 Nov: 2 from people you follow · 1 on your topics"),
        (PAPERS[:1], "Research digest, Sun 22 Nov: 1 on your topics"),
        (PAPERS[1:], "Research digest, Sun 22 Nov: 2 from people you follow"),
        ([], "Research digest, Sun 22 Nov: nothing new"),
        (
            [replace(PAPERS[0], title="Unrelated", abstract="")],
            "Research digest, Sun 22 Nov: nothing new",
        ),
    ],
)
def test_subject(papers: list[Paper], subject: str) -> None:
    assert subject_for(digest_of(papers=papers)) == subject


# --- helpers: spans, highlight, trimming, links, reasons ----------------------------------------


def reason(field: str, *spans: tuple[int, int]) -> Reason:
    return Reason("keyword", "t", field, "x", tuple(spans))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reasons", "field", "expected"),
    [
        ([], "title", []),
        ([reason("title", (0, 2))], "title", [(0, 2)]),
        ([reason("title", (0, 2))], "abstract", []),
        ([reason("title", (5, 8)), reason("title", (0, 2))], "title", [(0, 2), (5, 8)]),
        ([reason("title", (0, 5)), reason("title", (3, 8))], "title", [(0, 8)]),
        ([reason("title", (0, 5)), reason("title", (5, 8))], "title", [(0, 8)]),
        ([reason("title", (0, 9), (2, 4))], "title", [(0, 9)]),
        ([reason("abstract", (1, 2)), reason("title", (3, 4))], "abstract", [(1, 2)]),
    ],
)
def test_spans_of_sorts_and_merges(
    reasons: list[Reason], field: str, expected: list[tuple[int, int]]
) -> None:
    assert spans_of(reasons, field) == expected


@pytest.mark.parametrize(
    ("text", "spans", "limit", "expected"),
    [
        ("plain", [], None, "plain"),
        ("a KV cache", [(2, 10)], None, "a <mark>KV cache</mark>"),
        ("KV and KV", [(0, 2), (7, 9)], None, "<mark>KV</mark> and <mark>KV</mark>"),
        ("<b> & KV", [(6, 8)], None, "&lt;b&gt; &amp; <mark>KV</mark>"),
        ("a <script> tag", [(2, 10)], None, "a <mark>&lt;script&gt;</mark> tag"),
        ("a KV cache here", [(2, 10)], 5, "a <mark>KV </mark>"),
        ("a KV cache here", [(2, 10)], 2, "a "),
        ("a KV cache here", [(2, 10)], 12, "a <mark>KV cache</mark> h"),
    ],
)
def test_highlight_escapes_and_marks(
    text: str, spans: list[tuple[int, int]], limit: int | None, expected: str
) -> None:
    assert str(highlight(text, spans, limit)) == expected


SENTENCES = "First sentence is here. Second one ends right at the limit. Third sentence goes on."


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short.", 600, "Short."),
        ("x" * 10, 10, "x" * 10),
        (SENTENCES, len(SENTENCES), SENTENCES),
        (SENTENCES, 70, "First sentence is here. Second one ends right at the limit."),
        (
            SENTENCES,
            SENTENCES.index("limit.") + 6,
            "First sentence is here. Second one ends right at the limit.",
        ),
        (SENTENCES, 40, "First sentence is here."),
        # a sentence end too early (before a third of the limit) is not used; cut at a word
        ("Hi. " + "word " * 40, 60, "Hi. " + " ".join(["word"] * 11)),
        # no sentence end: the last whole word
        ("alpha beta gamma delta", 13, "alpha beta"),
        ("alpha beta gamma delta", 11, "alpha beta"),
        # `e.g. the` is not a sentence end (lower case follows)
        ("One e.g. the thing. Two words here and on and on", 30, "One e.g. the thing."),
    ],
)
def test_trim_abstract(text: str, limit: int, expected: str) -> None:
    assert text[: trim_abstract(text, limit)] == expected


prose_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
prose = st.lists(
    st.tuples(prose_words, st.sampled_from(["", "", "", ".", ",", "!", "?"]), st.booleans()),
    min_size=1,
    max_size=80,
).map(lambda ws: " ".join((w.capitalize() if cap else w) + p for w, p, cap in ws))


@given(prose, st.integers(min_value=30, max_value=400))
def test_trim_abstract_never_cuts_inside_a_word(text: str, limit: int) -> None:
    cut = trim_abstract(text, limit)
    assert cut <= limit
    if len(text) <= limit:
        assert cut == len(text)
    else:
        assert 0 < cut < len(text)
        assert text[cut].isspace()
        assert text[cut - 1].isalpha() or text[cut - 1] in ".,!?"


@pytest.mark.parametrize(
    ("changes", "link"),
    [
        ({"url": "https://example.org/p"}, "https://example.org/p"),
        ({"arxiv_id": "2401.01234"}, "https://arxiv.org/abs/2401.01234"),
        ({"doi": "10.1000/xyz"}, "https://doi.org/10.1000/xyz"),
        ({}, "https://arxiv.org/search/?searchtype=title&query=A+%26+B"),
    ],
)
def test_paper_link(changes: dict[str, str], link: str) -> None:
    assert paper_link(replace(Paper(key="k", title="A & B"), **changes)) == link  # type: ignore[arg-type]


def test_reason_summary_names_authors_and_terms_with_fields() -> None:
    by_key = {m.paper.key: m for m in ranked()}
    assert reason_summary(by_key["arxiv:2401.00002"]) == (
        "because you follow Rishabh Tiwari; matches “KV cache” (abstract), “quantiz*” (abstract)"
    )
    assert reason_summary(by_key["arxiv:2401.00001"]) == (
        "matches “KV cache” (title and abstract), “quantiz*” (abstract)"
    )
    assert reason_summary(by_key["arxiv:2401.00003"]) == "because you follow Lauren A. Hannah"


# --- the rendered email -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> tuple[Digest, str, str, str]:
    digest = digest_of()
    out = render_digest(digest)
    assert out.paper_keys == tuple(m.paper.key for m in digest.matches)
    return digest, out.subject, out.html, out.text


def test_html_is_one_document_with_lang_title_and_inlined_css(
    rendered: tuple[Digest, str, str, str],
) -> None:
    _, subject, html, _ = rendered
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert html.count("<html") == 1 and html.rstrip().endswith("</html>")
    assert re.search(r"<html[^>]*\blang=\"en\"", html)
    assert f"<title>{subject}</title>" in html
    assert re.search(r"<body[^>]*\bstyle=\"[^\"]+\"", html)
    assert re.search(r"<div class=\"t\"[^>]*\bstyle=\"[^\"]+\"", html)
    assert re.search(r"<mark[^>]*\bstyle=\"[^\"]*background", html)
    # media queries (dark mode, narrow screens) stay in the <style> block
    assert "@media (prefers-color-scheme: dark)" in html


def test_followed_papers_come_first_in_both_parts(rendered: tuple[Digest, str, str, str]) -> None:
    _, _, html, text = rendered
    for part in (visible_text(html), text):
        followed = part.index("Another followed paper")
        followed_too = part.index("Followed author")
        topical = part.index("Topical paper")
        assert max(followed, followed_too) < topical
        assert part.lower().index("from people you follow") < part.lower().index("on your topics")


def test_reasons_are_shown_in_both_parts(rendered: tuple[Digest, str, str, str]) -> None:
    _, _, html, text = rendered
    seen = visible_text(html)
    assert "Because you follow Rishabh Tiwari; matches “KV cache” (abstract)" in seen
    assert "Because you follow Lauren A. Hannah" in seen
    assert "Matches “KV cache” (title and abstract), “quantiz*” (abstract)" in seen
    assert "Why: because you follow Rishabh Tiwari; matches “KV cache” (abstract)" in text
    assert "Why: matches “KV cache” (title and abstract), “quantiz*” (abstract)" in text
    # followed authors are picked out in the author line, as the paper spells them
    assert re.search(r"<b>R\. Tiwari</b>", html)
    assert re.search(r"<b>Hannah, Lauren</b>", html)
    assert "*R. Tiwari*" in text and "*Hannah, Lauren*" in text


def test_each_entry_is_worked_out_once_for_both_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTML and the plain text lay out one `PaperView` per paper: its reasons line and its
    feedback links are worked out once a render, not once a part."""
    import digest.render as render

    digest = digest_of()
    summarised: list[str] = []
    linked: list[str] = []
    real = render.reason_summary

    def summary(match: Match) -> str:
        summarised.append(match.paper.key)
        return real(match)

    def feedback(match: Match) -> list[tuple[str, str]]:
        linked.append(match.paper.key)
        return [("more like this", f"https://digest.example/f/{len(linked)}")]

    monkeypatch.setattr(render, "reason_summary", summary)
    rendered = render_digest(digest, feedback=feedback)
    shown = [match.paper.key for match in digest.matches]
    assert sorted(summarised) == sorted(linked) == sorted(shown) and len(shown) >= 3
    # Both parts show the same links: the one worked out for the paper.
    for number in range(1, len(shown) + 1):
        url = f"https://digest.example/f/{number}"
        assert url in rendered.html and url in rendered.text


def test_matched_text_is_marked_in_title_and_abstract(
    rendered: tuple[Digest, str, str, str],
) -> None:
    _, _, html, _ = rendered
    assert MARK.findall(block(html, "t", "Topical paper")) == ["KV-cache"]
    assert MARK.findall(block(html, "t", "Another followed")) == []
    abstract = block(html, "x", "A short abstract")
    assert MARK.findall(abstract) == ["quantization", "KV cache"]


def test_html_in_titles_is_escaped(rendered: tuple[Digest, str, str, str]) -> None:
    _, _, html, text = rendered
    assert "<script" not in html
    assert "&lt;script&gt;alert(" in html
    # the plain-text part shows the title as written
    assert "<script>alert('x')</script>" in text


def test_long_abstracts_are_trimmed_at_a_sentence_with_an_ellipsis(
    rendered: tuple[Digest, str, str, str],
) -> None:
    _, _, html, text = rendered
    abstract = block(html, "x", "We study")
    shown = TAG.sub("", abstract)
    assert shown.endswith("memory and throughput. …")
    assert len(shown) <= 600 + len(" …")
    assert "Finally" not in shown
    assert MARK.findall(abstract) == ["KV cache"]
    assert "Finally" not in text
    flat = " ".join(text.split())
    assert "memory and throughput. …" in flat
    # short abstracts get no ellipsis
    assert "A short abstract on quantization of the KV cache. …" not in flat
    assert "A short abstract on quantization of the KV cache." in flat


def test_text_part_has_no_html(rendered: tuple[Digest, str, str, str]) -> None:
    digest, subject, _, _ = rendered
    safe = [
        replace(m, paper=replace(m.paper, title=m.paper.title.split("<")[0]))
        for m in digest.matches
    ]
    text = render_digest(replace(digest, matches=tuple(safe))).text
    assert not TAG.search(text)
    assert "&lt;" not in text and "&amp;" not in text and "&#" not in text
    assert text.startswith(subject + "\n" + "=" * len(subject))


@pytest.mark.parametrize(
    ("more", "line"), [(1, "1 more paper matches"), (5, "5 more papers match")]
)
def test_more_line_when_capped(more: int, line: str) -> None:
    profile = replace(PROFILE, max_items=1)
    matches = ranked(profile, [replace(PAPERS[0], key=f"k{i}") for i in range(more + 1)])
    digest = build_digest(profile, matches[:1], NOW, more=more)
    assert (len(digest.matches), digest.more) == (1, more)
    out = render_digest(digest, more_url="https://example.org/all")
    wait = "waits" if more == 1 else "wait"
    tail = f"your profile and {wait} for your next digest"
    assert f"{line} {tail}: see them all." in visible_text(out.html)
    assert 'href="https://example.org/all"' in out.html
    assert f"{line} {tail}: https://example.org/all." in out.text
    assert out.paper_keys == (digest.matches[0].paper.key,)


def test_no_more_line_when_not_capped(rendered: tuple[Digest, str, str, str]) -> None:
    _, _, html, text = rendered
    assert "more paper" not in html and "more paper" not in text


def test_empty_digest_says_nothing_new() -> None:
    out = render_digest(build_digest(PROFILE, (), NOW))
    assert out.subject == "Research digest, Sun 22 Nov: nothing new"
    assert "Nothing new matched your profile today." in visible_text(out.html)
    assert "Nothing new matched your profile today." in out.text
    assert "<mark" not in out.html
    assert out.paper_keys == ()


def test_source_problems_are_reported() -> None:
    problem = SourceStatus("arxiv", last_error="HTTP 503", failing_since=NOW)
    out = render_digest(build_digest(PROFILE, ranked(), NOW, [problem]))
    assert "arXiv could not be read since 2026-11-22 06:00 UTC: HTTP 503" in visible_text(out.html)
    assert "! arXiv could not be read since 2026-11-22 06:00 UTC: HTTP 503" in out.text


# --- links, badges, header and footer -----------------------------------------------------------

RICH = Paper(
    key="arxiv:2401.00009",
    title="A paper every source knows",
    authors=("Ann Example",),
    abstract="About the KV cache.",
    categories=("cs.LG", "cs.CL"),
    published=date(2026, 11, 21),
    url="https://huggingface.co/papers/2401.00009",
    arxiv_id="2401.00009",
    version=3,
    extra=(
        ("code_url", "https://github.com/ann/kv"),
        ("github_stars", 120),
        ("previous_version", 2),
        ("project_page", "https://ann.example.org/kv"),
        ("upvotes", 42),
    ),
    sources=("hf_daily", "arxiv"),
)


@pytest.mark.parametrize(
    ("paper", "links"),
    [
        (
            RICH,
            [
                ("Abstract", "https://arxiv.org/abs/2401.00009"),
                ("PDF", "https://arxiv.org/pdf/2401.00009"),
                ("Code", "https://github.com/ann/kv"),
                ("Project page", "https://ann.example.org/kv"),
            ],
        ),
        (
            Paper(
                key="k",
                title="T",
                url="https://example.org/p",
                extra=(("pdf_url", "https://example.org/p.pdf"),),
            ),
            [("Abstract", "https://example.org/p"), ("PDF", "https://example.org/p.pdf")],
        ),
        (
            Paper(key="k", title="T", doi="10.1000/xyz"),
            [("Abstract", "https://doi.org/10.1000/xyz")],
        ),
        # known only by its title: the title links to an arXiv search, no `Abstract` link
        (Paper(key="k", title="T", extra=(("code", True),)), []),
    ],
)
def test_paper_links_are_the_known_ones(paper: Paper, links: list[tuple[str, str]]) -> None:
    assert paper_links(paper) == links


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"extra": (("upvotes", 7),)}, ["▲ 7"]),
        ({"extra": (("code", True),)}, ["code"]),
        ({"extra": (("code_url", "https://g/x"), ("github_stars", 5))}, ["code ★ 5"]),
        # a paper first seen at v2 is new to the reader: no "new version" badge
        ({"version": 2}, []),
        ({"version": 2, "extra": (("previous_version", 1),)}, ["new version v2"]),
        ({"version": 1, "extra": (("announce_type", "new"),)}, []),
        ({"version": 2, "extra": (("announce_type", "replace"),)}, []),
        (
            {"version": 3, "extra": (("upvotes", 1), ("code", True), ("previous_version", 2))},
            ["▲ 1", "code", "new version v3"],
        ),
    ],
)
def test_badges(changes: dict[str, object], expected: list[str]) -> None:
    assert badges(replace(Paper(key="k", title="T"), **changes)) == expected  # type: ignore[arg-type]


def test_counts_sources_and_dates() -> None:
    digest = digest_of()
    assert counts_summary(digest) == "2 from people you follow · 1 on your topics"
    assert counts_summary(build_digest(PROFILE, (), NOW)) == "nothing new"
    assert source_names(digest_of(papers=[*PAPERS, RICH])) == [
        "Hugging Face Daily Papers",
        "arXiv",
    ]
    assert long_date(datetime(2026, 11, 2, 6, 0, tzinfo=UTC)) == "Monday 2 November 2026"
    assert listing_links(replace(digest, profile=replace(PROFILE, categories=("cs.LG",)))) == [
        ("cs.LG", "https://arxiv.org/list/cs.LG/new")
    ]


@pytest.fixture(scope="module")
def rich() -> RenderedDigest:
    """A digest with every paper signal, a source problem, and more papers than it shows."""
    profile = replace(PROFILE, max_items=4, categories=("cs.LG", "cs.CL"))
    problem = SourceStatus("openalex", last_error="HTTP 503", failing_since=NOW)
    weak = Paper(key="arxiv:2401.00010", title="Ranked last", abstract="On quantization.")
    matches = ranked(profile, [*PAPERS, RICH, weak])
    return render_digest(build_digest(profile, matches[:4], NOW, [problem], more=1))


def test_header_has_date_counts_and_sources(rich: RenderedDigest) -> None:
    header = visible_text(rich.html.split('class="s"')[0])
    assert "Your research digest Sunday 22 November 2026 · profile “me”" in header
    assert "2 from people you follow · 2 on your topics · 1 more next time" in header
    assert "Sources: Hugging Face Daily Papers, arXiv · unreachable: OpenAlex" in header
    assert 'Sunday 22 November 2026 · profile "me"' in rich.text
    assert "2 from people you follow · 2 on your topics · 1 more next time" in rich.text
    assert "Sources: Hugging Face Daily Papers, arXiv\nUnreachable: OpenAlex" in rich.text


@pytest.mark.parametrize(
    ("paper", "names"),
    [
        pytest.param(
            Paper(key="a", title="T", source="arxiv-api", sources=("arxiv-api", "arxiv")),
            ["arXiv"],
            id="arxiv-api-and-listing",
        ),
        pytest.param(
            Paper(key="a", title="T", source="nature", extra=(("feed_title", "Nature: new"),)),
            ["Nature: new"],
            id="feed-by-its-title",
        ),
        pytest.param(Paper(key="a", title="T", source="lab-blog"), ["lab-blog"], id="feed-name"),
        pytest.param(
            Paper(key="a", title="T", source="seed:hf-papers", sources=("seeds",)),
            ["seeds"],
            id="files-by-configured-name",
        ),
    ],
)
def test_sources_are_named_as_a_reader_knows_them(paper: Paper, names: list[str]) -> None:
    match = Match(paper, (Reason("keyword", "t", "title", "T", ((0, 1),)),), 1.0)
    assert source_names(build_digest(PROFILE, (match,), NOW)) == names


def test_preheader_summarises_and_is_hidden(rich: RenderedDigest) -> None:
    found = re.search(r"<body[^>]*>\s*<div style=\"([^\"]*)\">([^<]*)</div>", rich.html)
    assert found, "the preheader is the body's first element"
    assert "display:none" in found[1] and "max-height:0" in found[1]
    assert found[2] == (
        "2 from people you follow · 2 on your topics — "
        "Followed author's &lt;script&gt;alert('x')&lt;/script&gt; paper"
    )


def test_paper_signals_and_links_in_both_parts(rich: RenderedDigest) -> None:
    seen = visible_text(rich.html)
    assert "2026-11-21 · cs.LG, cs.CL ▲ 42 code ★ 120 new version v3" in seen
    assert "Abstract · PDF · Code · Project page" in seen
    for url in ("https://arxiv.org/pdf/2401.00009", "https://ann.example.org/kv"):
        assert f'href="{url}"' in rich.html
        assert url in rich.text
    assert '<a href="https://huggingface.co/papers/2401.00009"' in rich.html  # the title
    assert "2026-11-21 · cs.LG, cs.CL · ▲ 42 · code ★ 120 · new version v3" in rich.text
    assert (
        "   Link: https://huggingface.co/papers/2401.00009\n   Abstract: https://arxiv" in rich.text
    )


def test_more_line_without_a_url_points_at_the_arxiv_listings(rich: RenderedDigest) -> None:
    assert (
        "1 more paper matches your profile and waits for your next digest. Browse today’s"
        " arXiv listings: cs.LG · cs.CL" in visible_text(rich.html)
    )
    assert 'href="https://arxiv.org/list/cs.CL/new"' in rich.html
    assert "Browse today's arXiv listings:\n   https://arxiv.org/list/cs.LG/new\n" in rich.text


def test_footer_says_how_to_change_the_profile(rich: RenderedDigest) -> None:
    footer = visible_text(rich.html.split('class="f"')[1].split(">", 1)[1])
    assert footer.startswith("⚠ OpenAlex could not be read since 2026-11-22 06:00 UTC: HTTP 503")
    assert 'digest profile add-keyword me "term"' in footer
    assert 'digest profile follow me "Name"' in footer
    assert "config.toml" in footer and "digest preview" in footer
    signature = " ".join(rich.text.split("\n-- \n")[1].split())
    assert 'digest profile add-keyword me "term"' in signature
    assert 'digest profile follow me "Name"' in signature and "digest preview" in signature


def test_color_scheme_and_dark_mode(rich: RenderedDigest) -> None:
    assert '<meta name="color-scheme" content="light dark">' in rich.html
    dark = rich.html.split("@media (prefers-color-scheme: dark)")[1].split("</style>")[0]
    assert "background: #161b22 !important" in dark
    assert "mark { background: #854d0e !important" in dark


LONG_PROFILE = replace(
    PROFILE,
    keywords=("long-context", "retrieval augmented generation", "KV cache"),
    max_items=2,
)
LONG_PAPER = Paper(
    key="arxiv:2401.00077",
    title="A very long title about long-context retrieval augmented generation that goes on "
    "and on with a KV cache for ever and ever",
    authors=tuple(f"Firstname{i} Lastname-Longer{i}" for i in range(9)),
    abstract="We study long-context inference with retrieval augmented generation. " * 8,
    arxiv_id="2401.00077",
    url="https://example.org/" + "very-long-path/" * 8,
)


@pytest.fixture(scope="module")
def long_text() -> str:
    papers = [LONG_PAPER, replace(LONG_PAPER, key="k2", arxiv_id="", title=LONG_PAPER.title + "!")]
    papers.append(replace(LONG_PAPER, key="k3", arxiv_id="", title=LONG_PAPER.title + "?"))
    problem = SourceStatus("a-long-feed", last_error="HTTP 503 " * 12, failing_since=NOW)
    digest = build_digest(LONG_PROFILE, ranked(LONG_PROFILE, papers), NOW, [problem], more=2)
    return render_digest(digest).text


def test_text_part_lines_fit_a_terminal(rich: RenderedDigest, long_text: str) -> None:
    """Every line stays within 78 columns, titles and author lines too; only a line that is
    one link (which is never broken) may run longer."""
    for text in (rich.text, long_text):
        for line in text.splitlines():
            if len(line) > 78:
                assert re.fullmatch(r"\s*(\S+: )?https?://\S+", line), line
    assert "   Firstname0 Lastname-Longer0, Firstname1" in long_text


def test_text_part_never_breaks_inside_a_quoted_term(long_text: str) -> None:
    for line in long_text.splitlines():
        assert line.count("“") == line.count("”"), line
    assert "“long-context”" in long_text
    assert "“retrieval augmented generation”" in long_text


# --- the demo digest: size and inlined styles ---------------------------------------------------

GMAIL_CLIP_MARGIN = CLIP_BYTES + 1  # Gmail clips at ~102 KB; every digest stays under 100 KB


@pytest.fixture(scope="module")
def demo_part(tmp_path_factory: pytest.TempPathFactory) -> EmailMessage:
    """The HTML part of the demo digest (seeds, example profile), as mailed."""
    from digest.app import run_demo

    result = run_demo(tmp_path_factory.mktemp("demo") / "out", clock=lambda: NOW)
    [report] = result.sent
    assert report.rendered is not None
    assert report.papers == len(report.rendered.paper_keys) > 50  # 50 in full, then compact
    [message] = list(mailbox.Maildir(result.maildir, create=False))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html = parsed.get_body(("html",))
    assert isinstance(html, EmailMessage)
    return html


@pytest.fixture(scope="module")
def demo_html(demo_part: EmailMessage) -> str:
    """The demo digest's HTML, decoded."""
    return str(demo_part.get_content())


def test_demo_html_part_as_sent_is_under_the_gmail_clipping_limit(demo_part: EmailMessage) -> None:
    # Gmail counts the message as it travels: the quoted-printable body and the part's headers.
    size = len(demo_part.as_bytes(policy=policy.SMTP))
    assert size < GMAIL_CLIP_MARGIN, f"the HTML part is {size} bytes as sent"


def test_html_part_bytes_is_the_size_of_the_part_in_the_message() -> None:
    from digest.deliver import build_message

    out = render_digest(digest_of(papers=[TEX_PAPER]))
    raw = build_message(
        out,
        sender="digest@example.org",
        sender_name="Digest",
        recipients=["me@example.org"],
        message_id="<1@example.org>",
        date=NOW,
        profile="me",
    )
    parsed = message_from_bytes(raw, policy=policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    assert part is not None
    sent = part.as_bytes(policy=policy.SMTP)
    assert sent in raw
    assert html_part_bytes(out.html) == len(sent)


# HTML-ish text: tags, spaces, words, characters beyond ASCII, every kind of line break, and
# long runs (lines the 7-bit part must break, or cannot).
_html_pieces = st.one_of(
    st.sampled_from(["<p>", "</p>", '<a href="x">', " ", "\n", "\r\n", "\r", "\x0b", "\x0c"]),
    st.sampled_from(["é", "“", "😀", "&amp;", "\u2028", "\x85"]),
    st.text(min_size=1, max_size=12),
    st.integers(1, 1200).map(lambda n: "w" * n),
    st.integers(1, 300).map(lambda n: "word " * n),
)


@given(st.lists(_html_pieces, max_size=40).map("".join))
def test_the_counted_html_part_size_is_the_built_part_size(html: str) -> None:
    assert html_part_bytes(html) == built_part_bytes(html)


class Styles(HTMLParser):
    """Every element's tag, class, inline style and whether it holds text directly."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []
        self.open: list[dict[str, str]] = []
        self.style_sheet = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        element = {"tag": tag, "class": values.get("class", ""), "style": values.get("style", "")}
        element.update(text="", src=values.get("src", ""), alt=values.get("alt", "-"))
        self.elements.append(element)
        if tag not in ("meta", "br", "img", "link"):
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()["tag"] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1]["tag"] == "style":
            self.style_sheet += data
        elif self.open:
            self.open[-1]["text"] += data.strip()


def declarations(style: str) -> dict[str, str]:
    pairs = (d.split(":", 1) for d in style.split(";") if ":" in d)
    return {name.strip(): value.strip() for name, value in pairs}


def test_demo_digest_styles_are_inlined(demo_html: str) -> None:
    parser = Styles()
    parser.feed(demo_html)
    elements = parser.elements
    assert len([e for e in elements if e["class"] == "p"]) >= 50

    def with_class(name: str) -> list[dict[str, str]]:
        return [e for e in elements if e["class"] == name]

    for element in elements:
        style = declarations(element["style"])
        if element["tag"] == "a":
            assert "color" in style, element
        if element["tag"] == "td":
            assert {"font-family", "font-size", "color"} <= style.keys(), element
        if element["tag"] == "mark":
            assert "background" in style, element
        if element["tag"] == "img":
            assert element["alt"] != "-", element
        assert not element["src"], "nothing is loaded from anywhere"
    for element in with_class("t") + with_class("x"):
        assert {"font-size", "color"} <= declarations(element["style"]).keys(), element
    # Only the media queries (phone width, dark mode) stay in the style sheet.
    assert not re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", parser.style_sheet).strip()
    assert "prefers-color-scheme: dark" in parser.style_sheet


def test_demo_digest_text_is_at_least_14px(demo_html: str) -> None:
    sizes = [int(px) for px in re.findall(r"font-size:\s*(\d+)px", demo_html)]
    assert sizes and min(sizes) >= 14
    assert "<link" not in demo_html and "url(" not in demo_html


# --- hostile content: links, huge author lists, absurd titles (issue 11) ---------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    paper = Paper(
        key="title:x",
        title="A KV cache paper",
        url=url,
        extra=(("code_url", url), ("pdf_url", url), ("project_page", url)),
    )
    out = render_digest(digest_of(papers=[paper]))
    scheme = url.strip().split(":", 1)[0].lower()
    for part in (out.html, out.text):
        assert f"{scheme}:" not in part.lower()
    assert paper_links(paper) == []
    assert paper_link(paper).startswith("https://arxiv.org/search/")


def test_a_paper_with_ten_thousand_authors_shows_the_first_and_the_followed_ones() -> None:
    authors = tuple(f"Author Number{i}" for i in range(10_000))
    authors = (*authors[:5000], "Rishabh Tiwari", *authors[5000:])
    paper = Paper(key="title:big", title="A big collaboration", authors=authors)
    out = render_digest(digest_of(papers=[paper]))
    seen = visible_text(out.html)
    assert "Author Number0, Author Number1," in seen and "Author Number9," in seen
    assert "Author Number10," not in seen
    assert "<b>Rishabh Tiwari</b>" in out.html
    assert "Rishabh Tiwari + 9,990 more" in seen
    assert "*Rishabh Tiwari* + 9,990 more" in out.text
    assert len(out.html.encode()) < 12_000


def test_an_absurdly_long_title_is_cut_for_display() -> None:
    paper = Paper(key="title:long", title="KV cache " + "very " * 5000 + "long")
    out = render_digest(digest_of(papers=[paper]))
    assert len(out.html.encode()) < 12_000 and len(out.text) < 6_000
    assert "very …" in visible_text(out.html)


def test_every_digest_stays_under_the_clip_size() -> None:
    from digest.render import fit_digest

    papers = [
        Paper(
            key=f"title:{i}",
            title=f"KV cache paper {i}",
            authors=tuple(f"A{j} B" for j in range(3000)),
            abstract=LONG_ABSTRACT * 20,
        )
        for i in range(300)
    ]
    matches = ranked(replace(PROFILE, max_items=100), papers)
    digest, out = fit_digest(replace(PROFILE, max_items=100), matches, NOW)
    assert html_part_bytes(out.html) <= CLIP_BYTES
    assert 0 < len(digest.papers) < 300 and digest.more == 300 - len(digest.papers)
    assert out.paper_keys == tuple(m.paper.key for m in digest.papers)


# --- TeX read as text ---------------------------------------------------------------------------

TEX_PAPER = Paper(
    key="arxiv:2401.00009",
    title=r"$\varepsilon_1$-close KV cache for $\texttt{SPECS}$",
    authors=("Ann Example",),
    abstract=r"We bound $\Theta(\sqrt{n})$ over $\{1, \dots, n\}$ for the `memory allocation' "
    r"of a KV cache.",
    published=date(2026, 11, 20),
    arxiv_id="2401.00009",
)


@pytest.fixture(scope="module")
def tex_rendered() -> RenderedDigest:
    profile = replace(PROFILE, keywords=("KV cache", "SPECS", "memory allocation"))
    return render_digest(digest_of(profile, [TEX_PAPER]))


@pytest.mark.parametrize(
    "shown",
    [
        pytest.param("ε₁-close KV cache for SPECS", id="title"),
        pytest.param("We bound Θ(√n) over {1, …, n} for the ‘memory allocation’", id="abstract"),
    ],
)
def test_tex_reads_as_text_in_both_parts(tex_rendered: RenderedDigest, shown: str) -> None:
    assert shown in visible_text(tex_rendered.html)
    assert shown in " ".join(tex_rendered.text.split())
    for part in (tex_rendered.html, tex_rendered.text):
        assert "$" not in part.split("<body", 1)[-1] and "\\" not in part


def marked(inner: str) -> str:
    """An element's text with its `<mark>` tags (attributes dropped) and no other tags."""
    return re.sub(r"<(?!/?mark\b)[^>]*>", "", re.sub(r"<mark[^>]*>", "<mark>", inner))


def test_tex_keeps_the_highlight_on_the_matched_words(tex_rendered: RenderedDigest) -> None:
    html = tex_rendered.html
    assert marked(block(html, "t", "close KV cache")) == (
        "ε₁-close <mark>KV cache</mark> for <mark>SPECS</mark>"
    )
    assert marked(block(html, "x", "We bound")) == (
        "We bound Θ(√n) over {1, …, n} for the ‘<mark>memory allocation</mark>’ "
        "of a <mark>KV cache</mark>."
    )


# --- one reason per term and field --------------------------------------------------------------

BOTH = Profile(
    "me", keywords=("hallucination",), all_of=(("hallucination", "benchmark"),), max_items=5
)
HALLUCINATION = Paper(
    key="k",
    title="A hallucination benchmark",
    abstract="We measure hallucination on a benchmark.",
)


def test_a_term_in_keywords_and_all_of_is_one_reason_per_field() -> None:
    (match,) = ranked(BOTH, [HALLUCINATION])
    assert reason_summary(match) == (
        "matches “hallucination” (title and abstract), “benchmark” (title and abstract)"
    )
    text = render_digest(build_digest(BOTH, (match,), NOW)).text
    assert "title and abstract and title" not in text


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("<p>plain</p>", "<p>plain</p>"),
        ("<p>Grüße “quoted”</p>", "<p>Gr&#252;&#223;e &#8220;quoted&#8221;</p>"),
        ('<a href="x">ε₁</a>', '<a href="x">&#949;&#8321;</a>'),
    ],
    ids=["ascii", "latin-and-quotes", "greek-subscript"],
)
def test_the_html_part_is_ascii_with_character_references(source: str, expected: str) -> None:
    assert seven_bit_html(source) == expected


def test_a_long_line_of_the_html_part_breaks_at_a_space_outside_tags() -> None:
    words = " ".join(f'<mark style="a b c">w{n}</mark> text' for n in range(200))
    line = f'<div class="x" style="font-size: 15px">{words}</div>'
    broken = seven_bit_html(line)
    assert all(len(piece) <= 990 for piece in broken.splitlines())
    assert broken.replace("\n", " ") == line  # only spaces became line breaks
    assert "\n" not in "".join(re.findall(r"<[^>]*>", broken))  # never inside a tag


def test_a_day_too_full_for_whole_abstracts_cuts_them_before_leaving_papers_out() -> None:
    profile = Profile("me", keywords=("widget",), max_items=50)
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    abstract = "Widgets are studied here. " * 40
    matches = [
        Match(Paper(f"k{n}", f"Widget number {n}", abstract=abstract), (), 10.0) for n in range(40)
    ]
    whole = render_digest(build_digest(profile, matches, now))
    budget = html_part_bytes(whole.html) - 1  # all 40 with whole abstracts do not fit
    digest, rendered = fit_digest(profile, matches, now, clip_bytes=budget)
    assert len(digest.papers) == 40 and digest.more == 0
    assert html_part_bytes(rendered.html) <= budget
    excerpt = re.search(r'<div class="x"[^>]*>(.*?)</div>', rendered.html, re.S)
    assert excerpt and len(html_lib.unescape(excerpt.group(1))) <= SHORT_ABSTRACT_CHARS + 2
