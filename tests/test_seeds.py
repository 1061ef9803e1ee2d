"""Tests for seeds/convert.py, the converter from captured listing pages to listing JSONL.

The page-based tests need the captured pages (``../shared/seeds`` or ``$DIGEST_SEED_PAGES``)
and skip only when that directory does not exist; the rule tests run everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def load_converter() -> ModuleType:
    """Import seeds/convert.py (seeds/ is not a package)."""
    spec = importlib.util.spec_from_file_location("seeds_convert", SEEDS / "convert.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


convert = load_converter()

STEMS = {
    "000": "000_399279880d475dc3",
    "001": "001_bfef749d84ab509c",
    "002": "002_4816939893d551bc",
    "003": "003_dff2f016470df65a",
    "004": "004_56b460e545ca38ee",
}
COUNTS = {"000": 22, "001": 50, "002": 67, "003": 63, "004": 96}
SOURCES = {
    "000": "seed:author-page",
    "001": "seed:author-page",
    "002": "seed:hf-papers",
    "003": "seed:hf-papers",
    "004": "seed:hf-papers",
}
KEYS = [
    "id",
    "title",
    "authors",
    "abstract",
    "categories",
    "published",
    "url",
    "source",
    "authors_truncated",
    "extra",
]
EXTRA_TYPES = {"upvotes": int, "code": bool, "affiliation": str, "author_count": int, "page": str}


@pytest.fixture(scope="module")
def pages_dir() -> Path:
    pages = Path(convert.default_pages_dir())  # seeds/convert.py is a script, not typed
    if not pages.is_dir():
        pytest.skip(f"seed pages directory {pages} does not exist")
    return pages


@pytest.fixture(scope="module")
def records(pages_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The converted records of every page, keyed by page number ("000" ... "004")."""
    out = {}
    for key, stem in STEMS.items():
        text = (pages_dir / f"{stem}.txt").read_text(encoding="utf-8")
        out[key] = convert.convert_page(text, stem, 2026)
    return out


