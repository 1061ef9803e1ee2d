"""Convert the text captures of research listing pages into listing JSONL.

The pages live in ``../shared/seeds`` (or ``$DIGEST_SEED_PAGES``) and come in two layouts:

* author pages (``000``, ``001``): an item starts with a line such as ``LGDec 14, 2022`` or
  ``CVOct 24, 2023Code`` (arXiv category code glued to the date, ``Code`` glued to the end when
  the paper has code), then the title, the author line ``A, B, C et al. · affiliation`` and the
  abstract.  On some pages the title is glued to the author line with no separator at all
  (``...Dataset ReinforcementFartash Faghri, Hadi Pouransari et al. · utoronto``);
  :func:`split_glued` takes such a line apart.
* Hugging Face paper lists (``002``-``004``): an optional date header, then per item the title,
  the abstract and optionally ``• N authors`` (or an organisation card), ``·`` and the item's own
  date with an optional upvote count (``Mar 21, 2024 2``).

Usage: ``python seeds/convert.py [--pages DIR] [--out DIR] [--year 2026]``.  One JSONL file is
written per page, with the page's stem.  Only the standard library is used, and the output is
byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

DEFAULT_YEAR = 2026
SOURCE_AUTHOR_PAGE = "seed:author-page"
SOURCE_HF_PAPERS = "seed:hf-papers"
EXTRA_ORDER = ("upvotes", "code", "affiliation", "author_count", "page")

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_MONTH_RE = "|".join(MONTHS)

# arXiv "cs" archive subject classes, shown on the author pages without their "cs." prefix.
CS_CODES = frozenset(
    {
        "AI", "AR", "CC", "CE", "CG", "CL", "CR", "CV", "CY", "DB", "DC", "DL", "DM", "DS",
        "ET", "FL", "GL", "GR", "GT", "HC", "IR", "IT", "LG", "LO", "MA", "MM", "MS", "NA",
        "NE", "NI", "OH", "OS", "PF", "PL", "RO", "SC", "SD", "SE", "SI", "SY",
    }
)  # fmt: skip
# Short codes from other archives that the author pages show the same way.
OTHER_CODES = {"ML": "stat.ML"}

# `LGDec 14, 2022`, `CLMar 4`, `CVOct 24, 2023Code`, `AIApr 9Code`.
ITEM_HEAD_RE = re.compile(
    rf"^(?P<cat>[A-Z]{{2}})(?P<month>{_MONTH_RE}) (?P<day>\d{{1,2}})"
    rf"(?:, (?P<year>\d{{4}}))?(?P<code>Code)?$"
)
# `Apr 25, 2024`, `Mar 21, 2024 2`, `Oct 14 2`, `Mar 12`.
HF_DATE_RE = re.compile(
    rf"^(?P<month>{_MONTH_RE}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?: (?P<upvotes>\d+))?$"
)
# `• 5 authors`, possibly preceded by the names the page shows.
HF_AUTHORS_RE = re.compile(r"^(?:(?P<names>.*?)\s*)?•\s*(?P<count>\d+) authors?$")
# ` · berkeley`, ` · harvard, microsoft-research` at the end of an author line.
AFFILIATION_RE = re.compile(r" · (?P<aff>[a-z0-9][\w.-]*(?:, [a-z0-9][\w.-]*)*)$")
PAPER_COUNT_RE = re.compile(r"^(?P<count>\d+) Papers?$")
ET_AL = " et al."

HF_CHROME = frozenset(
    {
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
    }
)
# Lowercase words allowed inside (not at the start of) a name: `Ludwig van Beethoven`.
NAME_PARTICLES = frozenset(
    {"al", "bin", "da", "das", "de", "del", "della", "den", "der", "di", "dos", "du", "la", "le"}
    | {"van", "von", "zu"}
)
# Prefixes after which a name part may have a second capital: `McDonald`, `MacKay`.
NAME_PREFIXES = ("", "Mc", "Mac")
# Characters after which a glued first name may start (the title's last character).
TITLE_END_PUNCT = frozenset("?!.)]}\"'’”:")
MAX_NAME_TOKENS = 6


class Authors(NamedTuple):
    """An author line taken apart."""

    names: list[str]
    truncated: bool
    affiliation: str | None


def collapse(text: str) -> str:
    """Collapse every run of whitespace to one space and trim the ends."""
    return " ".join(text.split())


def make_date(year: int, month: str, day: str) -> str:
    """Return an ISO date, raising ValueError for an impossible one."""
    return date(year, MONTHS[month], int(day)).isoformat()


def map_category(code: str) -> str:
    """Map an author-page category code (``LG``) to its full arXiv category (``cs.LG``)."""
    if code in CS_CODES:
        return f"cs.{code}"
    if code in OTHER_CODES:
        return OTHER_CODES[code]
    raise ValueError(f"unknown category code {code!r}")


# --------------------------------------------------------------------------------------------
# Names


def is_name_part(part: str) -> bool:
    """True for one capitalised part of a name word: ``Faghri``, ``A``, ``McDonald``."""
    if not part.isalpha():
        return False
    for prefix in NAME_PREFIXES:
        rest = part[len(prefix) :] if part.startswith(prefix) else ""
        if rest and rest[0].isupper() and (len(rest) == 1 or rest[1:].islower()):
            return True
    return False


def is_name_token(token: str, *, first: bool) -> bool:
    """True if ``token`` can be one word of a person's name as written on these pages.

    Accepts capitalised words (``Faghri``, ``Lauren.``, ``Han-Byul``, ``O'Neil``, ``McDonald``),
    initials (``A``, ``M.``, ``J.R.``) and, except in first position, lowercase particles
    (``van``, ``de``).  Any other lowercase-to-uppercase step inside a word
    (``ReinforcementFartash``) is rejected: that is what a title glued to a name looks like.
    """
    if not first and token in NAME_PARTICLES:
        return True
    body = token[:-1] if token.endswith(".") else token
    return bool(body) and all(is_name_part(part) for part in re.split(r"[-'’.]", body))


def is_plain_name(text: str, *, min_tokens: int = 1) -> bool:
    """True if ``text`` looks like one person's name (1-6 name tokens)."""
    tokens = text.split(" ")
    if not min_tokens <= len(tokens) <= MAX_NAME_TOKENS:
        return False
    return all(is_name_token(tok, first=i == 0) for i, tok in enumerate(tokens))


def split_tail(line: str) -> tuple[str, bool, str | None]:
    """Strip ``· affiliation`` and ``et al.`` off the end of an author line.

    Returns the remaining text, whether ``et al.`` was shown, and the affiliation (or None).
    """
    affiliation = None
    match = AFFILIATION_RE.search(line)
    if match:
        affiliation = match.group("aff")
        line = line[: match.start()]
    truncated = line.endswith(ET_AL)
    if truncated:
        line = line[: -len(ET_AL)]
    return line.strip(), truncated, affiliation


def parse_author_line(line: str) -> Authors | None:
    """Parse a stand-alone author line, or return None if ``line`` is not one."""
    rest, truncated, affiliation = split_tail(collapse(line))
    names = [name.strip() for name in rest.split(",")]
    if not names or not all(is_plain_name(name) for name in names):
        return None
    return Authors(names, truncated, affiliation)


# --------------------------------------------------------------------------------------------
# Titles glued to author lines


def glue_points(word: str) -> list[int]:
    """Positions inside ``word`` where a glued first name could begin.

    A position ``p`` qualifies when ``word[p]`` is uppercase and either the previous character
    is lowercase, a digit or closing punctuation (``ModelsIman``, ``2025Ethan``), or the
    previous character is uppercase and the next one lowercase (``RLCaglar``, ``RLHFAtoosa``).
    """
    points = []
    for p in range(1, len(word)):
        if not word[p].isupper():
            continue
        prev = word[p - 1]
        nxt = word[p + 1] if p + 1 < len(word) else ""
        after_title_end = prev.islower() or prev.isdigit() or prev in TITLE_END_PUNCT
        after_acronym = prev.isupper() and nxt.islower()
        if after_title_end or after_acronym:
            points.append(p)
    return points


def glued_candidates(segment: str) -> list[tuple[str, str]]:
    """All ways to read ``segment`` as ``(title, first author)``, best first.

    The first author must be a plain name of at least two words whose first word starts at a
    glue point of the word it is glued into; every word after that belongs to the name.  As the
    real glued word (``ReinforcementFartash``) is never a name word itself, no word to its left
    can yield a candidate, so the leftmost candidate word is the glued one, and within it the
    earliest glue point gives the longest valid first name (``O'Neil`` rather than ``Neil``).
    """
    words = segment.split(" ")
    candidates = []
    for i in range(max(0, len(words) - MAX_NAME_TOKENS), len(words)):
        word = words[i]
        for p in glue_points(word):
            name = " ".join([word[p:], *words[i + 1 :]])
            if is_plain_name(name, min_tokens=2):
                title = " ".join([*words[:i], word[:p]])
                candidates.append((title, name))
    return candidates


def choose_candidate(candidates: list[tuple[str, str]], known: set[str]) -> tuple[str, str]:
    """Pick the split whose first author also appears un-glued, else the first candidate."""
    for candidate in candidates:
        if candidate[1] in known:
            return candidate
    return candidates[0]


def split_glued(line: str, known: set[str] | None = None) -> tuple[str, Authors] | None:
    """Split a title glued to its author line; return None if ``line`` is not such a line.

    The author part ends the line (``A, B, C[ et al.][ · affiliation]``).  Scanning the
    comma-separated segments from the right, every segment that is a plain (or known) name is an
    author; the first one that is not is ``<title><First author>`` with the first author's first
    name glued to the title's last character, split at a glue point (see :func:`glue_points`).
    Commas to the left of that segment belong to the title.  ``known`` holds names seen
    un-glued and breaks ties between several possible splits.
    """
    known = known or set()
    rest, truncated, affiliation = split_tail(collapse(line))
    segments = rest.split(", ")
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        if index > 0 and (segment in known or is_plain_name(segment)):
            continue
        candidates = glued_candidates(segment)
        if not candidates:
            return None
        glued_title, first = choose_candidate(candidates, known)
        title = ", ".join([*segments[:index], glued_title])
        names = [first, *segments[index + 1 :]]
        return title, Authors(names, truncated, affiliation)
    return None


# --------------------------------------------------------------------------------------------
# Records


def make_record(
    *,
    title: str,
    authors: Authors | None,
    abstract: str,
    categories: list[str],
    published: str,
    source: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Build one listing record with the schema's key order."""
    extra_sorted = {key: extra[key] for key in EXTRA_ORDER if key in extra}
    return {
        "id": "",
        "title": collapse(title),
        "authors": list(authors.names) if authors else [],
        "abstract": collapse(abstract),
        "categories": categories,
        "published": published,
        "url": "",
        "source": source,
        "authors_truncated": bool(authors and authors.truncated),
        "extra": extra_sorted,
    }


def nonblank(lines: Iterable[str]) -> list[str]:
    """The stripped non-blank lines of ``lines``."""
    return [line.strip() for line in lines if line.strip()]


def is_author_page(lines: Sequence[str]) -> bool:
    """True if the page is an author page (items start with ``LGDec 14, 2022`` lines)."""
    return any(ITEM_HEAD_RE.match(line) for line in lines)


# --------------------------------------------------------------------------------------------
# Author pages


def author_page_items(lines: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Split an author page into its header lines and one list of lines per item."""
    header: list[str] = []
    items: list[list[str]] = []
    for line in lines:
        if ITEM_HEAD_RE.match(line):
            items.append([line])
        elif items:
            items[-1].append(line)
        else:
            header.append(line)
    return header, items


def trailing_names(line: str) -> list[str]:
    """The plain names at the end of a (possibly glued) author line, excluding the first one.

    Scanning the comma-separated segments from the right, stops at the first segment that is
    not a plain name (the glued ``<title><First author>`` segment) and never takes segment 0.
    """
    rest, _, _ = split_tail(collapse(line))
    segments = rest.split(", ")
    names = []
    for segment in reversed(segments[1:]):
        if not is_plain_name(segment):
            break
        names.append(segment)
    return names


def has_author_line(item: Sequence[str]) -> bool:
    """True if the item's third line (after head and title) is a stand-alone author line."""
    return len(item) > 2 and parse_author_line(item[2]) is not None


def known_names(items: Sequence[Sequence[str]]) -> set[str]:
    """Names that appear un-glued on a page: stand-alone author lines and non-first authors."""
    names: set[str] = set()
    for item in items:
        authors = parse_author_line(item[2]) if len(item) > 2 else None
        if authors is not None:
            names.update(authors.names)
        elif len(item) > 1:
            names.update(trailing_names(item[1]))
    return names


def convert_author_item(
    item: Sequence[str], stem: str, year: int, known: set[str] | None
) -> dict[str, Any]:
    """Convert one author-page item (head line, then the item's non-blank lines).

    ``known`` is None on pages with stand-alone author lines; otherwise the page glues titles
    to author lines and ``known`` holds the names it shows un-glued.
    """
    head = ITEM_HEAD_RE.match(item[0])
    assert head is not None
    body = list(item[1:])
    if not body:
        raise ValueError(f"{stem}: empty item after {item[0]!r}")
    title, abstract_lines = body[0], body[1:]
    authors = parse_author_line(body[1]) if len(body) > 1 else None
    if authors is not None:
        abstract_lines = body[2:]
    elif known is not None:
        glued = split_glued(body[0], known)
        if glued is not None:
            title, authors = glued
    extra: dict[str, Any] = {"page": stem}
    if head.group("code"):
        extra["code"] = True
    if authors is not None and authors.affiliation:
        extra["affiliation"] = authors.affiliation
    item_year = int(head.group("year")) if head.group("year") else year
    return make_record(
        title=title,
        authors=authors,
        abstract=" ".join(abstract_lines),
        categories=[map_category(head.group("cat"))],
        published=make_date(item_year, head.group("month"), head.group("day")),
        source=SOURCE_AUTHOR_PAGE,
        extra=extra,
    )


def convert_author_page(lines: Sequence[str], stem: str, year: int) -> list[dict[str, Any]]:
    """Convert an author page; checks the item count against the ``N Papers`` header.

    A page with no stand-alone author line at all glues each title to its author line; only
    there are titles taken apart with :func:`split_glued`.
    """
    header, items = author_page_items(lines)
    glued_layout = not any(has_author_line(item) for item in items)
    known = known_names(items) if glued_layout else None
    records = [convert_author_item(item, stem, year, known) for item in items]
    for line in header:
        match = PAPER_COUNT_RE.match(line)
        if match and int(match.group("count")) != len(records):
            raise ValueError(f"{stem}: header says {line!r} but found {len(records)} items")
    return records


# --------------------------------------------------------------------------------------------
# Hugging Face paper lists


def parse_hf_authors(line: str) -> tuple[Authors, int] | None:
    """Parse ``• N authors`` (optionally preceded by names) into the names shown and N.

    Returns None if ``line`` is not such a line.  The list counts as truncated when fewer
    than N names are shown.
    """
    match = HF_AUTHORS_RE.match(line)
    if not match:
        return None
    count = int(match.group("count"))
    names_text = (match.group("names") or "").strip().rstrip(",")
    names = [name.strip() for name in names_text.split(",") if name.strip()]
    return Authors(names, len(names) < count, None), count


def convert_hf_page(lines: Sequence[str], stem: str, year: int) -> list[dict[str, Any]]:
    """Convert a Hugging Face papers page.

    Per item: title, abstract, then optionally an author line (``• N authors``) or an
    organisation card (dropped), then ``·`` and the item's date.  Items without a date of their
    own take the nearest preceding date header.
    """
    records: list[dict[str, Any]] = []
    header_date: str | None = None
    lines = [line for line in lines if line not in HF_CHROME]
    i = 0
    while i < len(lines):
        match = HF_DATE_RE.match(lines[i])
        if match:
            header_date = make_date(int(match.group("year") or year), match["month"], match["day"])
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] == "·" or HF_DATE_RE.match(lines[i + 1]):
            raise ValueError(f"{stem}: title without abstract: {lines[i]!r}")
        title, abstract = lines[i], lines[i + 1]
        i += 2
        extra: dict[str, Any] = {}
        authors: Authors | None = None
        parsed = parse_hf_authors(lines[i]) if i < len(lines) else None
        if parsed is not None:
            authors, extra["author_count"] = parsed
            i += 1
        elif i + 1 < len(lines) and lines[i + 1] == "·":
            i += 1  # an organisation card such as `parameterlab Parameter Lab`
        published = header_date
        if i < len(lines) and lines[i] == "·":
            match = HF_DATE_RE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if match is None:
                raise ValueError(f"{stem}: `·` not followed by a date after {title!r}")
            published = make_date(int(match["year"] or year), match["month"], match["day"])
            if match["upvotes"]:
                extra["upvotes"] = int(match["upvotes"])
            i += 2
        if published is None:
            raise ValueError(f"{stem}: no date for {title!r}")
        extra["page"] = stem
        records.append(
            make_record(
                title=title,
                authors=authors,
                abstract=abstract,
                categories=[],
                published=published,
                source=SOURCE_HF_PAPERS,
                extra=extra,
            )
        )
    return records


# --------------------------------------------------------------------------------------------
# Entry points


def convert_page(text: str, stem: str, year: int = DEFAULT_YEAR) -> list[dict[str, Any]]:
    """Convert one page's text to listing records, in page order."""
    lines = nonblank(text.splitlines())
    if is_author_page(lines):
        return convert_author_page(lines, stem, year)
    return convert_hf_page(lines, stem, year)


def to_jsonl(records: Iterable[dict[str, Any]]) -> str:
    """Serialise records as JSONL: one object a line, ``\\n`` line ends, trailing newline."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def convert_all(
    pages_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], year: int = DEFAULT_YEAR
) -> list[Path]:
    """Convert every ``*.txt`` page in ``pages_dir`` into ``out_dir/<stem>.jsonl``."""
    pages = sorted(Path(pages_dir).glob("*.txt"))
    if not pages:
        raise FileNotFoundError(f"no *.txt pages in {pages_dir}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages:
        records = convert_page(page.read_text(encoding="utf-8"), page.stem, year)
        target = out / f"{page.stem}.jsonl"
        target.write_bytes(to_jsonl(records).encode("utf-8"))
        written.append(target)
    return written


def default_pages_dir() -> Path:
    """``$DIGEST_SEED_PAGES``, else ``shared/seeds`` beside the repository."""
    env = os.environ.get("DIGEST_SEED_PAGES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "seeds"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=default_pages_dir())
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--year", type=int, default=DEFAULT_YEAR)
    args = parser.parse_args(argv)
    for path in convert_all(args.pages, args.out, args.year):
        count = len(path.read_text(encoding="utf-8").splitlines())
        print(f"{path}: {count} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
