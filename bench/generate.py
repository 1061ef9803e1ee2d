"""A deterministic generator of realistic listings and profiles, built from the seed papers.

Papers: abstracts are spliced from seed-abstract sentences (so the vocabulary and n-gram
statistics are the seeds'), titles from seed titles and sentence fragments, lengths drawn around
arXiv's, 1 to ~200 authors a paper from a skewed pool of people whose names are written in the
variants real listings use (initials, `Last, First`, accents dropped), arXiv categories with
cross-lists, and arXiv ids. Everything is an iterator: 250k papers are never held at once.

Profiles: keywords drawn from seed n-grams (a few that really occur, most that are near misses,
as a user's list is), with `*` prefixes, plural and hyphen variants; `all_of` groups of common
terms; some excludes; followed authors drawn from the same skewed pool as the papers.

Run `python -m bench.generate --papers 1000 --out listings.jsonl` to write listing JSONL.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from digest.models import FollowedAuthor, Paper, Profile, fold
from digest.sources.files import listing_to_paper

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
START = date(2025, 1, 1)  # the first day of the generated year
T0 = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)  # when the first batch is stored
YEAR_DAYS = 365

# People: index i of a pool this big, drawn as HEAD + (POOL - HEAD) * u ** SKEW, so some people
# write far more than others (the busiest ~60 papers a year of 250k, most one or two).
POOL = 150_000
HEAD = 1_000
SKEW = 2.0

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[$])")
_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_INNER_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")

# arXiv categories with rough shares of a cs-heavy daily listing.
CATEGORIES: tuple[tuple[str, float], ...] = (
    ("cs.LG", 24),
    ("cs.CV", 16),
    ("cs.CL", 12),
    ("cs.AI", 8),
    ("stat.ML", 4),
    ("cs.RO", 4),
    ("cs.CR", 3),
    ("cs.IR", 2),
    ("cs.SE", 2),
    ("cs.HC", 2),
    ("eess.IV", 2),
    ("eess.SP", 2),
    ("math.OC", 2),
    ("quant-ph", 3),
    ("physics.comp-ph", 1),
    ("q-bio.NC", 1),
    ("econ.EM", 1),
    ("hep-th", 3),
    ("cond-mat.stat-mech", 2),
    ("astro-ph.GA", 2),
    ("math.PR", 2),
    ("cs.DS", 2),
)
# How many authors a paper has (value, weight): most have 2-8, a few have hundreds.
AUTHOR_COUNTS: tuple[tuple[int, float], ...] = (
    (1, 7),
    (2, 13),
    (3, 16),
    (4, 15),
    (5, 12),
    (6, 9),
    (7, 7),
    (8, 5),
    (10, 5),
    (12, 4),
    (15, 3),
    (20, 2),
    (30, 1.5),
    (60, 0.4),
    (200, 0.1),
)
EXTRA_FIRST = (
    "José", "Zoë", "Łukasz", "Søren", "François", "Jürgen", "Björn", "Çağla", "Dániel", "Žiga",
    "Mihály", "Noémie", "Héctor", "Iñaki", "Renée", "Thùy", "Wei", "Xiaoyu", "Yuki", "Ana",
    "Priya", "Olumide", "Chiara", "Matías", "Ilse", "Kateřina", "Ayşe", "Nikolaos", "Ewa",
    "Joaquín", "Aurélien", "Siobhán", "Raúl", "Linnéa", "Grégoire", "Lucía", "Mónica",
)  # fmt: skip
EXTRA_LAST = (
    "Gómez", "Müller", "Nguyễn", "Sørensen", "Dvořák", "Çelik", "Łapiński", "García", "Ødegaard",
    "Kovačević", "Pérez", "Öztürk", "Šimić", "Zhang", "Wang", "Li", "Chen", "Liu", "Yang",
    "Kim", "Park", "Singh", "Kumar", "Rossi", "Novák", "Fernández", "Jäger", "Lefèvre",
    "O'Brien", "Núñez", "Håkansson", "Kowalczyk", "Papadopoulos", "Tanaka", "Sato", "Ito",
    "Abubakar", "Okonkwo", "Silva", "Santos", "Ivanov", "Smirnova", "Müller-Schmidt", "Brontë",
)  # fmt: skip
_STOPWORD_TEXT = (
    "a an the of for and or in on to with by from via at as is are be we our this that these "
    "which it its into than then can also using use used based new show shows while such both "
    "more most over under between across without not no their they each when where how what "
    "has have been was were do does up out one two three first second"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London")


# --- the seed corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """What the seeds give the generator: sentences, titles, name parts and n-gram statistics."""

    sentences: tuple[str, ...]
    titles: tuple[str, ...]
    title_heads: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    rare_ngrams: tuple[str, ...]  # in 1-2 seed papers: keywords that really match a few papers
    common_ngrams: tuple[str, ...]  # in 2-8% of seed papers: all_of terms
    uncommon_ngrams: tuple[str, ...]  # phrases in 3 papers to 2% of them: excludes
    vocabulary: tuple[str, ...]  # content words, for near-miss keywords


def _read_seed_rows(seeds_dir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(seeds_dir.glob("*.jsonl")):
        rows.extend(json.loads(line) for line in path.read_text("utf-8").splitlines() if line)
    return rows


def _ngrams(text: str) -> set[str]:
    """The 1-, 2- and 3-grams of a text's folded words that neither start nor end in a stopword."""
    words = _WORD.findall(fold(text))
    grams = set()
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            gram = words[i : i + n]
            if gram[0] in STOPWORDS or gram[-1] in STOPWORDS or len(gram[-1]) < 3:
                continue
            grams.add(" ".join(gram))
    return grams


