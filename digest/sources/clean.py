"""Ingest cleaning: what every source's papers pass through before the store sees them.

Four rules (DESIGN.md, "Limits"; TeX names), in one pure function, `bounded_paper`:

- Only absolute http(s) URLs are kept: a `javascript:`, `data:`, `vbscript:`, `file:` or
  relative link (the paper URL, the API's PDF link, Hugging Face's code and project links, a
  listing's `url` and `code_url`, any `extra` value named `*_url` or `project_page`) is dropped,
  so it can never become a link in the email or the preview.
- No control characters: C0/C1 controls, lone surrogates, bidirectional overrides and line or
  paragraph separators are removed from every string. Every text is shown on one line (every
  parser already collapses the whitespace of titles, authors and abstracts), so tabs and line
  breaks become spaces and whitespace runs collapse, in `extra` values too.
- Author names and affiliations are Unicode, not TeX: every source may hand over `J\\"org
  Hoffmann`, `Anders S{\\o}gaard` or `Universit\\"at` (arXiv, BibTeX-made listings, feeds), and
  a followed `Jörg Hoffmann` must match. This is the one place they are decoded (pylatexenc).

- Every field within its cap (`digest.limits`: title, abstract, author names and count,
  categories, ids, links, cited works, the extras): cut with "…" or dropped, never silently —
  `bounded_paper` says which fields were cut and `clean_result` turns that into warning lines.
  The parsers read no more of a string than the caps need, so one huge field costs little.

`clean_result` applies it to a whole fetch result; the fetch job calls it for every source, and
`digest match --input` for its listing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from digest import limits
from digest.models import Paper, paper_keys
from digest.sources.base import FetchResult

if TYPE_CHECKING:
    from pylatexenc.latex2text import LatexNodes2Text

# Line breaks of every kind: become spaces in one-line text.
_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Controls (C0 but the breaks above, DEL, C1), bidirectional embeddings, overrides and isolates
# (they reorder the text around them: a title that reads differently than it is), lone
# surrogates (not storable as UTF-8) and the non-characters U+FFFE/U+FFFF.
_UNWANTED = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
# Browsers remove tabs and line breaks anywhere in a URL (WHATWG URL parsing), and leading
# controls and spaces: `java\tscript:` is `javascript:` to them, so these go before the check.
_URL_UNWANTED = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_LINK_SCHEMES = frozenset({"http", "https"})
_URL_NAMES = frozenset({"project_page"})


def clean_text(value: str) -> str:
    """`value` without control characters, on one line, whitespace collapsed."""
    return " ".join(_UNWANTED.sub("", _BREAKS.sub(" ", value)).split())


# A name is decoded only when it holds TeX: a command, a group or a tie (`R.~Smith`).
_TEX_MARKS = re.compile(r"[\\{~]")
# A `%` starts a TeX comment: in a name it is a percent sign.
_PERCENT = re.compile(r"(?<!\\)%")
# `\ss`, `\o`, …: a space before a capital ends the word (`Gau\ss Weber`), where TeX would
# swallow it (`Stra\ss e` = Straße is TeX's own rule and stays).
_LETTER_BEFORE_WORD = re.compile(r"(\\(?:ss|ae|AE|oe|OE|aa|AA|[oOlLij]))(?= [A-Z])")
_TEX_PASSES = 3  # `\{a\}` reads `{a}`, read again `a`: a few passes reach the fixed point


def tex_to_text(value: str) -> str:
    """TeX in a name or an affiliation as Unicode text: `J\\"org` → Jörg, `S{\\o}gaard` →
    Søgaard, `Pi\\v{z}urica` → Pižurica, `AT\\&T` → AT&T; braces dropped, a tie is a space.
    Text without TeX marks is returned as it is."""
    if not _TEX_MARKS.search(value):
        return value  # most names: the converter, costly to build, is not built at all
    from pylatexenc.latex2text import LatexNodes2Text

    converter = LatexNodes2Text()
    for _ in range(_TEX_PASSES):
        if not _TEX_MARKS.search(value):
            break
        text = _tex_pass(converter, value)
        if text == value:
            break
        value = text
    return value


def _tex_pass(converter: LatexNodes2Text, value: str) -> str:
    """`value` read once by `converter` as TeX, NFC-normalised; as it is if it cannot be read."""
    from pylatexenc.latexwalker import LatexWalkerError

    source = _LETTER_BEFORE_WORD.sub(r"\1{}", _PERCENT.sub(r"\\%", value))
    try:
        return unicodedata.normalize("NFC", converter.latex_to_text(source))
    except LatexWalkerError:  # pragma: no cover - the tolerant parser does not raise
        return value


def safe_url(value: str) -> str:
    """`value` if it is an absolute http(s) URL with a host (controls removed), else ""."""
    url = _URL_UNWANTED.sub("", _UNWANTED.sub("", value)).strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced `[` in the host, for one
        return ""
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.hostname:
        return ""
    return url


def _is_url_name(name: str) -> bool:
    """Whether an extra of this name holds a link (`*_url`, `project_page`)."""
    return name.endswith("_url") or name in _URL_NAMES


# What a cut is called in the warning, by field (one line per field a fetch cut).
_CUT_LINES: dict[str, str] = {
    "title": f"title longer than {limits.TITLE_CHARS:,} characters cut",
    "abstract": f"abstract longer than {limits.ABSTRACT_CHARS:,} characters cut",
    "author name": f"author name longer than {limits.AUTHOR_CHARS:,} characters cut",
    "authors": f"authors past the first {limits.AUTHORS:,} left out",
    "categories": (
        f"categories past the first {limits.CATEGORIES:,}, or longer than "
        f"{limits.CATEGORY_CHARS:,} characters, left out"
    ),
    "listing id": f"listing id, DOI or arXiv id longer than {limits.ID_CHARS:,} characters dropped",
    "url": f"url longer than {limits.URL_CHARS:,} characters dropped",
    "references": f"references past the first {limits.REFERENCES:,} left out",
    "extra": (
        f"extra signals cut (strings to {limits.EXTRA_TEXT_CHARS:,} characters, "
        f"{limits.EXTRA_CHARS:,} in all, {limits.EXTRA_ITEMS:,} items, "
        f"{limits.EXTRA_DEPTH} levels)"
    ),
}


class _Cuts:
    """The fields one paper had cut, and what is left of its extras' character budget."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.extra_left = limits.EXTRA_CHARS

    def note(self, name: str) -> None:
        """Record that field `name` was cut (once per field)."""
        if name not in self.fields:
            self.fields.append(name)


