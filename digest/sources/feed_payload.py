"""A feed's bytes before and beside feedparser: the strict XML check every feed also passes
(`well_formed_problem`), the repair of a stray bad byte in UTF-8 (`repaired_utf8`), and the
charset a Content-Type header names (`http_charset`).

feedparser is lenient and reports only the first problem it meets; the strict check finds a
cut or a broken document anywhere, forgiving only what loses nothing (see `feeds`).
"""

from __future__ import annotations

import codecs
import re
import xml.parsers.expat

# What the strict check forgives, rewritten in its copy of the document: a `&` that starts no
# reference, and characters XML 1.0 does not allow at all.
_BARE_AMPERSAND = re.compile(r"&(?!#[0-9]+;|#x[0-9A-Fa-f]+;|[A-Za-z_:][\w.:-]*;)")
# Says nothing the checked copy (a str, already decoded) needs, and is often not quite at the
# start (a blank line a script printed first, a comment).
_XML_DECLARATION = re.compile(r"<\?xml\s[^>]*\?>")
# A character reference to a character XML 1.0 does not allow (`&#x1b;`): dropped, like the
# raw characters.
_CHAR_REF = re.compile(r"&#(?:x([0-9A-Fa-f]{1,8})|([0-9]{1,10}));")
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The characters XML 1.0 allows (its `Char` production), as inclusive ranges of code points.
_XML_CHAR_RANGES = (
    (0x9, 0xA),
    (0xD, 0xD),
    (0x20, 0xD7FF),
    (0xE000, 0xFFFD),
    (0x10000, 0x10FFFF),
)


def _allowed_reference(found: re.Match[str]) -> str:
    """A character reference as it is when XML 1.0 allows its character, else ""."""
    code = int(found[1], 16) if found[1] else int(found[2])
    allowed = any(low <= code <= high for low, high in _XML_CHAR_RANGES)
    return found[0] if allowed else ""


def well_formed_problem(data: bytes, encoding: str) -> xml.parsers.expat.ExpatError | None:
    """Why `data` (in `encoding`, as feedparser decoded it) is not a complete, well-formed XML
    document once the harmless faults are forgiven; None when it is.

    Undeclared entities are skipped as entities of an external DTD would be, bare `&` and
    characters outside XML 1.0 and the XML declaration are removed from the copy checked, and
    undecodable bytes become U+FFFD. What remains (a cut, a mismatched tag, an unclosed
    attribute) is a real fault.
    """
    text = data.decode(_checked_codec(encoding), errors="replace")
    text = _CHAR_REF.sub(_allowed_reference, _XML_DECLARATION.sub("", text, count=1))
    text = _NOT_XML_CHARS.sub("", _BARE_AMPERSAND.sub("&amp;", text.lstrip("\ufeff")))
    parser = xml.parsers.expat.ParserCreate()
    parser.UseForeignDTD(True)  # an undeclared `&nbsp;` is then skipped, not an error
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_UNLESS_STANDALONE)
    try:
        parser.Parse(text, True)  # a str: pyexpat reads it as UTF-8, whatever it declares
    except xml.parsers.expat.ExpatError as exc:
        return exc
    return None


def _checked_codec(encoding: str) -> str:
    """The codec the strict check decodes with: feedparser's encoding (UTF-8 when it names
    none or one Python does not know), a UTF-8 byte order mark dropped."""
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return "utf-8-sig" if codec == "utf-8" else codec


_DECLARED_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")


def repaired_utf8(data: bytes) -> bytes:
    """`data` with its few invalid bytes replaced by U+FFFD when it is UTF-8 (declared so, or
    not declared at all) with a stray bad byte; otherwise `data` unchanged.

    feedparser decodes a document whose declared UTF-8 fails in a one-byte encoding instead,
    the whole of it: one bad byte turned every Cyrillic, Greek or CJK title into mojibake. A
    document that is mostly valid multi-byte UTF-8 is UTF-8; one with no valid multi-byte
    sequence (Latin-1 mislabelled) is left to feedparser's fallback, which reads it right.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data.isascii() or _declares_not_utf8(data):
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _replaced_when_mostly_utf8(data)
    return data


def _declares_not_utf8(data: bytes) -> bool:
    """Whether the XML declaration names an encoding other than UTF-8."""
    declared = _DECLARED_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    if declared is None:
        return False
    return declared[1].lower().replace(b"_", b"-") not in (b"utf-8", b"utf8")


def _replaced_when_mostly_utf8(data: bytes) -> bytes:
    """`data`, not valid UTF-8, with its bad bytes as U+FFFD when most of its non-ASCII text is
    valid multi-byte UTF-8; else `data` unchanged."""
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - data.decode("utf-8", "ignore").count("\ufffd")
    if sum(not char.isascii() for char in text) > 2 * replaced:
        return text.encode("utf-8")
    return data


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


def http_charset(content_type: str) -> str:
    """The charset a Content-Type header names (`text/xml; charset=KOI8-R` → `koi8-r`), or ""."""
    found = _CHARSET.search(content_type)
    return found[1].lower() if found else ""