def _name_parts(rows: list[dict[str, Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    firsts, lasts = set(EXTRA_FIRST), set(EXTRA_LAST)
    for row in rows:
        for author in row["authors"]:
            words = author.replace(".", " ").split()
            if len(words) >= 2 and len(words[0]) > 1:
                firsts.add(words[0])
                lasts.add(words[-1])
    return tuple(sorted(firsts)), tuple(sorted(lasts))


@cache
def load_corpus(seeds_dir: Path = SEEDS_DIR) -> Corpus:
    """Read the seed listings once and derive everything the generator draws from."""
    rows = _read_seed_rows(seeds_dir)
    sentences = [
        s for r in rows for s in _SENTENCE_END.split(" ".join(r["abstract"].split())) if len(s) > 30
    ]
    titles = [" ".join(r["title"].split()) for r in rows]
    document_frequency: Counter[str] = Counter()
    for row in rows:
        document_frequency.update(_ngrams(row["title"] + " . " + row["abstract"]))
    docs = len(rows)
    rare = sorted(g for g, c in document_frequency.items() if c <= 2 and len(g) >= 6)
    common = sorted(
        g
        for g, c in document_frequency.items()
        if 0.02 * docs <= c <= 0.08 * docs and (" " in g or len(g) >= 9)
    )
    uncommon = sorted(
        g for g, c in document_frequency.items() if 3 <= c <= 0.02 * docs and " " in g
    )
    vocabulary = sorted(
        g for g, c in document_frequency.items() if " " not in g and c >= 2 and len(g) >= 5
    )
    firsts, lasts = _name_parts(rows)
    return Corpus(
        sentences=tuple(sentences),
        titles=tuple(titles),
        title_heads=tuple(t.split(":")[0] for t in titles if ":" in t),
        first_names=firsts,
        last_names=lasts,
        rare_ngrams=tuple(rare),
        common_ngrams=tuple(common),
        uncommon_ngrams=tuple(uncommon),
        vocabulary=tuple(vocabulary),
    )


# --- people ---------------------------------------------------------------------------------------


def _mix(value: int) -> int:
    """A 64-bit integer hash (splitmix64): person i's name parts without storing the pool."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


@dataclass(frozen=True, slots=True)
class Person:
    """One person of the pool: first name, optional middle initial, last name."""

    first: str
    middle: str
    last: str

    @property
    def canonical(self) -> str:
        """How a follower writes the name: `First M. Last`."""
        middle = f" {self.middle}." if self.middle else ""
        return f"{self.first}{middle} {self.last}"


def person(index: int, corpus: Corpus) -> Person:
    """Person `index` of the pool: the same name every time, computed from the index."""
    h = _mix(index)
    lasts = corpus.last_names
    first = corpus.first_names[h % len(corpus.first_names)]
    last = lasts[(h >> 24) % len(lasts)]
    if (h >> 44) % 5 < 2:  # a surname spliced from two, so the pool has ~20k surnames
        other = lasts[(h >> 32) % len(lasts)]
        last = last[: max(2, len(last) // 2)] + other[len(other) // 2 :]
    if (h >> 48) % 10 == 0:  # double-barrelled
        last = f"{last}-{lasts[(h >> 36) % len(lasts)]}"
    middle = chr(ord("A") + (h >> 56) % 26) if (h >> 8) % 5 == 0 else ""
    return Person(first, middle, last)


def person_index(rng: random.Random) -> int:
    """A skewed draw from the pool: low indexes (prolific people) come up far more often."""
    return HEAD + int((POOL - HEAD) * rng.random() ** SKEW)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def written_name(who: Person, roll: float) -> str:
    """The person's name as one listing writes it: full, initials, `Last, First`, no accents…"""
    middle = f" {who.middle}." if who.middle else ""
    if roll < 0.62:
        return f"{who.first}{middle} {who.last}"
    if roll < 0.74:
        return f"{who.first[0]}.{middle} {who.last}"
    if roll < 0.80:
        return f"{who.last}, {who.first}{middle}"
    if roll < 0.87:
        return _strip_accents(f"{who.first}{middle} {who.last}")
    if roll < 0.93:
        return f"{who.first} {who.last}"
    if roll < 0.97:
        return f"{who.first[0]} {who.last}"
    return f"{who.first}{middle.rstrip('.')} {who.last}"


# --- papers ---------------------------------------------------------------------------------------


def _weighted(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    values = [v for v, _ in pairs]
    total = 0.0
    cumulative = []
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    return values, cumulative


_CATEGORY_VALUES, _CATEGORY_CUM = _weighted(CATEGORIES)
_COUNT_VALUES, _COUNT_CUM = _weighted(AUTHOR_COUNTS)


def _categories(rng: random.Random) -> list[str]:
    if rng.random() < 0.03:
        return []
    extra = 0 if rng.random() < 0.45 else (1 if rng.random() < 0.7 else 2)
    chosen = rng.choices(_CATEGORY_VALUES, cum_weights=_CATEGORY_CUM, k=1 + extra)
    return list(dict.fromkeys(chosen))


def _authors(rng: random.Random, corpus: Corpus) -> list[str]:
    count = rng.choices(_COUNT_VALUES, cum_weights=_COUNT_CUM)[0]
    people = dict.fromkeys(person_index(rng) for _ in range(count))
    return [written_name(person(i, corpus), rng.random()) for i in people]


def _abstract(rng: random.Random, corpus: Corpus) -> str:
    target = min(2600, max(300, int(rng.gauss(1300, 380))))
    parts: list[str] = []
    length = 0
    while length < target:
        sentence = rng.choice(corpus.sentences)
        if rng.random() < 0.08:  # `KV-cache` written `KV cache`, and the other way round
            sentence = _INNER_HYPHEN.sub(" ", sentence)
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)


def _fragment(rng: random.Random, corpus: Corpus, low: int, high: int) -> str:
    words = rng.choice(corpus.sentences).split()
    size = rng.randint(low, high)
    start = rng.randint(0, max(0, len(words) - size))
    text = " ".join(words[start : start + size]).strip(" ,.;:")
    return text[:1].upper() + text[1:]


def _title(rng: random.Random, corpus: Corpus) -> str:
    roll = rng.random()
    if roll < 0.35:
        return f"{rng.choice(corpus.title_heads)}: {_fragment(rng, corpus, 5, 10)}"
    if roll < 0.55:
        return rng.choice(corpus.titles)
    return _fragment(rng, corpus, 6, 14)


def published_day(index: int, total: int) -> date:
    """The publication date of paper `index` of `total`, spread over one year."""
    return START + timedelta(days=index * YEAR_DAYS // max(total, 1))


def iter_listings(
    total: int, *, seed: int = 1, seeds_dir: Path = SEEDS_DIR
) -> Iterator[dict[str, Any]]:
    """`total` listing objects (DESIGN.md's listing JSONL schema), deterministic for `seed`,
    drawn from the seed listings in `seeds_dir`."""
    corpus = load_corpus(seeds_dir)
    rng = random.Random(seed)
    month, sequence = (0, 0), 0
    for index in range(total):
        day = published_day(index, total)
        if (day.year, day.month) != month:
            month, sequence = (day.year, day.month), 0
        sequence += 1
        arxiv_id = f"{day.year % 100:02d}{day.month:02d}.{sequence:05d}"
        version = 2 if rng.random() < 0.05 else 1
        listing: dict[str, Any] = {
            "id": f"{arxiv_id}v{version}",
            "title": _title(rng, corpus),
            "authors": _authors(rng, corpus),
            "abstract": _abstract(rng, corpus),
            "categories": _categories(rng),
            "published": day.isoformat(),
            "url": f"https://arxiv.org/abs/{arxiv_id}",
            "source": "bench",
        }
        if rng.random() < 0.05:
            listing["extra"] = {"upvotes": rng.randint(1, 200)}
        yield listing


def iter_papers(total: int, *, seed: int = 1, seeds_dir: Path = SEEDS_DIR) -> Iterator[Paper]:
    """`total` generated papers, parsed the way the `files` source parses listings."""
    listings = iter_listings(total, seed=seed, seeds_dir=seeds_dir)
    return (listing_to_paper(listing, "bench") for listing in listings)


def batched(items: Iterator[Paper], size: int) -> Iterator[list[Paper]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    batch: list[Paper] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_time(batch: int, batches: int) -> datetime:
    """When batch `batch` of `batches` is stored: the batches spread over one year."""
    return T0 + timedelta(days=YEAR_DAYS * batch / max(batches, 1))


# --- profiles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileShape:
    """How big each generated profile is."""

    keywords: int = 50
    all_of: int = 5
    authors: int = 20
    excludes: int = 3
    live_share: float = 0.1  # share of keywords that are seed n-grams known to occur


def _variant(term: str, rng: random.Random) -> str:
    """A keyword as a user might type it: `quantiz*`, a plural, a hyphenated compound, cased."""
    words = term.split()
    roll = rng.random()
    last = words[-1]
    if roll < 0.15 and len(last) >= 8 and "-" not in last:
        words[-1] = last[: rng.randint(max(6, len(last) - 3), len(last) - 1)] + "*"
    elif roll < 0.30:
        words[-1] = last[:-1] if last.endswith("s") and not last.endswith("ss") else last + "s"
    elif roll < 0.45 and len(words) > 1:
        return "-".join(words)
    elif roll < 0.55:
        return " ".join(words).title()
    return " ".join(words)


def _near_miss(rng: random.Random, corpus: Corpus) -> str:
    """A plausible phrase that (almost) never occurs: a seed phrase with one word swapped."""
    words = rng.choice(corpus.uncommon_ngrams).split()
    words[rng.randrange(len(words))] = rng.choice(corpus.vocabulary)
    return " ".join(words)


def _keywords(rng: random.Random, corpus: Corpus, count: int, live_share: float) -> list[str]:
    terms = []
    for _ in range(count):
        if rng.random() < live_share:
            terms.append(rng.choice(corpus.rare_ngrams))
        else:
            terms.append(_near_miss(rng, corpus))
    return [_variant(t, rng) for t in dict.fromkeys(terms)]


def _followed(rng: random.Random, corpus: Corpus, count: int) -> tuple[FollowedAuthor, ...]:
    people = [person(person_index(rng), corpus) for _ in range(count)]
    authors = []
    for who in dict.fromkeys(people):
        roll = rng.random()
        if roll < 0.15:
            alias = f"{who.first[0]}. {who.last}"
            authors.append(FollowedAuthor(who.canonical, (alias,)))
        elif roll < 0.25:
            authors.append(FollowedAuthor(f"{who.last}, {who.first}"))
        else:
            authors.append(FollowedAuthor(who.canonical))
    return tuple(authors)


def make_profile(index: int, shape: ProfileShape, *, seed: int = 1) -> Profile:
    """Profile `index`: deterministic for (`index`, `shape`, `seed`)."""
    corpus = load_corpus()
    rng = random.Random(seed * 1_000_003 + index)
    groups = tuple(
        tuple(_variant(t, rng) for t in rng.sample(corpus.common_ngrams, rng.choice((2, 2, 3))))
        for _ in range(shape.all_of)
    )
    categories: tuple[str, ...] = ()
    if rng.random() < 0.5:
        categories = tuple(dict.fromkeys(rng.choices(_CATEGORY_VALUES[:6], k=rng.randint(1, 3))))
    minutes = rng.randrange(6 * 60, 9 * 60, 15)
    return Profile(
        name=f"p{index:04d}",
        emails=(f"reader{index}@example.org",),
        keywords=tuple(_keywords(rng, corpus, shape.keywords, shape.live_share)),
        all_of=groups,
        exclude=tuple(rng.sample(corpus.uncommon_ngrams, shape.excludes)),
        authors=_followed(rng, corpus, shape.authors),
        categories=categories,
        send_at=time(minutes // 60, minutes % 60),
        timezone=rng.choice(TIMEZONES),
    )


def iter_profiles(count: int, shape: ProfileShape, *, seed: int = 1) -> Iterator[Profile]:
    """`count` generated profiles."""
    return (make_profile(i, shape, seed=seed) for i in range(count))


# --- command line ---------------------------------------------------------------------------------


def write_jsonl(path: Path, total: int, *, seed: int = 1) -> int:
    """Write `total` generated listings to `path`, one JSON object a line; returns its size."""
    with path.open("w", encoding="utf-8") as out:
        for listing in iter_listings(total, seed=seed):
            out.write(json.dumps(listing, ensure_ascii=False) + "\n")
    return path.stat().st_size


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.generate --papers N [--seed S] --out FILE.jsonl` (`-` for stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    if args.out == "-":
        for listing in iter_listings(args.papers, seed=args.seed):
            sys.stdout.write(json.dumps(listing, ensure_ascii=False) + "\n")
    else:
        write_jsonl(Path(args.out), args.papers, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