def _line(value: str, limit: int, name: str, cuts: _Cuts) -> str:
    """`value` cleaned and at most `limit` characters, cut with "…" (noted in `cuts`)."""
    prefix = limits.read_prefix(value, limit)
    text = clean_text(prefix)
    if len(text) > limit or len(prefix) < len(value):
        cuts.note(name)
        if len(text) > limit:
            return limits.cut(text, limit)
        # The rest of a longer string was not read: the text ends in "…" all the same.
        return (text if len(text) < limit else text[: limit - 1]).rstrip() + "…"
    return text


def _bounded_id(value: str, cuts: _Cuts) -> str:
    """An identifier cleaned; "" (noted) when it is longer than any identifier is."""
    text = clean_text(limits.read_prefix(value, limits.ID_CHARS))
    if len(text) > limits.ID_CHARS:
        cuts.note("listing id")
        return ""
    return text


def _bounded_url(value: str, cuts: _Cuts) -> str:
    """The link if it is safe (`safe_url`), else ""; "" and noted when it is too long."""
    if len(value) > limits.URL_CHARS * limits.READ_FACTOR:
        cuts.note("url")
        return ""
    url = safe_url(value)
    if len(url) > limits.URL_CHARS:
        cuts.note("url")
        return ""
    return url


def _clean_value(name: str, value: Any, depth: int, cuts: _Cuts) -> Any:
    """One `extra` value: URLs checked, strings cleaned and cut, inside lists and objects too
    (their items, nesting and characters bounded; see `limits`)."""
    if isinstance(value, str):
        return _clean_string(name, value, cuts)
    if isinstance(value, list | dict):
        return _clean_container(name, value, depth, cuts)
    return value


def _clean_string(name: str, value: str, cuts: _Cuts) -> str:
    """A string of the extras: a link checked, other text cleaned and cut to what is left of
    the extras' character budget."""
    if _is_url_name(name):
        return _bounded_url(value, cuts)
    if cuts.extra_left <= 0:  # the extras' budget is spent: later strings are left empty
        if value:
            cuts.note("extra")
        return ""
    text = _line(value, min(limits.EXTRA_TEXT_CHARS, cuts.extra_left), "extra", cuts)
    cuts.extra_left -= len(text)
    return text


