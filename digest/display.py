"""What a digest shows of each paper and of itself, apart from the templates' layout: links,
badges, the authors shown, why each paper was picked, the counts, and the sources by the names
their readers know. `render` gives them to the templates (and re-exports them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal
from urllib.parse import quote, quote_plus, urlsplit

from digest.models import Digest, Match, Paper, Reason

TITLE_CHARS = 300  # a longer title (a hostile feed's) is cut for display
AUTHORS_SHOWN = 10  # the first authors shown; followed ones are shown wherever they are


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
    return [badge for badge in (shown(paper) for shown in _BADGES) if badge]


def _upvotes_badge(paper: Paper) -> str:
    """`▲ 12` for a paper with upvotes."""
    return f"▲ {paper.upvotes}" if paper.upvotes else ""


def _code_badge(paper: Paper) -> str:
    """`code`, with its GitHub stars when known (`code ★ 40`), for a paper with code."""
    if not (paper.extra_value("code_url") or paper.extra_value("code")):
        return ""
    stars = paper.extra_value("github_stars")
    return f"code ★ {stars}" if isinstance(stars, int) and stars > 0 else "code"


def _version_badge(paper: Paper) -> str:
    """`new version v3` for a paper the store had at an older version."""
    previous = paper.extra_value("previous_version")
    if isinstance(previous, int) and 0 < previous < paper.version:
        return f"new version v{paper.version}"
    return ""


_BADGES: tuple[Callable[[Paper], str], ...] = (_upvotes_badge, _code_badge, _version_badge)


def counts_summary(digest: Digest) -> str:
    """`2 citing your work · 3 from people you follow · 12 on your topics · 5 suggested`, or
    `nothing new`."""
    if not digest.papers:
        return "nothing new"
    counts = (
        (len(digest.citing), "citing your work"),
        (digest.followed_count, "from people you follow"),
        (digest.topic_count, "on your topics"),
        (len(digest.suggestions), "suggested"),
    )
    return " · ".join(f"{count} {label}" for count, label in counts if count)


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
    return _feed_title(name, paper) or name


def _feed_title(name: str, paper: Paper | None) -> str:
    """The title the feed `name` gives itself, when it is the source that brought `paper`."""
    if paper is None or name != paper.source:
        return ""
    title = paper.extra_value("feed_title")
    return title if isinstance(title, str) else ""


def source_names(digest: Digest) -> list[str]:
    """The sources the digest's papers came from, in order of first appearance, by the names
    a reader knows (`source_title`)."""
    names: dict[str, None] = {}
    for match in digest.matches:
        for name in _sources_of(match.paper):
            names.setdefault(source_title(name, match.paper))
    return list(names)


def _sources_of(paper: Paper) -> tuple[str, ...]:
    """The sources that brought a paper (a paper not yet stored lists only its own)."""
    return paper.sources or ((paper.source,) if paper.source else ())


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


# The one line the compact list shows for a reason of these kinds (the first one found).
_SHORT_REASONS = {
    "cites": "cites “{text}”",
    "author": "because you follow {term}",
    "similar": "similar to “{term}”",
}


def short_reason(match: Match) -> str:
    """The one reason the compact list shows: the first followed author, else the first term."""
    for reason in match.reasons:
        line = _SHORT_REASONS.get(reason.kind)
        if line is not None:
            return line.format(term=reason.term, text=reason.text)
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
    parts = [_cites_part(match), _followed_part(match), *_similar_parts(match), _terms_part(match)]
    return "; ".join(part for part in parts if part)


def _cites_part(match: Match) -> str:
    """`cites “Title”, “Other title”` for the watched works the paper cites ('' if none)."""
    cited = _distinct(match, "cites", "text")
    return "cites " + ", ".join(f"“{title}”" for title in cited) if cited else ""


def _followed_part(match: Match) -> str:
    """`because you follow A, B` for the followed authors of the paper ('' if none)."""
    if not match.followed:
        return ""
    return "because you follow " + ", ".join(_distinct(match, "author", "term"))


def _distinct(match: Match, kind: str, attribute: Literal["term", "text"]) -> list[str]:
    """The distinct terms or texts of the match's reasons of one kind, in order."""
    return list(dict.fromkeys(getattr(r, attribute) for r in match.reasons if r.kind == kind))


def _similar_parts(match: Match) -> list[str]:
    """A suggestion's reasons: the closest paper the reader keeps, and the words weighing most."""
    return [
        f"similar to “{r.term}”" + (f" (weighs most: {r.text})" if r.text else "")
        for r in match.reasons
        if r.kind == "similar"
    ]


_NOT_TERMS = ("author", "cites", "similar")  # reason kinds that are not matched terms


def _terms_part(match: Match) -> str:
    """`matches “KV cache” (title and abstract), “RL” (abstract)` ('' without terms)."""
    terms: dict[str, list[str]] = {}
    for reason in distinct_reasons(match.reasons):
        if reason.kind not in _NOT_TERMS:
            terms.setdefault(reason.term, []).append(reason.field)
    if not terms:
        return ""
    return "matches " + ", ".join(f"“{t}” ({' and '.join(fields)})" for t, fields in terms.items())
