"""Rendering: a ranked digest becomes an email's subject, HTML part and plain-text part.

Templates live in the project's `templates/` (shipped inside the wheel as `digest/templates`).
CSS is written once in the HTML template's `<style>` and inlined with css-inline, because most
mail clients ignore style sheets; media queries and dark mode stay in the `<style>` block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup, escape

from digest.display import (
    badges,
    counts_summary,
    distinct_reasons,
    listing_links,
    paper_link,
    paper_links,
    problem_names,
    reason_summary,
    short_reason,
    shown_authors,
    source_names,
    source_title,
    title_cut,
)
from digest.memo import pure_memo
from digest.models import Digest, Match, Paper, Profile, Reason, RenderedDigest, SourceStatus
from digest.tex import readable

if TYPE_CHECKING:
    from email.message import EmailMessage

# A paper's feedback links: (label, URL), or (label, token) when `post_to` is set (the preview
# page posts them straight to `digest serve`). Built by digest.feedback.
Linker = Callable[[Match], Sequence[tuple[str, str]]]

ABSTRACT_CHARS = 600
# On a day with more papers than fit in full, every excerpt is cut to this (about two lines)
# before any paper is left for the next digest: a reader would rather see every paper.
SHORT_ABSTRACT_CHARS = 280
# Gmail clips a message whose HTML is over ~102 KB, counted as the message travels: every
# digest's HTML part, quoted-printable encoded and with its part headers, stays under this.
CLIP_BYTES = 100_000
_INDENT = re.compile(r"\n[ \t]+")
TEXT_WIDTH = 78  # the plain-text part's lines
# What a line is never broken inside: a quoted term (“long-context”, with what sticks to it),
# `code`, or any run without spaces (a link, a hyphenated word).
_UNIT = re.compile(r"\S*“[^”\n]{0,200}”\S*|\S*`[^`\n]{0,120}`\S*|\S+")
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z0-9(\[$\\])")


def templates_dir() -> Path:
    """The templates shipped in the wheel, or the project's `templates/` in a source checkout."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