def _clean_container(
    name: str, value: list[Any] | dict[Any, Any], depth: int, cuts: _Cuts
) -> list[Any] | dict[str, Any] | None:
    """A list or object of the extras, its items cleaned; None past the nesting limit, and no
    more than `limits.EXTRA_ITEMS` items."""
    if depth >= limits.EXTRA_DEPTH:
        cuts.note("extra")
        return None
    if len(value) > limits.EXTRA_ITEMS:
        cuts.note("extra")
    if isinstance(value, list):
        return [_clean_value(name, item, depth + 1, cuts) for item in value[: limits.EXTRA_ITEMS]]
    return _clean_object(value, depth, cuts)


def _clean_object(value: dict[Any, Any], depth: int, cuts: _Cuts) -> dict[str, Any]:
    """An object of the extras: its first `limits.EXTRA_ITEMS` keys cleaned and cut to an
    identifier's length, each value cleaned under its own key's name."""
    cleaned: dict[str, Any] = {}
    for key, item in list(value.items())[: limits.EXTRA_ITEMS]:
        label = clean_text(limits.read_prefix(str(key), limits.ID_CHARS))[: limits.ID_CHARS]
        cleaned[label] = _clean_value(str(key), item, depth + 1, cuts)
    return cleaned


def _clean_extra(extra: tuple[tuple[str, Any], ...], cuts: _Cuts) -> tuple[tuple[str, Any], ...]:
    """The extras cleaned (`_clean_value`), sorted by name, at most `limits.EXTRA_ITEMS`; a
    link that was dropped leaves no empty signal behind."""
    cleaned: dict[str, Any] = {}
    for name, value in extra[: limits.EXTRA_ITEMS]:
        kept = _clean_value(name, _affiliations_read(name, value), 0, cuts)
        if _is_url_name(name) and kept == "":
            continue
        cleaned[clean_text(name)[: limits.ID_CHARS]] = kept
    if len(extra) > limits.EXTRA_ITEMS:
        cuts.note("extra")
    return tuple(sorted(cleaned.items(), key=lambda pair: pair[0]))


def _affiliations_read(name: str, value: Any) -> Any:
    """The `affiliations` list with the TeX of its strings read as Unicode (`tex_to_text`), at
    most `limits.EXTRA_ITEMS` of them; any other extra as it is."""
    if name != "affiliations" or not isinstance(value, list):
        return value
    return [
        tex_to_text(limits.read_prefix(v, limits.EXTRA_TEXT_CHARS)) if isinstance(v, str) else v
        for v in value[: limits.EXTRA_ITEMS]
    ]


def _authors(paper: Paper, cuts: _Cuts) -> dict[str, Any]:
    """The author names (TeX read, cleaned, cut), with their ids and ORCID iDs kept aligned
    when a name cleans to nothing, and at most `limits.AUTHORS` of them."""
    names: list[str] = []
    positions: list[int] = []  # where each name kept was in `paper.authors`
    for position, raw in enumerate(paper.authors):
        if len(names) == limits.AUTHORS:
            cuts.note("authors")
            break
        name = _author_name(raw, cuts)
        if name:
            names.append(name)
            positions.append(position)
    cut = len(names) < len(paper.authors) and "authors" in cuts.fields
    return {
        "authors": tuple(names),
        "author_ids": _aligned(paper.author_ids, positions),
        "author_orcids": _aligned(paper.author_orcids, positions),
        "authors_truncated": paper.authors_truncated or cut,
    }


def _author_name(raw: str, cuts: _Cuts) -> str:
    """One author name: TeX read, cleaned, cut to `limits.AUTHOR_CHARS` (noted in `cuts`)."""
    name = _line(
        tex_to_text(limits.read_prefix(raw, limits.AUTHOR_CHARS)),
        limits.AUTHOR_CHARS,
        "author name",
        cuts,
    )
    if len(raw) > limits.AUTHOR_CHARS * limits.READ_FACTOR:
        cuts.note("author name")
    return name


def _aligned(values: tuple[str, ...], positions: list[int]) -> tuple[str, ...]:
    """The `values` at `positions` ("" past their end); () when there are no values at all."""
    if not values:
        return ()
    return tuple(values[p] if p < len(values) else "" for p in positions)


