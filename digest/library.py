"""A reader's library: the papers they keep, read from BibTeX, RIS and CSL-JSON exports.

Each entry is identified like a paper (`models.paper_keys`: arXiv id, DOI, title fingerprint), so
a library paper is known again when a source lists it. Every file is bounded (`MAX_FILE_BYTES`,
`MAX_ENTRIES`), and only regular files are read (a FIFO or a device never blocks a read); a
file that is missing, unreadable, too big or not in its format gives one
warning line naming it, and the other files still load. The parsers (bibtexparser, rispy) are
imported only when a library is read: a profile without one costs nothing.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from digest import limits
from digest.errors import ConfigError
from digest.localfiles import UnreadableFile, read_regular_file
from digest.models import paper_keys, parse_arxiv_id
from digest.tex import readable

LibraryFormat = Literal["bibtex", "ris", "csl-json"]
MAX_FILE_BYTES = 20 * 1024 * 1024  # a Zotero export of ~20,000 papers with abstracts
MAX_ENTRIES = 20_000  # per file; the rest of a longer file is left out, with a warning
# The fields read from one BibTeX file, all together, once its `@string` macros are expanded:
# twice the file bound, far more than macros save in a real library; past it the file is
# refused (a "macro bomb" of a few hundred bytes expands to gigabytes).
MAX_EXPANDED_CHARS = 2 * MAX_FILE_BYTES
_SUFFIXES: dict[str, LibraryFormat] = {
    ".bib": "bibtex",
    ".bibtex": "bibtex",
    ".biblatex": "bibtex",
    ".ris": "ris",
    ".json": "csl-json",
    ".csljson": "csl-json",
}
_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv[:\s]*|arxiv\.org/(?:abs|pdf)/)(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})",
    re.I,
)
_DOI_ARXIV = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
_BRACES = re.compile(r"(?<!\\)[{}]")
_CSL_TAGS = re.compile(r"</?(?:i|b|sup|sub|span)[^>]*>")


class LibraryError(ConfigError):
    """One library file could not be read (named in the message)."""


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """One paper of a reader's library."""

    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    arxiv_id: str = ""
    doi: str = ""
    url: str = ""
    origin: str = ""  # the file it came from

    @property
    def keys(self) -> tuple[str, ...]:
        """The identity keys a stored paper would have (strongest first)."""
        return paper_keys(self.arxiv_id, self.doi, self.title)


@dataclass(frozen=True, slots=True)
class Library:
    """The entries of every library file of a profile, and a line per file that failed."""

    entries: tuple[LibraryEntry, ...]
    warnings: tuple[str, ...] = ()


def file_format(path: Path, head: bytes) -> LibraryFormat:
    """The format of a library file: by its suffix, else by how it starts."""
    by_suffix = _SUFFIXES.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"[", b"{"):
        return "csl-json"
    if re.match(rb"TY  - ", head.lstrip(b"\xef\xbb\xbf \t\r\n")):
        return "ris"
    return "bibtex"


# Byte-order marks of the encodings Windows tools save exports in, longest first (UTF-32's
# little-endian mark starts with UTF-16's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_library(raw: bytes) -> str:
    """The text of a library file: UTF-8; UTF-16 or UTF-32 as its byte-order mark says, or
    UTF-16 without one (every other byte NUL, as Windows "Unicode" saves plain text); else
    Latin-1, as old BibTeX files are. LibraryError, naming the encoding, when it cannot be read
    (a UTF-16 file read as Latin-1 was "no BibTeX entries found")."""
    encoding = _bom_encoding(raw) or _utf16_without_bom(raw[:512])
    if encoding:
        return _decode_as(raw, encoding)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old BibTeX files: every byte is a character


def _bom_encoding(raw: bytes) -> str:
    """The encoding the file's byte-order mark names, "" without one."""
    return next((name for bom, name in _BOMS if raw.startswith(bom)), "")


def _utf16_without_bom(head: bytes) -> str:
    """ "utf-16-le" or "utf-16-be" when every other byte of `head` is NUL, "" when it holds no
    NUL; LibraryError for NUL bytes in any other pattern (not a text file)."""
    if len(head) < 2 or b"\0" not in head:
        return ""
    quarter = len(head) // 4
    odd, even = head[1::2].count(0), head[0::2].count(0)
    # little-endian: the high (odd) bytes of ASCII text are NUL; big-endian: the even ones
    for encoding, nuls, others in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if nuls > quarter and not others:
            return encoding
    raise LibraryError("holds NUL bytes: not a text file in UTF-8 or UTF-16; export it as UTF-8")


