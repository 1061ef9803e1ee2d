"""Ingest cleaning: what every source's papers pass through before the store sees them.

Three rules (DESIGN.md, "Limits"; TeX names), in one pure function, `clean_paper`:

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

`clean_result` applies it to a whole fetch result; the fetch job calls it for every source, and
`digest match --input` for its listing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from digest.models import Paper, paper_keys
from digest.sources import FetchResult

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
        return value  # most names: no converter built (that was most of ingest's time)
    from pylatexenc.latex2text import LatexNodes2Text
    from pylatexenc.latexwalker import LatexWalkerError

    converter = LatexNodes2Text()
    for _ in range(_TEX_PASSES):
        if not _TEX_MARKS.search(value):
            break
        source = _LETTER_BEFORE_WORD.sub(r"\1{}", _PERCENT.sub(r"\\%", value))
        try:
            text = unicodedata.normalize("NFC", converter.latex_to_text(source))
        except LatexWalkerError:  # pragma: no cover - the tolerant parser does not raise
            break
        if text == value:
            break
        value = text
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
    return name.endswith("_url") or name in _URL_NAMES


def _clean_value(name: str, value: Any) -> Any:
    """One `extra` value: URLs checked, strings cleaned, inside lists and objects too."""
    if isinstance(value, str):
        return safe_url(value) if _is_url_name(name) else clean_text(value)
    if isinstance(value, list):
        return [_clean_value(name, item) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(str(k), v) for k, v in value.items()}
    return value


def _clean_extra(extra: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    cleaned: dict[str, Any] = {}
    for name, value in extra:
        if name == "affiliations" and isinstance(value, list):
            value = [tex_to_text(v) if isinstance(v, str) else v for v in value]
        kept = _clean_value(name, value)
        if _is_url_name(name) and kept == "":
            continue  # a dropped link leaves no empty signal behind
        cleaned[clean_text(name)] = kept
    return tuple(sorted(cleaned.items(), key=lambda pair: pair[0]))


def clean_paper(paper: Paper) -> Paper:
    """`paper` as it may be stored: only http(s) links, no control characters (see above).

    When the title, DOI or arXiv id changed, the key follows them (a title fingerprint would
    otherwise be computed from text nobody sees)."""
    title = clean_text(paper.title)
    doi = clean_text(paper.doi)
    arxiv_id = clean_text(paper.arxiv_id)
    url = safe_url(paper.url)
    listing_id = clean_text(paper.listing_id)
    if not url and listing_id == clean_text(paper.url):
        listing_id = ""  # a feed entry without an id is known by its link: a dropped one too
    key = paper.key
    if (title, doi, arxiv_id) != (paper.title, paper.doi, paper.arxiv_id):
        key = (paper_keys(arxiv_id, doi, title) or (clean_text(key),))[0]
    return replace(
        paper,
        key=key,
        title=title,
        authors=tuple(name for a in paper.authors if (name := clean_text(tex_to_text(a)))),
        abstract=clean_text(paper.abstract),
        categories=tuple(term for c in paper.categories if (term := clean_text(c))),
        url=url,
        source=clean_text(paper.source),
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        doi=doi,
        extra=_clean_extra(paper.extra),
        sources=tuple(clean_text(s) for s in paper.sources),
    )


def clean_result(result: FetchResult) -> FetchResult:
    """Every paper of a fetch result cleaned (`clean_paper`)."""
    return replace(
        result,
        papers=tuple(clean_paper(p) for p in result.papers),
        updates=tuple(clean_paper(p) for p in result.updates),
    )