def find(items: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """The single record with ``title``."""
    matches = [item for item in items if item["title"] == title]
    assert len(matches) == 1, title
    return matches[0]


# --- 1. the committed output is reproducible ---------------------------------------------------


def test_convert_all_reproduces_committed_jsonl_byte_for_byte(
    pages_dir: Path, tmp_path: Path
) -> None:
    written = convert.convert_all(pages_dir, tmp_path, 2026)
    assert [path.name for path in written] == [f"{stem}.jsonl" for stem in STEMS.values()]
    committed = sorted(path.name for path in SEEDS.glob("*.jsonl"))
    assert committed == [path.name for path in written]
    for path in written:
        assert path.read_bytes() == (SEEDS / path.name).read_bytes(), path.name


def test_cli_writes_the_same_files(pages_dir: Path, tmp_path: Path) -> None:
    args = ["--pages", str(pages_dir), "--out", str(tmp_path), "--year", "2026"]
    assert convert.main(args) == 0
    for stem in STEMS.values():
        assert (tmp_path / f"{stem}.jsonl").read_bytes() == (SEEDS / f"{stem}.jsonl").read_bytes()


def test_default_pages_dir_honours_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DIGEST_SEED_PAGES", str(tmp_path))
    assert convert.default_pages_dir() == tmp_path
    monkeypatch.delenv("DIGEST_SEED_PAGES")
    assert convert.default_pages_dir() == SEEDS.parents[1] / "shared" / "seeds"


@pytest.mark.parametrize("stem", STEMS.values())
def test_committed_file_format(stem: str) -> None:
    data = (SEEDS / f"{stem}.jsonl").read_bytes()
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    assert b"\r" not in data
    for line in data.decode("utf-8").split("\n")[:-1]:
        record = json.loads(line)
        assert json.dumps(record, ensure_ascii=False) == line
        assert list(record) == KEYS


# --- 2. glued title/author lines of page 001 ---------------------------------------------------

# (position on the page, title, first author, last listed author, number of authors, et al.)
GLUED_001 = [
    (  # comma and colon inside the title
        1,
        "Reinforce Data, Multiply Impact: Improved Model Accuracy and Robustness with Dataset "
        "Reinforcement",
        "Fartash Faghri",
        "Sachin Mehta",
        3,
        True,
    ),
    (  # title ends in an acronym: `RLCaglar`
        3,
        "An Empirical Study of Implicit Regularization in Deep Offline RL",
        "Caglar Gulcehre",
        "Jakub Sygnowski",
        3,
        True,
    ),
    (  # two-word variant of the name
        6,
        "ReLU Strikes Back: Exploiting Activation Sparsity in Large Language Models",
        "Iman Mirzadeh",
        "Sachin Mehta",
        3,
        True,
    ),
    (  # three-word last author
        8,
        "Scaling Smart: Accelerating Large Language Model Pre-training with Small Model "
        "Initialization",
        "Mohammad Samragh",
        "Keivan Alizadeh Vahid",
        3,
        True,
    ),
    (  # several commas in the title; the segment "Where It Hurts" looks like a name
        18,
        "Unmasking On-Policy Distillation: Where It Helps, Where It Hurts, and Why",
        "Mohammadreza Armandpour",
        "David Harrison",
        3,
        True,
    ),
    (  # title ends in digits: `2025Ethan`
        21,
        "Apple Intelligence Foundation Language Models: Tech Report 2025",
        "Ethan Li",
        "Chen Zhang",
        3,
        True,
    ),
    (  # three-word first author
        23,
        "RL for Reasoning by Adaptively Revealing Rationales",
        "Mohammad Hossein Amani",
        "Nicolas Mario Baldwin",
        3,
        True,
    ),
    (  # acronym with a plural s: `LLMsKumari`
        26,
        "From Dense to Dynamic: Token-Difficulty Driven MoEfication of Pre-Trained LLMs",
        "Kumari Nishu",
        "Samira Abnar",
        3,
        True,
    ),
    (  # all-caps acronym: `RLHFAtoosa`
        27,
        "SALSA: Soup-based Alignment Learning for Stronger Adaptation in RLHF",
        "Atoosa Chegini",
        "Iman Mirzadeh",
        3,
        True,
    ),
    (  # name written with a stray full stop
        30,
        "MoE-PHDS: One MoE checkpoint for flexible runtime sparsity",
        "Lauren. A Hannah",
        "Kumari Nishu",
        3,
        True,
    ),
    (  # full author list, three-word name in the middle
        32,
        "Continual Learning Beyond a Single Model",
        "Thang Doan",
        "Mehrdad Farajtabar",
        3,
        False,
    ),
    (  # three-word first author glued: `LearningSeyed Iman Mirzadeh`
        33,
        "Architecture Matters in Continual Learning",
        "Seyed Iman Mirzadeh",
        "Dong Yin",
        3,
        True,
    ),
    (  # `MDPsNevena`
        40,
        "A maximum-entropy approach to off-policy evaluation in average-reward MDPs",
        "Nevena Lazic",
        "Mehrdad Farajtabar",
        3,
        True,
    ),
    (  # hyphenated first author, full list
        43,
        "Dropout as an Implicit Gating Mechanism For Continual Learning",
        "Seyed-Iman Mirzadeh",
        "Hassan Ghasemzadeh",
        3,
        False,
    ),
    (  # initial in the last author
        44,
        "Self-Distillation Amplifies Regularization in Hilbert Space",
        "Hossein Mobahi",
        "Peter L. Bartlett",
        3,
        False,
    ),
    (  # hyphenated first author, et al.
        47,
        "Improved Knowledge Distillation via Teacher Assistant",
        "Seyed-Iman Mirzadeh",
        "Ang Li",
        3,
        True,
    ),
    (  # initials in the middle; `ML` category
        48,
        "Adapting Auxiliary Losses Using Gradient Similarity",
        "Yunshu Du",
        "Siddhant M. Jayakumar",
        3,
        True,
    ),
]


@pytest.mark.parametrize(("position", "title", "first", "last", "count", "truncated"), GLUED_001)
def test_glued_lines_of_page_001(
    records: dict[str, list[dict[str, Any]]],
    position: int,
    title: str,
    first: str,
    last: str,
    count: int,
    truncated: bool,
) -> None:
    record = records["001"][position - 1]
    assert record["title"] == title
    assert record["authors"][0] == first
    assert record["authors"][-1] == last
    assert len(record["authors"]) == count
    assert record["authors_truncated"] is truncated


def test_every_001_item_has_clean_title_and_names(records: dict[str, list[dict[str, Any]]]) -> None:
    for record in records["001"]:
        assert record["authors"], record["title"]
        assert record["title"] == record["title"].strip()
        assert record["title"][-1].isalnum() or record["title"][-1] in "?!)", record["title"]
        for name in record["authors"]:
            assert convert.is_plain_name(name, min_tokens=2), name


def test_glued_split_agrees_with_unglued_page(records: dict[str, list[dict[str, Any]]]) -> None:
    """Arbitrage is on page 000 (separate author line) and on page 001 (glued)."""
    title = "Arbitrage: Efficient Reasoning via Advantage-Aware Speculation"
    assert find(records["001"], title)["authors"] == find(records["000"], title)["authors"]


# Rule tests on made-up lines for shapes page 001 does not contain.
SPLIT_CASES = [
    ("Layer NormalizationJimmy Lei Ba", "Layer Normalization", ["Jimmy Lei Ba"], False, None),
    (
        "Why Do Multi-Agent LLM Systems Fail?Mert Cemri, Melissa Z. Pan et al. · berkeley",
        "Why Do Multi-Agent LLM Systems Fail?",
        ["Mert Cemri", "Melissa Z. Pan"],
        True,
        "berkeley",
    ),
    (
        "Training BERT in 76Yang You, Jing Li",
        "Training BERT in 76",
        ["Yang You", "Jing Li"],
        False,
        None,
    ),
    (
        "Models (Extended)Lukasz Kaiser · google, harvard",
        "Models (Extended)",
        ["Lukasz Kaiser"],
        False,
        "google, harvard",
    ),
    (
        "Graph TransformersRyan McDonald, Patrick O'Neil",
        "Graph Transformers",
        ["Ryan McDonald", "Patrick O'Neil"],
        False,
        None,
    ),
    ("A Study of ThingsPatrick O'Neil", "A Study of Things", ["Patrick O'Neil"], False, None),
    (
        "Cheap TricksŁukasz Kaiser, Ana Gómez",
        "Cheap Tricks",
        ["Łukasz Kaiser", "Ana Gómez"],
        False,
        None,
    ),
    (
        "Deep Offline RLSeyed-Iman Mirzadeh et al.",
        "Deep Offline RL",
        ["Seyed-Iman Mirzadeh"],
        True,
        None,
    ),
]


@pytest.mark.parametrize(("line", "title", "names", "truncated", "affiliation"), SPLIT_CASES)
def test_split_glued_rule(
    line: str, title: str, names: list[str], truncated: bool, affiliation: str | None
) -> None:
    result = convert.split_glued(line)
    assert result is not None
    got_title, authors = result
    assert got_title == title
    assert authors.names == names
    assert authors.truncated is truncated
    assert authors.affiliation == affiliation


@pytest.mark.parametrize(
    "line", ["A Title With No Authors At All", "Interleaved Head Attention", "ChipNet: Pruning"]
)
def test_split_glued_rejects_lines_without_a_glued_name(line: str) -> None:
    assert convert.split_glued(line) is None


TITLE_WORDS = ["Learning", "Continual", "via", "of", "Models", "LLMs", "RL", "KV", "2025", "Deep"]
TITLE_ENDS = ["Models", "RL", "RLHF", "LLMs", "MDPs", "2025", "Fail?", "(Extended)", "sparsity"]
FIRST_NAMES = ["Iman", "Seyed Iman", "Seyed-Iman", "Lauren. A", "Mohammad Hossein", "Xi", "Ang"]
LAST_NAMES = ["Mirzadeh", "Hannah", "Amani", "Wang", "Li", "McDonald", "O'Neil", "Gómez"]


@given(
    title_words=st.lists(st.sampled_from(TITLE_WORDS), max_size=6),
    title_end=st.sampled_from(TITLE_ENDS),
    names=st.lists(
        st.tuples(st.sampled_from(FIRST_NAMES), st.sampled_from(LAST_NAMES)).map(" ".join),
        min_size=1,
        max_size=4,
    ),
    et_al=st.booleans(),
    affiliation=st.sampled_from([None, "berkeley", "apple-ml, uw"]),
)
def test_split_glued_recovers_any_glued_line(
    title_words: list[str],
    title_end: str,
    names: list[str],
    et_al: bool,
    affiliation: str | None,
) -> None:
    title = " ".join([*title_words, title_end])
    line = title + ", ".join(names) + (" et al." if et_al else "")
    if affiliation:
        line += f" · {affiliation}"
    result = convert.split_glued(line)
    assert result is not None
    assert result[0] == title
    assert result[1].names == names
    assert result[1].truncated is et_al
    assert result[1].affiliation == affiliation


# --- 3. counts, schema and specific items ------------------------------------------------------


@pytest.mark.parametrize(("page", "count"), COUNTS.items())
def test_item_count_per_page(
    records: dict[str, list[dict[str, Any]]], page: str, count: int
) -> None:
    assert len(records[page]) == count


def test_header_paper_count_is_checked(pages_dir: Path) -> None:
    text = (pages_dir / f"{STEMS['000']}.txt").read_text(encoding="utf-8")
    cut = text[: text.index("CVJan 14, 2021")]  # drops the last of the "22 Papers"
    with pytest.raises(ValueError, match="22 Papers"):
        convert.convert_page(cut, STEMS["000"], 2026)


CHROME = [
    "new",
    "Get trending papers in your email inbox!",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
    "22 Papers",
    "Rishabh Tiwari",
    "LG",
    "h-index42",
    "22papers",
    "856citations",
    "Novelty54%",
    "AI Score59",
]


def test_no_organisation_cards_or_page_chrome(records: dict[str, list[dict[str, Any]]]) -> None:
    for page, items in records.items():
        for record in items:
            text = " ".join([record["title"], record["abstract"], *record["authors"]])
            for card in ("parameterlab", "Parameter Lab", "epfl-vita", "EPFL VITA Lab"):
                assert card not in text, (page, record["title"])
            assert record["title"] not in CHROME
            assert record["abstract"] not in CHROME
            assert not re.fullmatch(r"[A-Z]{2}[A-Z][a-z]{2} \d+.*", record["title"])
    # the papers next to the cards are kept, without authors
    cards_neighbours = [
        "Dr.LLM: Dynamic Layer Routing in LLMs",
        "Stable Video Infinity: Infinite-Length Video Generation with Error Recycling",
    ]
    for title in cards_neighbours:
        record = find(records["002"], title)
        assert record["authors"] == []
        assert record["authors_truncated"] is False
        assert "author_count" not in record["extra"]


@pytest.mark.parametrize("page", STEMS)
def test_schema_of_every_record(records: dict[str, list[dict[str, Any]]], page: str) -> None:
    for record in records[page]:
        assert list(record) == KEYS
        assert record["id"] == ""
        assert record["url"] == ""
        assert record["source"] == SOURCES[page]
        assert isinstance(record["title"], str) and record["title"]
        assert isinstance(record["abstract"], str) and record["abstract"]
        assert record["abstract"] == " ".join(record["abstract"].split())
        assert record["title"] == " ".join(record["title"].split())
        assert isinstance(record["authors"], list)
        assert all(isinstance(a, str) and a == a.strip() and a for a in record["authors"])
        assert isinstance(record["categories"], list)
        assert all(isinstance(c, str) for c in record["categories"])
        assert isinstance(record["authors_truncated"], bool)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["published"])
        assert date.fromisoformat(record["published"]) <= date(2026, 12, 31)
        extra = record["extra"]
        assert isinstance(extra, dict)
        assert list(extra) == [key for key in EXTRA_TYPES if key in extra]
        for key, value in extra.items():
            assert type(value) is EXTRA_TYPES[key], (key, value)
        assert extra["page"] == STEMS[page]
        if page in ("000", "001"):
            assert len(record["categories"]) == 1
            assert record["categories"][0] in {"cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML"}
            assert "upvotes" not in extra and "author_count" not in extra
        else:
            assert record["categories"] == []
            assert "code" not in extra and "affiliation" not in extra