def _decode_as(raw: bytes, encoding: str) -> str:
    """`raw` decoded as `encoding` (the one it declares); LibraryError naming it otherwise."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.upper().replace("-SIG", "").replace("-LE", "").replace("-BE", "")
        raise LibraryError(
            f"starts as {name} but is not valid {name} ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8"
        ) from None


def content_digest(paths: Sequence[Path]) -> str:
    """A hash of the library files' bytes (a missing or unreadable file hashes as such), to
    know without parsing whether a library changed."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(hashlib.sha256(read_regular_file(path, MAX_FILE_BYTES)).digest())
        except UnreadableFile as exc:
            digest.update(f"unreadable: {exc}".encode())
    return digest.hexdigest()


def load_library(paths: Iterable[Path]) -> Library:
    """Every entry of every file, in order; a file that fails is a warning line, not an error."""
    entries: list[LibraryEntry] = []
    warnings: list[str] = []
    for path in paths:
        try:
            found, notes = read_library_file(path)
        except LibraryError as exc:
            warnings.append(str(exc))
            continue
        entries.extend(found)
        warnings.extend(notes)
    return Library(tuple(entries), tuple(warnings))


def read_library_file(path: Path) -> tuple[tuple[LibraryEntry, ...], tuple[str, ...]]:
    """The entries of one file and any warning about it (entries left out); LibraryError (one
    line naming the file) when it cannot be read at all."""
    records, notes = _at_most_max_entries(path, _records(path))
    cut = sum(_bound_record(r) for r in records)
    if cut:
        notes.append(_cut_note(path, cut))
    entries = tuple(e for e in (_entry(r, str(path)) for r in records) if e is not None)
    return entries, (*notes, *_nothing_found(path, records, entries))


def _records(path: Path) -> list[Record]:
    """The records of one file, parsed in its format; LibraryError naming the file when it
    cannot be (a parser's own failure on a bad file included: it fails this file only)."""
    text = _library_text(path)
    kind = file_format(path, text[:64].encode())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return _PARSERS[kind](text)
    except LibraryError as exc:
        raise LibraryError(f"library {path}: {exc}") from exc
    except RecursionError as exc:
        raise LibraryError(f"library {path}: not readable as {kind}: nested too deeply") from exc
    except Exception as exc:
        # Some parser errors have no message: their kind is the reason then.
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise LibraryError(f"library {path}: not readable as {kind}: {detail}") from exc


def _at_most_max_entries(path: Path, records: list[Record]) -> tuple[list[Record], list[str]]:
    """The first MAX_ENTRIES records, and a warning when there were more."""
    if len(records) <= MAX_ENTRIES:
        return records, []
    note = f"library {path}: {len(records)} entries, only the first {MAX_ENTRIES} are used"
    return records[:MAX_ENTRIES], [note]


def _cut_note(path: Path, cut: int) -> str:
    """The warning that `cut` entries of a file were cut to the field limits."""
    return (
        f"library {path}: {cut} entr{'y' if cut == 1 else 'ies'} cut to the field limits "
        f"(title {limits.TITLE_CHARS:,}, abstract {limits.ABSTRACT_CHARS:,}, author name "
        f"{limits.AUTHOR_CHARS:,} characters, {limits.AUTHORS:,} authors)"
    )


def _library_text(path: Path) -> str:
    """The decoded text of one file (`decode_library`); LibraryError naming the file."""
    raw = _read_bounded(path)
    try:
        return decode_library(raw)
    except LibraryError as exc:
        raise LibraryError(f"library {path}: {exc}") from exc


def _nothing_found(
    path: Path, records: Sequence[Record], entries: Sequence[LibraryEntry]
) -> list[str]:
    """The warning for a file that gave no entry: none in it, or none that can be known."""
    if not records:
        return [f"library {path}: no entries found"]
    if not entries:
        return [f"library {path}: no entry with a title, DOI or arXiv id"]
    return []


