"""Rendering: a ranked digest becomes an email's subject, HTML part and plain-text part.

Templates live in the project's `templates/` (shipped inside the wheel as `digest/templates`).
CSS is written once in the HTML template's `<style>` and inlined with css-inline, because most
mail clients ignore style sheets; media queries and dark mode stay in the `<style>` block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

import jinja2
from markupsafe import Markup, escape

from digest.models import Digest, Match, Paper, Profile, Reason, RenderedDigest, SourceStatus
from digest.tex import readable

# A paper's feedback links: (label, URL), or (label, token) when `post_to` is set (the preview
# page posts them straight to `digest serve`). Built by digest.feedback.
Linker = Callable[[Match], Sequence[tuple[str, str]]]

ABSTRACT_CHARS = 600
TITLE_CHARS = 300  # a longer title (a hostile feed's) is cut for display
AUTHORS_SHOWN = 10  # the first authors shown; followed ones are shown wherever they are
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


@cache
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
    env.globals.update(
        highlight=highlight,
        trim_abstract=trim_abstract,
        spans_of=spans_of,
        paper_link=paper_link,
        paper_links=paper_links,
        badges=badges,
        reason_summary=reason_summary,
        counts_summary=counts_summary,
        source_names=source_names,
        source_title=source_title,
        problem_names=problem_names,
        listing_links=listing_links,
        shown_authors=shown_authors,
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
@lru_cache(maxsize=8192)
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


def safe_url(url: str) -> str:
    """`url` when it is an http(s) URL, else '': nothing else ever becomes a link."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") else ""


def paper_link(paper: Paper) -> str:
    """The paper's page: its own URL, its arXiv page, its DOI, or an arXiv title search."""
    if safe_url(paper.url):
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if paper.doi:
        return f"https://doi.org/{paper.doi}"
    title = paper.title[: title_cut(paper)]
    return "https://arxiv.org/search/?searchtype=title&query=" + quote_plus(title)


def abstract_link(paper: Paper) -> str:
    """The paper's abstract page when one is known (arXiv, its own URL, its DOI), else ''."""
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if safe_url(paper.url):
        return paper.url
    return f"https://doi.org/{paper.doi}" if paper.doi else ""


def pdf_link(paper: Paper) -> str:
    """The paper's PDF when known: the source's PDF link, else arXiv's."""
    pdf = paper.extra_value("pdf_url")
    if isinstance(pdf, str) and safe_url(pdf):
        return pdf
    return f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else ""


def _text_extra(paper: Paper, name: str) -> str:
    value = paper.extra_value(name)
    return value if isinstance(value, str) and safe_url(value) else ""


def paper_links(paper: Paper) -> list[tuple[str, str]]:
    """(label, URL) of every link known for a paper, in reading order, without duplicates.

    An arXiv title search (what `paper_link` falls back to) is not an abstract page: a paper
    known only by its title gets its title linked and no `Abstract` link.
    """
    candidates = [
        ("Abstract", abstract_link(paper)),
        ("PDF", pdf_link(paper)),
        ("Code", _text_extra(paper, "code_url")),
        ("Project page", _text_extra(paper, "project_page")),
    ]
    seen: set[str] = set()
    links = []
    for label, url in candidates:
        if url and url not in seen:
            seen.add(url)
            links.append((label, url))
    return links


def badges(paper: Paper) -> list[str]:
    """Short signals shown beside the date: upvotes, available code, a new arXiv version.

    "new version" only when the store had the paper at an older version (`previous_version`,
    recorded by the store's merge): a paper first seen at v2 is new to the reader.
    """
    found = []
    if paper.upvotes:
        found.append(f"▲ {paper.upvotes}")
    if paper.extra_value("code_url") or paper.extra_value("code"):
        stars = paper.extra_value("github_stars")
        found.append(f"code ★ {stars}" if isinstance(stars, int) and stars > 0 else "code")
    previous = paper.extra_value("previous_version")
    if isinstance(previous, int) and 0 < previous < paper.version:
        found.append(f"new version v{paper.version}")
    return found