def test_categories_map_short_codes(records: dict[str, list[dict[str, Any]]]) -> None:
    assert records["000"][0]["categories"] == ["cs.LG"]  # LGDec 14, 2022
    assert records["000"][1]["categories"] == ["cs.CL"]  # CLMar 4
    assert records["000"][8]["categories"] == ["cs.CV"]  # CVNov 24, 2022
    assert records["000"][9]["categories"] == ["cs.AI"]  # AIApr 9Code
    assert records["001"][47]["categories"] == ["stat.ML"]  # MLDec 5, 2018
    assert convert.map_category("RO") == "cs.RO"
    with pytest.raises(ValueError, match="unknown category"):
        convert.map_category("QQ")


def test_code_flag_and_affiliation(records: dict[str, list[dict[str, Any]]]) -> None:
    squeeze = records["000"][9]  # AIApr 9Code, author line without affiliation
    assert squeeze["title"].startswith("Squeeze Evolve:")
    assert squeeze["extra"] == {"code": True, "page": STEMS["000"]}
    assert squeeze["published"] == "2026-04-09"
    plateau = find(
        records["000"],
        "Multi-Plateau Ensemble for Endoscopic Artefact Segmentation and Detection",
    )
    assert plateau["extra"]["code"] is True  # CVMar 23, 2020Code
    assert plateau["published"] == "2020-03-23"
    first = records["000"][0]
    assert first["extra"] == {"affiliation": "berkeley", "page": STEMS["000"]}
    assert "code" not in first["extra"]
    lets = find(
        records["000"],
        "Let's (not) just put things in Context: Test-Time Training for Long-Context LLMs",
    )
    assert lets["extra"]["affiliation"] == "harvard, microsoft-research"
    tic = records["001"][1]
    assert tic["title"] == "TiC-CLIP: Continual Training of CLIP Models"
    assert tic["extra"] == {"code": True, "affiliation": "utoronto", "page": STEMS["001"]}
    assert tic["published"] == "2023-10-24"


