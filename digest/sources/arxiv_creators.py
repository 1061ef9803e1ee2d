"""arXiv's author lists: the one `dc:creator` string of a listing item as (name, affiliation).

The listing feed writes every author of a paper in one string, affiliations in parentheses:
`Ana Gómez (MIT, CSAIL), Andr\\'e Martins and Bob Li`, sometimes with numbered affiliations and
a legend after the last author. TeX in names is read later, by `clean_paper`, for every source.
"""

from __future__ import annotations

import re

# Author separators outside parentheses: a comma (`A, B`), an Oxford `, and` (`A, B, and C`), or
# ` and ` (`A and B`, `A, B and C`). Parentheses are matched to track the depth.
_CREATOR_TOKEN = re.compile(r"[()]|\s*,\s*(?:and\s+)?|\s+and\s+|^and\s+")
# The legend of numbered affiliations: `A (1), B (1, 2) ((1) MIT, (2) Stanford)`.
_LEGEND_START = re.compile(r"\(\d+\)")
_LEGEND_ENTRY = re.compile(r"\((\d+)\)\s*(.*?)\s*(?:[,;]\s*)?(?=\(\d+\)|$)")
_LEGEND_REFS = re.compile(r"\d+(?:\s*(?:,|;|&|and)\s*\d+)*")


def split_creators(creators: str) -> tuple[tuple[str, str], ...]:
    """Split an arXiv `dc:creator` string into ((name, affiliation or ""), ...).

    `Ana Gómez (MIT, CSAIL), Andr\\'e Martins and Bob Li` → (("Ana Gómez", "MIT, CSAIL"),
    ("Andr\\'e Martins", ""), ("Bob Li", "")): authors are separated by commas and ` and ` outside
    parentheses; a parenthesised part (which may hold commas, ` and ` and nested parentheses) is
    the affiliation, several are joined with "; ". Numbered affiliations with a legend after the
    last author (`A (1), B (2) ((1) MIT, (2) Stanford)`) are resolved. TeX escapes are left as
    written: `clean_paper` reads them for every source. Unbalanced parentheses are plain text.
    """
    text = " ".join(creators.split())
    authors = [_name_and_groups(piece) for piece in _split_outside_parens(text)]
    legend = _pop_legend(authors)
    # A nameless piece is a stray `(MIT)` or an empty piece between two commas.
    return tuple((name, _affiliation(groups, legend)) for name, groups in authors if name)


def _pop_legend(authors: list[tuple[str, list[str]]]) -> dict[str, str]:
    """The numbered-affiliation legend (`((1) MIT, (2) Stanford)`) taken off the last author's
    groups, number → affiliation; empty when the list has none."""
    last_groups = authors[-1][1] if authors else []
    if not last_groups or not _LEGEND_START.match(last_groups[-1]):
        return {}
    return dict(_LEGEND_ENTRY.findall(last_groups.pop()))


def _affiliation(groups: list[str], legend: dict[str, str]) -> str:
    """An author's parenthesised groups as one affiliation, legend numbers resolved."""
    return "; ".join(a for a in (_resolve(group, legend) for group in groups) if a)


def _split_outside_parens(text: str) -> list[str]:
    """The stripped, non-empty pieces of `text` between author separators outside parentheses."""
    step = 1 if _balanced(text) else 0  # unbalanced parentheses do not protect anything
    parts, depth, last = [], 0, 0
    for token in _CREATOR_TOKEN.finditer(text):
        if token[0] == "(":
            depth += step
        elif token[0] == ")":
            depth -= step
        elif depth == 0:
            parts.append(text[last : token.start()])
            last = token.end()
    parts.append(text[last:])
    return [part.strip() for part in parts if part.strip()]


def _balanced(text: str) -> bool:
    """Whether every `)` of `text` closes an earlier `(` and every `(` is closed."""
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


def _name_and_groups(piece: str) -> tuple[str, list[str]]:
    """`A One (MIT, CSAIL) (Google)` → ("A One", ["MIT, CSAIL", "Google"])."""
    if not _balanced(piece):
        return piece, []
    name: list[str] = []
    groups: list[str] = []
    current: list[str] = []
    depth = 0
    for char in piece:
        if char == "(":
            depth += 1
            if depth == 1:
                current = []
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                groups.append(" ".join("".join(current).split()))
                name.append(" ")
                continue
        (current if depth else name).append(char)
    return " ".join("".join(name).split()), groups


def _resolve(group: str, legend: dict[str, str]) -> str:
    """A group of legend numbers (`1, 2`) as the affiliations they stand for; others as they are."""
    if legend and _LEGEND_REFS.fullmatch(group):
        numbers = re.findall(r"\d+", group)
        return "; ".join(legend.get(number, number) for number in numbers)
    return group