def counts_summary(digest: Digest) -> str:
    """`2 citing your work · 3 from people you follow · 12 on your topics · 5 suggested`, or
    `nothing new`."""
    if not digest.papers:
        return "nothing new"
    parts = []
    if digest.citing:
        parts.append(f"{len(digest.citing)} citing your work")
    if digest.followed_count:
        parts.append(f"{digest.followed_count} from people you follow")
    if digest.topic_count:
        parts.append(f"{digest.topic_count} on your topics")
    if digest.suggestions:
        parts.append(f"{len(digest.suggestions)} suggested")
    return " · ".join(parts)


# The built-in sources by the names their readers know; a feed is named by its own title.
SOURCE_TITLES = {
    "arxiv": "arXiv",
    "arxiv-api": "arXiv",
    "arxiv-authors": "arXiv",
    "hf_daily": "Hugging Face Daily Papers",
    "openalex": "OpenAlex",
}


def source_title(name: str, paper: Paper | None = None) -> str:
    """A source's name as a reader knows it: `arXiv`, `Hugging Face Daily Papers`, the title a
    feed gives itself (for the paper it first brought), else the name in the config."""
    if name in SOURCE_TITLES:
        return SOURCE_TITLES[name]
    if paper is not None and name == paper.source:
        title = paper.extra_value("feed_title")
        if isinstance(title, str) and title:
            return title
    return name


def source_names(digest: Digest) -> list[str]:
    """The sources the digest's papers came from, in order of first appearance, by the names
    a reader knows (`source_title`)."""
    names: dict[str, None] = {}
    for match in digest.matches:
        paper = match.paper
        for name in paper.sources or ((paper.source,) if paper.source else ()):
            names.setdefault(source_title(name, paper))
    return list(names)


def problem_names(digest: Digest) -> str:
    """The sources that could not be read, by the names a reader knows."""
    return ", ".join(dict.fromkeys(source_title(p.name) for p in digest.source_problems))


def listing_links(digest: Digest) -> list[tuple[str, str]]:
    """(category, URL) of today's arXiv listing for each of the profile's categories."""
    return [(c, f"https://arxiv.org/list/{quote(c)}/new") for c in digest.profile.categories]


def shown_authors(
    paper: Paper, followed: Sequence[str], first: int = AUTHORS_SHOWN
) -> tuple[list[tuple[str, bool]], int]:
    """The authors to show, each with whether it is followed, and how many are left out: the
    first `first` authors and every followed one after them (a paper with 10,000 authors must
    not make a 300 KB email)."""
    wanted = set(followed)
    shown = [
        (name, name in wanted)
        for i, name in enumerate(paper.authors)
        if i < first or name in wanted
    ]
    return shown, len(paper.authors) - len(shown)


def title_cut(paper: Paper) -> int:
    """Where to cut a title for display: all of it, unless it is absurdly long."""
    if len(paper.title) <= TITLE_CHARS:
        return len(paper.title)
    space = paper.title.rfind(" ", 0, TITLE_CHARS)
    return space if space > TITLE_CHARS // 2 else TITLE_CHARS


def short_reason(match: Match) -> str:
    """The one reason the compact list shows: the first followed author, else the first term."""
    for reason in match.reasons:
        if reason.kind == "cites":
            return f"cites “{reason.text}”"
        if reason.kind == "author":
            return f"because you follow {reason.term}"
        if reason.kind == "similar":
            return f"similar to “{reason.term}”"
    return f"matches “{match.reasons[0].term}”" if match.reasons else ""