def _read_bounded(path: Path) -> bytes:
    """A regular file within MAX_FILE_BYTES (a FIFO or device is never opened for a blocking
    read), or LibraryError saying why not."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except UnreadableFile as exc:
        raise LibraryError(f"library {path}: {exc}") from exc


# --- the formats: each gives plain dicts of title, abstract, authors, arxiv, doi, url ----------

Record = dict[str, Any]


# The BibTeX fields read; only these are expanded.
_BIBTEX_FIELDS = (
    "title",
    "abstract",
    "author",
    "eprint",
    "archiveprefix",
    "eprinttype",
    "doi",
    "url",
    "journal",
    "note",
    "howpublished",
)


def _bibtex(text: str) -> list[Record]:
    """The records of a BibTeX file, its `@string` macros expanded in the fields read only."""
    database = _bibtex_database(text)
    macros = _Macros(database.strings)
    fields = [_fields_read(entry) for entry in database.entries]
    _check_expanded_size(macros, fields)
    return [_bibtex_record(macros.expand_all(raw)) for raw in fields]


def _fields_read(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields of a BibTeX entry that are read (`_BIBTEX_FIELDS`), still unexpanded."""
    return {k: entry[k] for k in _BIBTEX_FIELDS if k in entry}


def _bibtex_database(text: str) -> Any:
    """The file as bibtexparser reads it, macros left unexpanded; LibraryError when a file with
    an `@` holds no entry (nor only comments and macros)."""
    import bibtexparser
    from bibtexparser.bparser import BibTexParser

    # Macros are not interpolated by the parser: it would expand every `@string` in full as it
    # is defined (a few hundred bytes of `m # m # …` over seven levels expand to gigabytes).
    # `_Macros` expands only the fields read, after adding up their size.
    parser = BibTexParser(
        common_strings=True, ignore_nonstandard_types=False, interpolate_strings=False
    )
    database = bibtexparser.loads(text, parser=parser)
    if not database.entries and "@" in text and not re.search(r"@\s*(comment|string)", text, re.I):
        raise LibraryError("no BibTeX entries found")
    return database


def _check_expanded_size(macros: _Macros, fields: list[dict[str, Any]]) -> None:
    """LibraryError when the fields read expand past MAX_EXPANDED_CHARS (a macro bomb)."""
    total = sum(macros.size(value) for entry in fields for value in entry.values())
    if total > MAX_EXPANDED_CHARS:
        raise LibraryError(
            f"its @string macros expand to {total:,} characters, more than "
            f"{MAX_EXPANDED_CHARS:,} (a macro bomb?); not read"
        )


def _bibtex_record(entry: dict[str, str]) -> Record:
    """A record from one BibTeX entry's expanded fields."""
    return {
        "title": _tex_text(entry.get("title", "")),
        "abstract": _tex_text(entry.get("abstract", "")),
        "authors": [_tex_text(a) for a in _split_bibtex_authors(entry.get("author", ""))],
        "arxiv": _arxiv_eprint(entry),
        "doi": entry.get("doi", ""),
        "url": entry.get("url", ""),
        "more": " ".join(entry.get(k, "") for k in ("journal", "note", "howpublished")),
    }


def _arxiv_eprint(entry: dict[str, str]) -> str:
    """The entry's eprint when it is an arXiv one: the archive named, arXiv when none is."""
    kind = (entry.get("archiveprefix") or entry.get("eprinttype") or "arxiv").lower()
    return entry.get("eprint", "") if kind == "arxiv" else ""


