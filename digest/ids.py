"""Author and work identifiers: ORCID iDs, OpenAlex ids, DOIs and arXiv ids as users write them
and as OpenAlex sends them, normalised to one form each.

- ORCID: `0000-0002-1825-0097` (the last character may be `X`), checked with ISO 7064 MOD 11-2;
  `https://orcid.org/0000-…` is accepted.
- OpenAlex author: `A5023888391`; `https://openalex.org/A…` (and lower case `a…`) accepted.
- OpenAlex work: `W2741809807`, likewise.
- A watched paper (`cites`): `arxiv:2402.17193` or `doi:10.…` (lower case), URL forms accepted.
"""

from __future__ import annotations

import re

from digest.models import parse_arxiv_id

_ORCID = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])")
_ORCID_PREFIX = re.compile(r"^(?:https?://)?(?:www\.)?orcid\.org/", re.I)
_OPENALEX_PREFIX = re.compile(r"^(?:https?://)?(?:api\.)?openalex\.org/(?:authors/|works/)?", re.I)
_DOI_PREFIX = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)", re.I)
_DOI = re.compile(r"10\.\d{4,9}/\S+")
# arXiv's DataCite DOIs: 10.48550/arXiv.2401.01234 (OpenAlex writes them lower case).
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(.+)", re.I)


def orcid_checksum_ok(digits: str) -> bool:
    """True when the 16 characters (15 digits and a check digit or X) pass ISO 7064 MOD 11-2."""
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def normalise_orcid(value: str) -> str:
    """`0000-0002-1825-0097` from an ORCID iD or its URL; ValueError when it is not one."""
    text = _ORCID_PREFIX.sub("", value.strip()).upper()
    found = _ORCID.fullmatch(text)
    if not found or not orcid_checksum_ok("".join(found.groups())):
        raise ValueError(
            f"not an ORCID iD: {value!r} (16 digits as 0000-0002-1825-0097, checksum included)"
        )
    return "-".join(found.groups())


def normalise_openalex(value: str, kind: str = "A") -> str:
    """`A5023888391` (kind "A": an author; "W": a work) from an id or its URL; ValueError when
    it is not one."""
    text = _OPENALEX_PREFIX.sub("", value.strip())
    if not re.fullmatch(rf"[{kind}{kind.lower()}]\d{{1,15}}", text):
        what = "author" if kind == "A" else "work"
        raise ValueError(f"not an OpenAlex {what} id: {value!r} (e.g. '{kind}5023888391')")
    return text.upper()


def openalex_id_or_blank(value: object, kind: str = "A") -> str:
    """An OpenAlex id as sent in a payload, normalised; "" for a missing or odd one."""
    if not isinstance(value, str):
        return ""
    try:
        return normalise_openalex(value, kind)
    except ValueError:
        return ""


def orcid_or_blank(value: object) -> str:
    """An ORCID as sent in a payload (usually a URL), normalised; "" for a missing or bad one."""
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        return normalise_orcid(value)
    except ValueError:
        return ""


def normalise_doi(value: str) -> str:
    """A DOI without its `doi:`/URL prefix, lower case; "" when it is not one."""
    text = _DOI_PREFIX.sub("", value.strip()).lower()
    return text if _DOI.fullmatch(text) else ""


def arxiv_of_doi(doi: str) -> str:
    """The arXiv id inside an arXiv DataCite DOI (`10.48550/arxiv.2401.01234`), else ""."""
    found = _ARXIV_DOI.fullmatch(doi.strip())
    return parse_arxiv_id(found.group(1))[0] if found else ""


def normalise_watched(value: str) -> str:
    """A watched paper as `arxiv:ID` or `doi:10.…`; an arXiv DOI becomes its arXiv id.

    ValueError when it is neither."""
    text = value.strip()
    arxiv_id, _ = parse_arxiv_id(text)
    if arxiv_id and not text.lower().startswith("doi:"):
        return f"arxiv:{arxiv_id}"
    doi = normalise_doi(text)
    if doi:
        inner = arxiv_of_doi(doi)
        return f"arxiv:{inner}" if inner else f"doi:{doi}"
    raise ValueError(f"not a paper id: {value!r} (write 'arxiv:2402.17193' or 'doi:10.…')")