def test_et_al_and_full_author_lists(records: dict[str, list[dict[str, Any]]]) -> None:
    first = records["000"][0]
    assert first["authors"] == ["Kushal Chauhan", "Rishabh Tiwari", "Jan Freyberg"]
    assert first["authors_truncated"] is True
    sieve = find(
        records["000"], "Overcoming Simplicity Bias in Deep Networks using a Feature Sieve"
    )
    assert sieve["authors"] == ["Rishabh Tiwari", "Pradeep Shenoy"]
    assert sieve["authors_truncated"] is False
    learning = find(records["000"], "Learning, Fast and Slow: Towards LLMs That Adapt Continually")
    assert learning["authors"] == ["Rishabh Tiwari", "Kusha Sareen", "Lakshya A Agrawal"]


def test_n_authors_items(records: dict[str, list[dict[str, Any]]]) -> None:
    survey = find(
        records["002"],
        "A Domain-Agnostic Approach for Characterization of Lifelong Learning Systems",
    )
    assert survey["authors"] == []
    assert survey["authors_truncated"] is True
    assert survey["extra"]["author_count"] == 47
    single = find(records["003"], "Continual Learning in Neural Networks")
    assert single["extra"]["author_count"] == 1
    assert single["authors_truncated"] is True
    for record in records["004"]:  # title and abstract only
        assert record["authors"] == [] and record["authors_truncated"] is False


