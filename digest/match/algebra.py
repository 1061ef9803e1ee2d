"""The verdict algebra: every profile's verdict on a batch of papers as sparse-matrix work.

DESIGN.md's rules (`rules.py` states them for one paper and one profile) for a batch of N
papers and P profiles at once, over the T terms of a `Matcher`:

- `found` (N × T) says which terms each paper holds, `in_title` (N × T) which its title holds;
- `keywords` (T × P) holds, for each profile, how many distinct keywords as written share the
  term (``KV cache`` and ``KV-cache`` are two), `exclude` (T × P) its excluded terms;
- `groups` (T × G) the distinct terms of every `all_of` group, with each group's size and
  profile; a group is whole in a paper when `found @ groups` reaches its size;
- categories: each paper's categories and their archives against each profile's.

Then ``found @ keywords`` counts each profile's distinct matched keywords in each paper (its
non-zeros are the candidates), ``in_title @ keywords`` those in the title, and a pair matches
when a followed author wrote the paper, or when it passes the categories, holds no excluded term
and has a keyword or a whole group. Its score is `rank.points` of those counts. A pair with a
whole group is scored by the rules themselves (`rules.scored_verdict`: a group's terms may
repeat a keyword's, which counts are not told), so the algebra never decides differently from
the rules; the labelled cases and the hypothesis properties hold both paths to that.

The matrices are numpy arrays in compressed-row form (`Rows`), and a product of the batch's
hits with one of them is a gather and a sum (`Rows.times`): numpy alone, since scipy takes a
third of a second to import and a profile without a library never loads it.

Worked example: two profiles over the terms ``[kv cache, rl, survey]``; A has keywords
``KV cache`` and ``RL``, B has ``RL`` and excludes ``survey``. Paper 0 has ``kv cache`` in its
title and ``rl`` in its abstract, paper 1 ``rl`` and ``survey``. ``found @ keywords`` is
``[[2, 1], [1, 1]]`` and ``in_title @ keywords`` ``[[1, 0], [0, 0]]``; ``found @ exclude`` is
``[[0, 0], [0, 1]]``, so paper 1 is out for B. Verdicts: (0, A) scores 2 × 10 + 1 = 21, (0, B)
10, (1, A) 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from digest.match.rank import FOLLOWED, PER_TERM, PER_TITLE_TERM
from digest.match.rules import CompiledProfile
from digest.match.terms import TermKey
from digest.models import Paper

if TYPE_CHECKING:
    import numpy as np

Entries = Sequence[tuple[int, int, int]]  # (row, column, value) of a sparse matrix


class Product(NamedTuple):
    """A sparse product's non-zero entries: linear indexes (row × width + column), sorted and
    distinct, and their values."""

    places: np.ndarray
    values: np.ndarray


class Rows:
    """A sparse integer matrix in compressed-row form: row r's columns are
    `columns[starts[r]:starts[r + 1]]`, with their `values`."""

    def __init__(self, entries: Entries, shape: tuple[int, int]) -> None:
        import numpy as np

        self.shape = shape
        table = np.array(entries, dtype=np.int64).reshape(-1, 3)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        counts = np.bincount(table[:, 0], minlength=shape[0])
        self.starts = np.concatenate(([0], np.cumsum(counts)))
        self.columns = table[:, 1]
        self.values = table[:, 2]
        self.unit = bool((self.values == 1).all())

    def times(self, rows: np.ndarray, columns: np.ndarray) -> Product:
        """(H × self)'s non-zero entries, where H is the 0/1 matrix with a 1 at each
        (`rows`, `columns`) pair (pairs given once): for each pair, this matrix's row
        `columns` gathered under `rows`, and the values of equal entries summed."""
        import numpy as np

        owners, at = _gathered(self.starts, rows, columns)
        if not at.size:
            return Product(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        linear = owners * self.shape[1] + self.columns[at]
        if self.unit:
            # Every value 1: an entry's sum is how often it repeats, told by sorting alone
            # (`np.sort`, not the `argsort` that `unique(return_inverse=True)` makes): a lab's
            # day's groups, 1,000 papers: 54 -> 43 ms.
            ordered = np.sort(linear)
            starts = np.flatnonzero(_firsts(ordered))
            return Product(ordered[starts], np.diff(starts, append=len(ordered)))
        index, inverse = np.unique(linear, return_inverse=True)
        summed = np.bincount(inverse, weights=self.values[at], minlength=len(index))
        return Product(index, summed.astype(np.int64))


@dataclass(frozen=True, slots=True)
class Decided:
    """The pairs of a batch that match: paper index, profile number and score, and whether the
    pair must be scored by the rules (a whole `all_of` group) — one array each."""

    papers: np.ndarray
    profiles: np.ndarray
    scores: np.ndarray
    by_rules: np.ndarray
    # The whole groups: paper index, profile number, the group's position in the profile.
    groups: tuple[np.ndarray, np.ndarray, np.ndarray]
    # Each pair's matched keywords: the positions (in `CompiledProfile.keywords`) of pair i
    # are `keyword_positions[keyword_starts[i]:keyword_ends[i]]`, in order.
    keyword_positions: np.ndarray
    keyword_starts: np.ndarray
    keyword_ends: np.ndarray


class VerdictAlgebra:
    """A matcher's compiled profiles as sparse matrices over its terms (see the module
    docstring)."""

    def __init__(self, compiled: Sequence[CompiledProfile], keys: Sequence[TermKey]) -> None:
        import numpy as np

        self.columns = {key: column for column, key in enumerate(keys)}
        self.size = (len(keys), len(compiled))
        self.keywords = Rows(self._keyword_entries(compiled), self.size)
        self.keyword_places = _Places(self._keyword_places(compiled), len(keys))
        self.exclude = Rows(self._exclude_entries(compiled), self.size)
        group_entries, sizes, owners = self._group_entries(compiled)
        self.groups = Rows(group_entries, (self.size[0], len(sizes)))
        self.group_sizes = np.array(sizes, dtype=np.int64)
        self.group_owners = np.array([owner for owner, _ in owners], dtype=np.int64)
        self.group_positions = np.array([position for _, position in owners], dtype=np.int64)
        self.categories, category_entries = self._category_entries(compiled)
        self.profile_categories = Rows(category_entries, (len(self.categories), self.size[1]))
        self.any_category = np.array([not c.categories for c in compiled], dtype=bool)

    def _keyword_entries(self, compiled: Sequence[CompiledProfile]) -> Entries:
        """Term × profile: how many distinct keywords as written of the profile have the term."""
        entries = []
        for number, profile in enumerate(compiled):
            for key, positions in profile.keyword_positions.items():
                raws = {profile.keywords[p].raw for p in positions}
                entries.append((self.columns[key], number, len(raws)))
        return entries

    def _keyword_places(self, compiled: Sequence[CompiledProfile]) -> Entries:
        """(term, profile, position) of every keyword: where each term stands in each
        profile's keywords."""
        return [
            (self.columns[key], number, position)
            for number, profile in enumerate(compiled)
            for key, positions in profile.keyword_positions.items()
            for position in positions
        ]

    def _exclude_entries(self, compiled: Sequence[CompiledProfile]) -> Entries:
        """Term × profile: 1 where the profile excludes the term."""
        return [
            (self.columns[key], number, 1)
            for number, profile in enumerate(compiled)
            for key in profile.exclude_keys
        ]

    def _group_entries(
        self, compiled: Sequence[CompiledProfile]
    ) -> tuple[Entries, list[int], list[tuple[int, int]]]:
        """Term × group: 1 for each distinct term of each group; the groups' sizes; their
        profiles and positions in them."""
        entries: list[tuple[int, int, int]] = []
        sizes: list[int] = []
        owners: list[tuple[int, int]] = []
        for number, profile in enumerate(compiled):
            for position, group in enumerate(profile.groups):
                distinct = {term.key for term in group}
                entries.extend((self.columns[key], len(sizes), 1) for key in distinct)
                sizes.append(len(distinct))
                owners.append((number, position))
        return entries, sizes, owners

    def _category_entries(
        self, compiled: Sequence[CompiledProfile]
    ) -> tuple[dict[str, int], Entries]:
        """Every category any profile names, numbered, and category × profile."""
        names: dict[str, int] = {}
        entries = []
        for number, profile in enumerate(compiled):
            for category in profile.categories:
                entries.append((names.setdefault(category, len(names)), number, 1))
        return names, entries

    def decide(
        self,
        found: tuple[np.ndarray, np.ndarray],
        in_title: tuple[np.ndarray, np.ndarray],
        papers: Sequence[Paper],
        followed: tuple[np.ndarray, np.ndarray],
    ) -> Decided:
        """The matching pairs of a batch of `papers`, given which terms each holds (`found`:
        paper indexes and term columns, each pair once; `in_title` the same for titles) and
        which profiles follow one of its authors (`followed`: paper indexes, profiles)."""
        import numpy as np

        width = self.size[1]
        counts = self.keywords.times(*found)
        group_rows, groups = self._whole_groups(found)
        owners = self.group_owners[groups]
        whole_pairs = _distinct(group_rows * width + owners)
        topical = _distinct(np.concatenate((counts.places, whole_pairs)))
        excluded = self.exclude.times(*found).places
        topical = topical[~_among(topical, excluded)]
        topical = topical[self._in_categories(topical, papers)]
        authors = _distinct(followed[0] * width + followed[1])
        pairs = _distinct(np.concatenate((topical, authors)))
        titles = self.keywords.times(*in_title)
        by_author = _among(pairs, authors)
        scores = (
            FOLLOWED * by_author
            + PER_TERM * _lookup(counts, pairs)
            + PER_TITLE_TERM * _lookup(titles, pairs)
        )
        whole = _among(pairs, whole_pairs)
        rows, profiles = np.divmod(pairs, width)
        whole_groups = (group_rows, owners, self.group_positions[groups])
        positions, starts, ends = self.keyword_places.of_pairs(found, pairs, width)
        return Decided(rows, profiles, scores, whole, whole_groups, positions, starts, ends)

    def _whole_groups(self, found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The whole groups of the batch: paper indexes and group numbers, in order."""
        import numpy as np

        if not self.group_sizes.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        reached = self.groups.times(*found)
        rows, groups = np.divmod(reached.places, self.groups.shape[1])
        whole = reached.values >= self.group_sizes[groups]
        return rows[whole], groups[whole]

    def _in_categories(self, pairs: np.ndarray, papers: Sequence[Paper]) -> np.ndarray:
        """For each (paper, profile) pair: whether the paper passes the profile's categories
        (`rules.passes_categories`)."""
        import numpy as np

        rows, profiles = np.divmod(pairs, self.size[1])
        ok = self.any_category[profiles]
        if ok.all():
            return ok
        uncategorised = np.array([not paper.categories for paper in papers], dtype=bool)
        ok |= uncategorised[rows]
        held_rows, held_columns = [], []
        for row, paper in enumerate(papers):
            for name in _category_names(paper):
                if name in self.categories:
                    held_rows.append(row)
                    held_columns.append(self.categories[name])
        held = self.profile_categories.times(
            np.array(held_rows, dtype=np.int64), np.array(held_columns, dtype=np.int64)
        )
        ok |= _among(pairs, held.places)
        return ok


class _Places:
    """Each term's (profile, position) places, in compressed-row form over the terms: which
    keyword of which profile a found term is."""

    def __init__(self, entries: Entries, terms: int) -> None:
        import numpy as np

        table = np.array(entries, dtype=np.int64).reshape(-1, 3)
        table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 0]))]
        self.starts = np.concatenate(([0], np.cumsum(np.bincount(table[:, 0], minlength=terms))))
        self.profiles = table[:, 1]
        self.positions = table[:, 2]
        # A position times this plus one fits beside the pair's linear index in one int64.
        self.span = int(self.positions.max()) + 1 if len(table) else 1

    def of_pairs(
        self, found: tuple[np.ndarray, np.ndarray], pairs: np.ndarray, width: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The keyword positions of each of `pairs` (linear, sorted) among the `found`
        (paper, term) hits, in order: all positions, and where each pair's start and end."""
        import numpy as np

        owners, at = _gathered(self.starts, *found)
        linear = owners * width + self.profiles[at]
        ordered = np.sort(linear * self.span + self.positions[at])
        owners = ordered // self.span
        return (
            ordered % self.span,
            np.searchsorted(owners, pairs, side="left"),
            np.searchsorted(owners, pairs, side="right"),
        )


def _gathered(
    starts: np.ndarray, rows: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The entries of compressed rows `columns` (their row i is `starts[i]:starts[i + 1]`),
    one after another: for each, the `rows` value it was gathered under, and its index."""
    import numpy as np

    lengths = starts[columns + 1] - starts[columns]
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    at = np.repeat(starts[columns] - (ends - lengths), lengths) + np.arange(total)
    return np.repeat(rows, lengths), at


def _category_names(paper: Paper) -> set[str]:
    """The names a paper's categories answer to: each one, and its archive (`cs` for `cs.LG`)."""
    names = set()
    for category in paper.categories:
        lowered = category.lower()
        names.add(lowered)
        names.add(lowered.split(".")[0])
    return names


# Set work on sorted arrays by sorting and bisecting: numpy 2's `unique`, `union1d`, `isin`
# hash instead, 3-4× slower on these sizes (60k int64: 8.7 ms against 2.1 ms to sort).


def _distinct(values: np.ndarray) -> np.ndarray:
    """`values` sorted, each once."""
    import numpy as np

    ordered = np.sort(values)
    distinct: np.ndarray = ordered[_firsts(ordered)]
    return distinct


def distinct_pairs(
    rows: np.ndarray, columns: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) pairs, columns below `width`, each once, in order."""
    import numpy as np

    rows, columns = np.divmod(_distinct(rows * width + columns), width)
    return rows, columns


def _firsts(ordered: np.ndarray) -> np.ndarray:
    """For each of sorted `ordered`: whether it is the first of its value."""
    import numpy as np

    firsts = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=firsts[1:])
    return firsts


def _among(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """For each of `values`: whether it is in `known` (sorted)."""
    import numpy as np

    if not known.size:
        return np.zeros(len(values), dtype=bool)
    at = np.clip(np.searchsorted(known, values), 0, len(known) - 1)
    member: np.ndarray = known[at] == values
    return member


def _lookup(product: Product, wanted: np.ndarray) -> np.ndarray:
    """The product's value at each of `wanted` (linear indexes), 0 where it has none."""
    import numpy as np

    if not product.places.size:
        return np.zeros(len(wanted), dtype=np.int64)
    at = np.clip(np.searchsorted(product.places, wanted), 0, len(product.places) - 1)
    return np.where(product.places[at] == wanted, product.values[at], 0)