def distinct_reasons(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    """One reason per term and field, the first kept: a term that is both a keyword and in an
    `all_of` group is found twice by the matcher, but is one reason to a reader."""
    seen: set[tuple[bool, str, str]] = set()
    kept = []
    for reason in reasons:
        place = (reason.kind == "author", reason.term, reason.field)
        if place not in seen:
            seen.add(place)
            kept.append(reason)
    return tuple(kept)


def reason_summary(match: Match) -> str:
    """One line saying why a paper was picked: followed authors, then the matched terms."""
    parts = []
    cited = dict.fromkeys(r.text for r in match.reasons if r.kind == "cites")
    if cited:
        parts.append("cites " + ", ".join(f"“{title}”" for title in cited))
    if match.followed:
        parts.append(
            "because you follow "
            + ", ".join(dict.fromkeys(r.term for r in match.reasons if r.kind == "author"))
        )
    for reason in match.reasons:
        if reason.kind == "similar":
            # A suggestion: the closest paper the reader keeps, and the words weighing most.
            words = f" (weighs most: {reason.text})" if reason.text else ""
            parts.append(f"similar to “{reason.term}”{words}")
    terms: dict[str, list[str]] = {}
    for reason in distinct_reasons(match.reasons):
        if reason.kind not in ("author", "cites", "similar"):
            terms.setdefault(reason.term, []).append(reason.field)
    if terms:
        listed = ", ".join(f"“{t}” ({' and '.join(fields)})" for t, fields in terms.items())
        parts.append("matches " + listed)
    return "; ".join(parts)


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
    candidates).
    """
    suggested = tuple(suggestions)

    def attempt(count: int) -> tuple[Digest, RenderedDigest]:
        digest = build_digest(
            profile,
            matches[:count],
            now,
            source_problems,
            more=len(matches) - count,
            citing=citing[: profile.max_items],
            suggestions=suggested,
        )
        return digest, render_digest(digest, feedback=feedback)

    def fits(rendered: RenderedDigest) -> bool:
        return html_part_bytes(rendered.html) <= clip_bytes

    while suggested and not fits(attempt(min(1, len(matches)))[1]):
        suggested = suggested[: len(suggested) // 2]
    best = attempt(len(matches))
    if fits(best[1]) or len(matches) <= 1:
        return best
    # The size grows with the count: find the largest count that fits, by bisection (about
    # log2(n) renders, only on days with more papers than fit).
    low, high = 1, len(matches) - 1
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
    """The size of the HTML part as it travels in the message (digest.deliver's encoding:
    quoted-printable, UTF-8, CRLF), its part headers included: what Gmail's clip counts."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message.set_content("", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    [_, part] = message.iter_parts()
    return len(part.as_bytes())


def subject_for(digest: Digest) -> str:
    """`Research digest, Sun 22 Nov: 3 from people you follow · 12 on your topics`."""
    day = digest.generated_at.strftime("%a %d %b")
    return f"Research digest, {day}: {counts_summary(digest)}"


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
    digest: Digest, *, more_url: str = "", feedback: Linker | None = None, post_to: str = ""
) -> RenderedDigest:
    """Render the HTML and plain-text parts of a digest; TeX reads as Unicode text.

    `feedback` gives each paper its feedback links (none without); with `post_to`, the HTML
    shows them as buttons posting the token to that path (the preview page of `digest serve`).
    """
    digest = readable_digest(digest)
    context = {
        "digest": digest,
        "subject": subject_for(digest),
        "followed": [m for m in digest.matches if m.followed],
        "topical": [m for m in digest.matches if not m.followed],
        "more_url": more_url,
        "feedback": feedback or _no_feedback,
        "post_to": post_to,
    }
    env = _environment()
    html = inline_css(env.get_template("digest.html.j2").render(context))
    text = env.get_template("digest.txt.j2").render(context)
    keys = tuple(m.paper.key for m in digest.papers)
    return RenderedDigest(context["subject"], html, text, keys)  # type: ignore[arg-type]


def _no_feedback(match: Match) -> Sequence[tuple[str, str]]:
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
    spans = sorted(s for r in reasons if r.field == field for s in r.spans)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


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
    # Scan past `limit`: the look-ahead must see what follows a sentence ending right at it.
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() <= limit]
    if ends and ends[-1] > limit // 3:
        return ends[-1]
    space = text.rfind(" ", 0, limit)
    return space if space > 0 else limit