def test_upvotes_and_item_dates(records: dict[str, list[dict[str, Any]]]) -> None:
    adair = records["002"][12]  # `Mar 21, 2024 2`
    assert adair["title"].startswith("AdaIR:")
    assert adair["published"] == "2024-03-21"
    assert adair["extra"] == {"upvotes": 2, "author_count": 6, "page": STEMS["002"]}
    tokenhmr = records["002"][0]  # `Apr 25, 2024`, no upvotes
    assert tokenhmr["published"] == "2024-04-25"
    assert "upvotes" not in tokenhmr["extra"]
    drllm = find(records["002"], "Dr.LLM: Dynamic Layer Routing in LLMs")  # `Oct 14 2`
    assert drllm["published"] == "2026-10-14"
    assert drllm["extra"] == {"upvotes": 2, "page": STEMS["002"]}
    stream = find(
        records["003"],
        "StreamDiffusion: A Pipeline-level Solution for Real-time Interactive Generation",
    )
    assert stream["extra"]["upvotes"] == 5
    assert sum("upvotes" in r["extra"] for r in records["002"]) == 11
    assert sum("upvotes" in r["extra"] for r in records["003"]) == 7


def test_dates_without_year_use_the_capture_year(
    pages_dir: Path, records: dict[str, list[dict[str, Any]]]
) -> None:
    assert records["000"][1]["published"] == "2026-03-04"  # CLMar 4
    assert records["000"][0]["published"] == "2022-12-14"  # LGDec 14, 2022
    assert records["001"][9]["published"] == "2026-01-30"  # CLJan 30
    assert {r["published"] for r in records["004"]} == {"2026-03-12"}  # header `Mar 12`
    # items of 003 without a date line take the page's date header `Oct 28`
    marlin = find(
        records["003"],
        "MARLIN: Mixed-Precision Auto-Regressive Parallel Inference on Large Language Models",
    )
    assert marlin["published"] == "2026-10-28"
    assert marlin["extra"] == {"page": STEMS["003"]}
    text = (pages_dir / f"{STEMS['000']}.txt").read_text(encoding="utf-8")
    other_year = convert.convert_page(text, STEMS["000"], 2025)
    assert other_year[1]["published"] == "2025-03-04"
    assert other_year[0]["published"] == "2022-12-14"