class _Macros:
    """`@string` macros expanded with their size known first: a field's size is added up
    from the macros' sizes (each computed once), never by building it, and a field is built
    only as far as any field is read (`limits.read_prefix`).

    bibtexparser (interpolate_strings=False) gives a value as a str, or as an expression: a
    list of strs and macro references (`BibDataString`, by `name`). An undefined macro reads
    as nothing, as BibTeX reads it (with a warning there); one defined through itself refuses
    the file.
    """

    def __init__(self, strings: dict[str, Any]) -> None:
        self.strings = strings
        self.sizes: dict[str, int] = {}
        self.active: set[str] = set()

    def parts(self, value: Any) -> list[Any]:
        """The parts of a value: itself if it is a str, else the expression's parts."""
        return [value] if isinstance(value, str) else list(getattr(value, "expr", []))

    def size(self, value: Any) -> int:
        """The length `value` expands to, without expanding it."""
        total = 0
        for part in self.parts(value):
            if isinstance(part, str):
                total += len(part)
                continue
            name = str(getattr(part, "name", ""))
            if name not in self.sizes:
                if name in self.active:
                    raise LibraryError(f"the @string macro {name[:40]!r} is defined through itself")
                self.active.add(name)
                self.sizes[name] = self.size(self.strings.get(name, ""))
                self.active.discard(name)
            total += self.sizes[name]
        return total

    def expand(self, value: Any, limit: int = limits.ABSTRACT_CHARS * limits.READ_FACTOR) -> str:
        """`value` expanded, as far as `limit` characters."""
        pieces: list[str] = []
        left = limit
        for part in self.parts(value):
            if left <= 0:
                break
            text = (
                part
                if isinstance(part, str)
                else self.expand(self.strings.get(str(getattr(part, "name", "")), ""), left)
            )
            pieces.append(text[:left])
            left -= len(pieces[-1])
        return "".join(pieces)

    def expand_all(self, fields: dict[str, Any]) -> dict[str, str]:
        """Every field expanded (each as far as `expand` goes)."""
        return {name: self.expand(value) for name, value in fields.items()}


def _split_bibtex_authors(value: str) -> list[str]:
    """`Last, First and Other, Name` as names (`First Last`), braces kept for `_tex_text`."""
    names = []
    for part in re.split(r"\s+and\s+", value.strip()):
        if not part:
            continue
        last, comma, first = part.partition(",")
        names.append(f"{first.strip()} {last.strip()}".strip() if comma else part.strip())
    return names


def _tex_text(value: str) -> str:
    """A BibTeX field as text: TeX accents and math read (digest.tex), protecting braces
    dropped, white space collapsed."""
    text = readable(limits.read_prefix(value, limits.ABSTRACT_CHARS)).text
    return " ".join(_BRACES.sub("", text).split())


def _ris(text: str) -> list[Record]:
    """The records of a RIS file."""
    import rispy

    if not re.search(r"^TY  - ", text, re.M):
        raise LibraryError("no RIS records (lines 'TY  - …') found")
    return [_ris_record(entry) for entry in rispy.loads(text)]


def _ris_record(entry: dict[str, Any]) -> Record:
    """A record from one rispy entry (its title under whichever tag the export used)."""
    title = next((entry[tag] for tag in _RIS_TITLES if entry.get(tag)), "")
    authors = [*entry.get("authors", []), *entry.get("first_authors", [])]
    return {
        "title": str(title),
        "abstract": str(entry.get("abstract", "")),
        "authors": [_first_last(a) for a in authors if isinstance(a, str)],
        "arxiv": "",
        "doi": str(entry.get("doi", "")),
        "url": " ".join(_ris_list(entry, "urls")),
        "more": " ".join(map(str, _ris_list(entry, "notes"))),
    }


_RIS_TITLES = ("title", "primary_title", "secondary_title")  # the first one given is the title


def _ris_list(entry: dict[str, Any], tag: str) -> list[Any]:
    """A rispy list field, empty when absent or null."""
    return entry.get(tag) or []


def _first_last(name: str) -> str:
    """`Last, First` as `First Last`; a name without a comma as it is."""
    last, comma, first = name.partition(",")
    return f"{first.strip()} {last.strip()}".strip() if comma else name.strip()


def _csl_json(text: str) -> list[Record]:
    """The records of a CSL-JSON file (items that are not objects are skipped)."""
    return [_csl_record(item) for item in _csl_items(text) if isinstance(item, dict)]