def _categories(paper: Paper, cuts: _Cuts) -> tuple[str, ...]:
    """The categories cleaned, at most `limits.CATEGORIES`; one too long is left out (noted)."""
    kept: list[str] = []
    for raw in paper.categories:
        term = clean_text(limits.read_prefix(raw, limits.CATEGORY_CHARS))
        if len(term) > limits.CATEGORY_CHARS:
            cuts.note("categories")
            continue
        if term:
            if len(kept) == limits.CATEGORIES:
                cuts.note("categories")
                break
            kept.append(term)
    return tuple(kept)


def bounded_paper(paper: Paper) -> tuple[Paper, tuple[str, ...]]:
    """`paper` as it may be stored (see above), and the fields a limit cut (`limits`): only
    http(s) links, no control characters, every field within its cap.

    When the title, DOI or arXiv id changed, the key follows them (a title fingerprint would
    otherwise be computed from text nobody sees)."""
    cuts = _Cuts()
    title = _line(paper.title, limits.TITLE_CHARS, "title", cuts)
    doi = _bounded_id(paper.doi, cuts)
    arxiv_id = _bounded_id(paper.arxiv_id, cuts)
    url = _bounded_url(paper.url, cuts)
    listing_id = _bounded_listing_id(paper, url, cuts)
    if len(paper.referenced) > limits.REFERENCES:
        cuts.note("references")
    cleaned = replace(
        paper,
        key=_key(paper, title, doi, arxiv_id),
        title=title,
        abstract=_line(paper.abstract, limits.ABSTRACT_CHARS, "abstract", cuts),
        categories=_categories(paper, cuts),
        url=url,
        source=_bounded_id(paper.source, cuts),
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        doi=doi,
        extra=_clean_extra(paper.extra, cuts),
        sources=tuple(_bounded_id(s, cuts) for s in paper.sources[: limits.CATEGORIES]),
        referenced=tuple(r[: limits.ID_CHARS] for r in paper.referenced[: limits.REFERENCES]),
        **_authors(paper, cuts),
    )
    return cleaned, tuple(cuts.fields)


def _bounded_listing_id(paper: Paper, url: str, cuts: _Cuts) -> str:
    """The listing id cleaned (`_bounded_id`); "" when it is the link that `url` dropped."""
    listing_id = _bounded_id(paper.listing_id, cuts)
    if not url and listing_id == clean_text(paper.url[: limits.URL_CHARS + 1]):
        return ""  # a feed entry without an id is known by its link: a dropped one too
    return listing_id


def _key(paper: Paper, title: str, doi: str, arxiv_id: str) -> str:
    """The paper's key, made again when cleaning changed its title, DOI or arXiv id."""
    if (title, doi, arxiv_id) == (paper.title, paper.doi, paper.arxiv_id):
        return paper.key
    fallback = clean_text(paper.key)[: limits.ID_CHARS]
    return (paper_keys(arxiv_id, doi, title) or (fallback,))[0]


def clean_paper(paper: Paper) -> Paper:
    """`paper` as it may be stored: only http(s) links, no control characters, every field
    within its cap (`bounded_paper`, without saying what was cut)."""
    return bounded_paper(paper)[0]


def clean_result(result: FetchResult) -> FetchResult:
    """Every paper of a fetch result cleaned (`bounded_paper`), and a warning line for each
    field a limit cut: how many papers, and the first few of them."""
    cut: dict[str, list[str]] = {}

    def clean(paper: Paper) -> Paper:
        kept, fields = bounded_paper(paper)
        for name in fields:
            cut.setdefault(name, []).append(kept.key)
        return kept

    papers = tuple(clean(p) for p in result.papers)
    updates = tuple(clean(p) for p in result.updates)
    warnings = (*result.warnings, *(_cut_line(name, keys) for name, keys in cut.items()))
    return replace(result, papers=papers, updates=updates, warnings=warnings)


def _cut_line(name: str, keys: list[str]) -> str:
    """The warning for one field a limit cut: what, in how many papers, the first few keys."""
    shown = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")
    count = f"{len(keys)} paper" + ("s" if len(keys) != 1 else "")
    return f"{_CUT_LINES[name]}: {count} ({shown})"