def test_latex_and_name_variants_kept_as_written(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    titles = {r["title"] for r in records["000"]}
    assert "$V_1$: Unifying Generation and Self-Verification for Parallel Reasoners" in titles
    assert "$\\texttt{SPECS}$: Faster Test-Time Scaling through Speculative Drafts" in titles
    names = {name for r in records["001"] for name in r["authors"]}
    assert {"Seyed Iman Mirzadeh", "Seyed-Iman Mirzadeh", "Iman Mirzadeh"} <= names
    assert {"Lauren. A Hannah", "Lauren Hannah"} <= names


def test_abstracts_are_whole_paragraphs(records: dict[str, list[dict[str, Any]]]) -> None:
    first = records["000"][0]["abstract"]
    assert first.startswith("Concept bottleneck models (CBMs) are interpretable neural networks")
    assert first.endswith("on the Caltech-UCSD Birds, CheXpert and OAI datasets.")
    last = records["004"][-1]
    assert last["title"] == "Generative Kernel Continual learning"
    assert last["abstract"].startswith("Kernel continual learning by derakhshani2021kernel")


def test_duplicates_across_pages_are_kept(records: dict[str, list[dict[str, Any]]]) -> None:
    pages_by_title: dict[str, set[str]] = defaultdict(set)
    for page, items in records.items():
        for record in items:
            pages_by_title[record["title"]].add(page)
    repeated = {title for title, pages in pages_by_title.items() if len(pages) > 1}
    assert len(repeated) >= 9
    assert pages_by_title["Discrete Key-Value Bottleneck"] == {"002", "003", "004"}