@pure_memo(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Not Jinja's `capitalize`: it lowercases the rest ("because you follow rishabh tiwari").
    env.filters["upper_first"] = _upper_first
    env.filters["long_date"] = long_date
    env.filters["wrap"] = wrap
    # What an entry shows of its paper comes worked out (`PaperView`); these make the rest.
    env.globals.update(
        highlight=highlight,
        spans_of=spans_of,
        paper_link=paper_link,
        counts_summary=counts_summary,
        source_names=source_names,
        source_title=source_title,
        problem_names=problem_names,
        listing_links=listing_links,
        short_reason=short_reason,
        title_cut=title_cut,
    )
    return env


def _upper_first(value: str) -> str:
    """Upper-case the first character only, keeping names and terms as written."""
    text = str(value)
    return text[:1].upper() + text[1:]


# A lab's day renders the same abstracts into many digests (and again when a digest is cut to
# fit): the end-to-end bench wrapped 27k texts for 100 digests, 1.5 s of its profile.
@pure_memo(maxsize=8192)
def wrap(text: str, indent: str = "   ", width: int = TEXT_WIDTH) -> str:
    """`text` wrapped at `width` columns, its leading white space kept on the first line and
    `indent` before the others; only at spaces, never inside a quoted term, `code` or a link
    (a unit longer than a line gets a line of its own)."""
    stripped = text.lstrip()
    lines = [text[: len(text) - len(stripped)]]
    fresh = True  # the current line holds only its indent
    for unit in _UNIT.findall(stripped):
        if not fresh and len(lines[-1]) + 1 + len(unit) > width:
            lines.append(indent)
            fresh = True
        lines[-1] += unit if fresh else " " + unit
        fresh = False
    return "\n".join(lines)


def long_date(moment: date | datetime) -> str:
    """`Sunday 22 November 2026`: the day of the month without a leading zero."""
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def build_digest(
    profile: Profile,
    matches: Sequence[Match],
    now: datetime,
    source_problems: Sequence[SourceStatus] = (),
    *,
    more: int = 0,
    citing: Sequence[Match] = (),
    suggestions: Sequence[Match] = (),
) -> Digest:
    """The best `max_items` of the ranked matches in full, the rest as the compact list;
    `more` counts candidates left for the next digest; `citing` come first, in full, and
    `suggestions` follow the rule matches."""
    full = tuple(matches[: profile.max_items])
    overflow = tuple(matches[profile.max_items :])
    return Digest(
        profile,
        full,
        now,
        more,
        tuple(source_problems),
        overflow,
        citing=tuple(citing),
        suggestions=tuple(suggestions),
    )


def fit_digest(
    profile: Profile,
    matches: Sequence[Match],
    now: datetime,
    source_problems: Sequence[SourceStatus] = (),
    *,
    clip_bytes: int = CLIP_BYTES,
    feedback: Linker | None = None,
    citing: Sequence[Match] = (),
    suggestions: Sequence[Match] = (),
) -> tuple[Digest, RenderedDigest]:
    """The digest holding as many of the ranked matches as fit under `clip_bytes` of HTML as
    it is sent (`html_part_bytes`), rendered; what does not fit is counted in `more` (and stays
    a candidate). The papers citing the reader's work (`citing`, at most `max_items`) come
    first and are always kept.

    At least one paper is always taken, so a digest can never be stuck on its first paper
    (each paper's display is bounded: title, authors and abstract are cut). The feedback
    links (`feedback`) count in the size like everything else. `suggestions` (at most 50,
    each bounded the same way) are kept in every attempt: the rule matches make room for them;
    when even one match does not fit beside them, fewer suggestions are shown (the others stay
    candidates). When not every match fits with full excerpts, every abstract is cut to
    `SHORT_ABSTRACT_CHARS` before any match is left out.
    """
    suggested = tuple(suggestions)

    def attempt(count: int, chars: int = ABSTRACT_CHARS) -> tuple[Digest, RenderedDigest]:
        digest = build_digest(
            profile,
            matches[:count],
            now,
            source_problems,
            more=len(matches) - count,
            citing=citing[: profile.max_items],
            suggestions=suggested,
        )
        return digest, render_digest(digest, feedback=feedback, abstract_chars=chars)

    def fits(rendered: RenderedDigest) -> bool:
        return html_part_bytes(rendered.html) <= clip_bytes

    while suggested and not fits(attempt(min(1, len(matches)))[1]):
        suggested = suggested[: len(suggested) // 2]
    best = attempt(len(matches))
    if fits(best[1]) or len(matches) <= 1:
        return best
    # Too many for full excerpts: every excerpt shorter, then as many papers as fit.
    short = attempt(len(matches), SHORT_ABSTRACT_CHARS)
    if fits(short[1]):
        return short
    return _largest_fitting(
        lambda count: attempt(count, SHORT_ABSTRACT_CHARS), fits, len(matches) - 1
    )


_Rendering = tuple[Digest, RenderedDigest]


def _largest_fitting(
    attempt: Callable[[int], _Rendering], fits: Callable[[RenderedDigest], bool], most: int
) -> _Rendering:
    """The attempt with the largest count from 1 to `most` that fits (count 1 if none does).
    The size grows with the count, so by bisection: about log2(n) renders, only on days with
    more papers than fit."""
    low, high = 1, most
    best = attempt(low)
    while low < high:
        middle = (low + high + 1) // 2
        candidate = attempt(middle)
        if fits(candidate[1]):
            low, best = middle, candidate
        else:
            high = middle - 1
    return best


def html_part_bytes(html: str) -> int:
    """The size of the HTML part as it travels in the message (`add_html_part`: 7-bit ASCII,
    CRLF), its part headers included: what Gmail's clip counts.

    Counted, not built: the part's headers are the same for every digest, and its body is
    the 7-bit text's lines, each ended by CRLF. Building the part to measure it took 2.1 ms
    for a 93 KB digest, counting 0.3 ms, and `fit_digest` measures every digest at least once.
    `tests/test_render.py` checks the count against the part as built (`built_part_bytes`).
    """
    text = seven_bit_html(html)
    lines = text.encode("ascii").splitlines()
    if any(len(line) > _LINE_LIMIT for line in lines):
        return built_part_bytes(html)  # a line the part's encoder might treat otherwise
    return _part_headers_bytes() + sum(map(len, lines)) + 2 * max(len(lines), 1)


@pure_memo(maxsize=1)
def _part_headers_bytes() -> int:
    """The bytes of the HTML part's headers and the blank line after them."""
    return built_part_bytes("x") - len(b"x\r\n")


def built_part_bytes(html: str) -> int:
    """`html_part_bytes` by building the part as the message carries it and measuring it."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message.set_content("", cte="quoted-printable")
    add_html_part(message, html)
    [_, part] = message.iter_parts()
    return len(part.as_bytes())


def add_html_part(message: EmailMessage, html: str) -> None:
    """Add the HTML alternative as 7-bit text: every character beyond ASCII written as an HTML
    character reference (`&#8220;`), and lines kept under SMTP's 998 octets by breaking them
    at a space between tags. Any server can carry it as it is, and it is the smallest form: a
    quoted-printable part writes every `=` of the markup as `=3D` and breaks every 76
    characters (the demo digest's part: 98.8 KB quoted-printable, 93.3 KB this way)."""
    message.add_alternative(seven_bit_html(html), subtype="html", cte="7bit")


# Lines of the 7-bit part stay under this (SMTP's limit is 998 octets before CRLF).
_LINE_LIMIT = 990
# A space outside any tag (`<` ... `>`), where a line may break without changing the page.
_TEXT_SPACE = re.compile(r" (?=[^<>]*(?:<|$))")


def seven_bit_html(html: str) -> str:
    """`html` as ASCII (character references beyond it) with every line under 990 characters,
    broken at spaces outside tags (HTML reads a line break there as the space it was)."""
    text = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
    if all(len(line) <= _LINE_LIMIT for line in text.splitlines()):
        return text
    return "\n".join(_broken(line) for line in text.split("\n"))


def _broken(line: str) -> str:
    """A long line broken at its last text space before each limit (left as it is where it has
    none: an over-long tag or word, which no HTML the templates make holds)."""
    pieces: list[str] = []
    while len(line) > _LINE_LIMIT:
        spaces = (m.start() for m in _TEXT_SPACE.finditer(line))
        cut = max((at for at in spaces if at < _LINE_LIMIT), default=-1)
        if cut <= 0:
            break
        pieces.append(line[:cut])
        line = line[cut + 1 :]
    pieces.append(line)
    return "\n".join(pieces)


def subject_for(digest: Digest) -> str:
    """`Research digest, Sun 22 Nov: 3 from people you follow · 12 on your topics`."""
    day = digest.generated_at.strftime("%a %d %b")
    return f"Research digest, {day}: {counts_summary(digest)}"


@dataclass(frozen=True)
class PaperView:
    """One paper's entry as both parts of a digest show it, worked out once per render: the
    HTML and the plain-text templates lay out the same pieces (a lab's morning renders 4,000
    entries; each piece was worked out twice, once per part)."""

    match: Match
    title_end: int  # where the shown title is cut (`title_cut`)
    link: str  # the paper's page (`paper_link`)
    links: Sequence[tuple[str, str]]  # its other links (`paper_links`)
    authors: Sequence[tuple[str, bool]]  # the authors shown, each with whether it is followed
    hidden: int  # how many authors are left out
    badges: Sequence[str]
    reason: str  # why it was picked (`reason_summary`)
    abstract_end: int  # where the shown abstract is cut (`trim_abstract`)
    feedback: Sequence[tuple[str, str]]  # its feedback links (none without a linker)

    @property
    def paper(self) -> Paper:
        """The paper shown."""
        return self.match.paper


def paper_view(match: Match, abstract_chars: int, feedback: Linker) -> PaperView:
    """The entry of one (readable) match, its abstract cut near `abstract_chars`."""
    paper = match.paper
    authors, hidden = shown_authors(paper, match.followed_names)
    return PaperView(
        match,
        title_end=title_cut(paper),
        link=paper_link(paper),
        links=paper_links(paper),
        authors=authors,
        hidden=hidden,
        badges=badges(paper),
        reason=reason_summary(match),
        abstract_end=trim_abstract(paper.abstract, abstract_chars),
        feedback=feedback(match),
    )


def readable_match(match: Match) -> Match:
    """The match as a reader sees it: TeX in the title and abstract read as Unicode text
    (digest.tex), and the matched-term spans moved onto that text."""
    paper = match.paper
    title, abstract = readable(paper.title), readable(paper.abstract)
    if title.text == paper.title and abstract.text == paper.abstract:
        return match
    shown = {"title": title, "abstract": abstract}
    reasons = tuple(
        replace(r, spans=shown[r.field].spans(r.spans)) if r.field in shown else r
        for r in match.reasons
    )
    return replace(
        match, paper=replace(paper, title=title.text, abstract=abstract.text), reasons=reasons
    )


def readable_digest(digest: Digest) -> Digest:
    """The digest with every paper's TeX read as text (see `readable_match`)."""
    return replace(
        digest,
        matches=tuple(map(readable_match, digest.matches)),
        overflow=tuple(map(readable_match, digest.overflow)),
        citing=tuple(map(readable_match, digest.citing)),
        suggestions=tuple(map(readable_match, digest.suggestions)),
    )


def render_digest(
    digest: Digest,
    *,
    more_url: str = "",
    feedback: Linker | None = None,
    post_to: str = "",
    abstract_chars: int = ABSTRACT_CHARS,
) -> RenderedDigest:
    """Render the HTML and plain-text parts of a digest; TeX reads as Unicode text.

    `feedback` gives each paper its feedback links (none without); with `post_to`, the HTML
    shows them as buttons posting the token to that path (the preview page of `digest serve`).
    Abstracts are cut near `abstract_chars` (`trim_abstract`).
    """
    digest = readable_digest(digest)
    linker = feedback or _no_feedback

    def views(matches: Iterable[Match]) -> list[PaperView]:
        return [paper_view(match, abstract_chars, linker) for match in matches]

    followed, topical = _by_followed(digest.matches)
    context = {
        "digest": digest,
        "subject": subject_for(digest),
        "citing": views(digest.citing),
        "followed": views(followed),
        "topical": views(topical),
        "suggested": views(digest.suggestions),
        "more_url": more_url,
        "feedback": linker,
        "post_to": post_to,
    }
    env = _environment()
    html = inline_css(env.get_template("digest.html.j2").render(context))
    text = env.get_template("digest.txt.j2").render(context)
    keys = tuple(m.paper.key for m in digest.papers)
    return RenderedDigest(context["subject"], html, text, keys)  # type: ignore[arg-type]


def _by_followed(matches: Iterable[Match]) -> tuple[list[Match], list[Match]]:
    """The matches by followed authors, and the others, each in order."""
    followed: list[Match] = []
    topical: list[Match] = []
    for match in matches:
        (followed if match.followed else topical).append(match)
    return followed, topical


def _no_feedback(match: Match) -> Sequence[tuple[str, str]]:
    """No feedback links (a digest rendered without them)."""
    return ()


def inline_css(html: str) -> str:
    """Move the style sheet into `style` attributes, compactly; keep only @media rules.

    Gmail clips messages over ~102 KB, so the output is kept small: minified declarations and
    no indentation (a line break is as good as any run of white space between HTML elements).
    """
    import css_inline  # heavy: only needed when a digest is really rendered

    inlined = css_inline.inline(html, keep_at_rules=True, minify_css=True)
    return _INDENT.sub("\n", inlined)


def spans_of(reasons: Iterable[Reason], field: str) -> list[tuple[int, int]]:
    """Every highlighted span of one field, merged where they overlap."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(_field_spans(reasons, field)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _field_spans(reasons: Iterable[Reason], field: str) -> list[tuple[int, int]]:
    """The spans of every reason in one field."""
    return [span for reason in reasons if reason.field == field for span in reason.spans]


def highlight(text: str, spans: Sequence[tuple[int, int]], limit: int | None = None) -> Markup:
    """HTML-escape `text` (cut at `limit`) and wrap each span in `<mark>`."""
    cut = len(text) if limit is None else limit
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        if start >= cut:
            break
        end = min(end, cut)
        pieces.append(str(escape(text[position:start])))
        pieces.append(f"<mark>{escape(text[start:end])}</mark>")
        position = end
    pieces.append(str(escape(text[position:cut])))
    return Markup("".join(pieces))


def trim_abstract(text: str, limit: int = ABSTRACT_CHARS) -> int:
    """Where to cut an abstract: the last sentence end before `limit`, else a word break."""
    if len(text) <= limit:
        return len(text)
    sentence = _last_sentence_end(text, limit)
    if sentence > limit // 3:
        return sentence
    space = text.rfind(" ", 0, limit)
    return space if space > 0 else limit


def _last_sentence_end(text: str, limit: int) -> int:
    """Where the last sentence ending at or before `limit` ends (0 if none does)."""
    # Scan past `limit`: the look-ahead must see what follows a sentence ending right at it.
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= limit]
    return ends[-1] if ends else 0


__all__ = [  # with what `digest.display` makes for the templates, re-exported
    "ABSTRACT_CHARS",
    "CLIP_BYTES",
    "SHORT_ABSTRACT_CHARS",
    "TEXT_WIDTH",
    "Linker",
    "add_html_part",
    "badges",
    "build_digest",
    "counts_summary",
    "distinct_reasons",
    "fit_digest",
    "highlight",
    "html_part_bytes",
    "inline_css",
    "listing_links",
    "long_date",
    "paper_link",
    "paper_links",
    "problem_names",
    "readable_digest",
    "readable_match",
    "reason_summary",
    "render_digest",
    "seven_bit_html",
    "short_reason",
    "shown_authors",
    "source_names",
    "source_title",
    "spans_of",
    "subject_for",
    "templates_dir",
    "title_cut",
    "trim_abstract",
    "wrap",
]