def _csl_items(text: str) -> list[Any]:
    """The CSL items of a JSON text: its list, or the `items` list of an object around it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise LibraryError("JSON nested too deeply") from None
    items = _unwrapped(data)
    if not isinstance(items, list):
        raise LibraryError("not CSL-JSON (expected a list of items)")
    return items


def _unwrapped(data: Any) -> Any:
    """The `items` list of an object around the CSL items (some tools wrap them), else `data`."""
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return data["items"]
    return data


def _csl_record(item: dict[str, Any]) -> Record:
    """A record from one CSL item."""
    return {
        "title": _html_free(item.get("title")),
        "abstract": _html_free(item.get("abstract")),
        "authors": _csl_authors(item.get("author")),
        "arxiv": "",
        "doi": _csl_text(item.get("DOI")),
        "url": _csl_text(item.get("URL")),
        "more": " ".join(_csl_text(item.get(k)) for k in ("number", "note", "archive_location")),
    }


def _csl_text(value: Any) -> str:
    """A CSL field as text, "" when absent or null."""
    return str(value or "")


def _csl_authors(people: Any) -> list[str]:
    """The names of a CSL `author` list (entries without a usable name left out)."""
    return [name for name in map(_csl_name, people or []) if name]


def _csl_name(person: Any) -> str:
    """A CSL name: its `literal`, else given and family names; "" for anything else."""
    if not isinstance(person, dict):
        return ""
    literal = person.get("literal")
    parts = [person.get("given"), person.get("family")]
    return str(literal or " ".join(str(p) for p in parts if p))


def _html_free(value: Any) -> str:
    """A CSL string field without the rich-text tags CSL allows (`<i>`, `<sup>`)."""
    text = limits.read_prefix(str(value or ""), limits.ABSTRACT_CHARS)
    if "<" in text:
        text = _CSL_TAGS.sub("", text)
    # str.split splits at the same white space as the regex `\s+`, without a regex pass per field.
    return " ".join(text.split())


def _bound_record(record: Record) -> bool:
    """Cut a record's title, abstract and authors to the fields' caps (`digest.limits`, as
    for papers); True when something was cut."""
    before = (record["title"], record["abstract"], record["authors"])
    record["title"] = limits.cut(record["title"], limits.TITLE_CHARS)
    record["abstract"] = limits.cut(record["abstract"], limits.ABSTRACT_CHARS)
    authors = record["authors"][: limits.AUTHORS]
    record["authors"] = [limits.cut(a, limits.AUTHOR_CHARS) for a in authors]
    return before != (record["title"], record["abstract"], record["authors"])


def _entry(record: Record, origin: str) -> LibraryEntry | None:
    """A library entry from a record, its arXiv id found wherever exports put it
    (`_arxiv_id`); None with nothing to know it by."""
    doi, arxiv = _identifiers(record)
    title = record["title"]
    if not (title or arxiv or doi):
        return None
    return LibraryEntry(
        title=title,
        abstract=record["abstract"],
        authors=tuple(a for a in record["authors"] if a),
        arxiv_id=arxiv,
        doi=doi,
        url=_first_word(record["url"]),
        origin=origin,
    )


def _identifiers(record: Record) -> tuple[str, str]:
    """The record's (DOI, arXiv id); arXiv's own DOI names the same paper as its id, so it is
    dropped for the id, which is the key."""
    doi = record["doi"].strip().removeprefix("https://doi.org/").removeprefix("doi:")
    arxiv = _arxiv_id(record, doi)
    return ("" if _DOI_ARXIV.match(doi) else doi), arxiv


def _first_word(text: str) -> str:
    """The first white-space-separated word of `text` (the first of several URLs), or ""."""
    words = text.split()
    return words[0] if words else ""


def _arxiv_id(record: Record, doi: str) -> str:
    """The record's arXiv id, from the first place that has one: the eprint field, an arXiv
    DOI, then `arXiv:…` or an arxiv.org link in the URL, a note or a number."""
    arxiv = _parsed_arxiv(record["arxiv"])
    if not arxiv:
        arxiv = _parsed_arxiv(_first_group(_DOI_ARXIV.match(doi)))
    if not arxiv:
        found = _ARXIV_IN_TEXT.search(f"{record['url']} {record['more']}")
        arxiv = _parsed_arxiv(_first_group(found))
    return arxiv


def _first_group(found: re.Match[str] | None) -> str:
    """A match's first group, "" without a match."""
    return found.group(1) if found else ""


def _parsed_arxiv(text: str) -> str:
    """The arXiv id `text` holds (`models.parse_arxiv_id`), "" for none."""
    return parse_arxiv_id(text)[0] if text else ""


# A library format -> the parser of its text.
_PARSERS: dict[LibraryFormat, Callable[[str], list[Record]]] = {
    "bibtex": _bibtex,
    "ris": _ris,
    "csl-json": _csl_json,
}
