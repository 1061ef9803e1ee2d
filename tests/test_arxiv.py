"""arXiv parsers over the fixtures (and small inline payloads), and the arXiv sources over
httpx.MockTransport."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from digest.errors import SourceError
from digest.http import PoliteClient
from digest.models import FollowedAuthor, Paper
from digest.settings import ArxivConfig
from digest.sources import FetchContext
from digest.sources.arxiv import (
    ApiPage,
    ArxivAuthorsSource,
    ArxivListingSource,
    ListedPaper,
    parse_api_feed,
    parse_listing_feed,
    split_creators,
)
from digest.sources.clean import clean_paper

from .conftest import DATA

ARXIV = DATA / "arxiv"
NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)

RSS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
    "<channel><title>cs.LG updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs.LG</link>"
    "<description>cs.LG updates on the arXiv.org e-print archive.</description>"
)


def listing(name: str) -> tuple[ListedPaper, ...]:
    """The fixture's items as the store sees them (`clean_paper` reads the TeX in names)."""
    listed = parse_listing_feed((ARXIV / name).read_bytes())
    return tuple(ListedPaper(clean_paper(item.paper), item.announce) for item in listed)


def api(name: str) -> ApiPage:
    page = parse_api_feed((ARXIV / name).read_bytes())
    return replace(page, papers=tuple(clean_paper(paper) for paper in page.papers))


def rss(*items: str) -> bytes:
    return (
        RSS_HEAD + "".join(f"<item>{item}</item>" for item in items) + "</channel></rss>"
    ).encode()


def one_item(item: str) -> Paper:
    [listed] = parse_listing_feed(rss(item))
    return listed.paper


# --- listing feed ---------------------------------------------------------------------------------


def test_listing_items_in_feed_order_with_their_announce_types() -> None:
    assert [
        (i.announce, i.paper.listing_id, i.paper.version) for i in listing("listing_cs.xml")
    ] == [
        ("new", "2401.01234v1", 1),
        ("cross", "2401.02345v1", 1),
        ("replace", "2309.00001v3", 3),
        ("replace-cross", "2312.09999v2", 2),
        ("replace-cross", "hep-th/9901001v2", 2),
    ]


def test_listing_new_item_every_field() -> None:
    assert listing("listing_cs.xml")[0] == ListedPaper(
        Paper(
            key="arxiv:2401.01234",
            title="QuantSpec: Self-Speculative Decoding with Hierarchical Quantized KV Cache",
            authors=("Rishabh Tiwari", "André Martins", "Bob Li"),
            abstract=(
                "Large Language Models are increasingly deployed on edge devices for long-context"
                " settings. We propose a self-speculative decoding framework with a hierarchical"
                " quantized KV cache."
            ),
            categories=("cs.LG", "cs.CL"),
            published=date(2024, 1, 4),
            url="https://arxiv.org/abs/2401.01234",
            source="arxiv",
            listing_id="2401.01234v1",
            arxiv_id="2401.01234",
            version=1,
            extra=(
                (
                    "affiliations",
                    ["University of California, Berkeley, EECS", "Instituto Superior Técnico", ""],
                ),
                ("announce_type", "new"),
            ),
        ),
        "new",
    )


def test_listing_replacement_every_field() -> None:
    """Numbered affiliations resolved through the legend; TeX in titles is left for matching."""
    assert listing("listing_cs.xml")[2] == ListedPaper(
        Paper(
            key="arxiv:2309.00001",
            title="An Old Paper, Revised: Sparse $\\ell_1$ Recovery Revisited",
            authors=("Jane Müller", "José García"),
            abstract=(
                "A revised version of a paper from last year."
                " We bound the $\\ell_1$ error of sparse recovery."
            ),
            categories=("cs.LG", "math.ST", "stat.TH"),
            published=date(2024, 1, 4),
            url="https://arxiv.org/abs/2309.00001",
            source="arxiv",
            listing_id="2309.00001v3",
            arxiv_id="2309.00001",
            version=3,
            extra=(
                ("affiliations", ["ETH Zürich", "ETH Zürich; Universidad de Chile"]),
                ("announce_type", "replace"),
            ),
        ),
        "replace",
    )


def test_listing_cross_and_old_style_items() -> None:
    items = listing("listing_cs.xml")
    cross, old = items[1].paper, items[4].paper
    assert cross.authors == ("Seyed Iman Mirzadeh", "Mehrdad Farajtabar")
    assert cross.extra_value("affiliations") == ["", "Apple"]
    assert cross.categories == ("cs.CV", "cs.LG")  # no primary category invented
    assert cross.extra_value("primary_category") is None
    assert items[3].paper.extra_value("affiliations") is None  # nobody has one: left out
    assert (old.key, old.arxiv_id, old.url) == (
        "arxiv:hep-th/9901001",
        "hep-th/9901001",
        "https://arxiv.org/abs/hep-th/9901001",
    )
    assert old.authors == ("Bjørn Strøm", "Günter Weiß")


def test_weekend_feed_is_empty_not_an_error() -> None:
    assert listing("listing_weekend.xml") == ()


def test_the_atom_listing_reads_as_the_rss_listing() -> None:
    atom = listing("listing_cs_atom.xml")
    assert [(i.announce, i.paper.listing_id) for i in atom] == [
        (i.announce, i.paper.listing_id) for i in listing("listing_cs.xml")
    ]
    assert atom == listing("listing_cs.xml")


ATOM_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"'
    ' xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<id>http://rss.arxiv.org/atom/cs.SE</id><title>cs.SE updates on arXiv.org</title>"
)


def atom(*entries: str) -> bytes:
    return (ATOM_HEAD + "".join(f"<entry>{e}</entry>" for e in entries) + "</feed>").encode()


def test_a_weekend_atom_listing_is_empty_not_an_error() -> None:
    assert parse_listing_feed(atom()) == ()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            rss(
                "<title>T</title><guid>oai:arXiv.org:2401.00001v1</guid>"
                "<arxiv:DOI>10.1145/3650212.3680308</arxiv:DOI>"
            ),
            id="rss",
        ),
        pytest.param(
            atom(
                "<id>oai:arXiv.org:2401.00001v1</id><title>T</title>"
                "<arxiv:DOI>10.1145/3650212.3680308 10.5555/other</arxiv:DOI>"
            ),
            id="atom",
        ),
    ],
)
def test_the_listing_keeps_the_doi(payload: bytes) -> None:
    [listed] = parse_listing_feed(payload)
    assert listed.paper.doi == "10.1145/3650212.3680308"
    assert listed.paper.key == "arxiv:2401.00001"


def test_an_atom_listing_entry_reads_its_link_date_and_categories() -> None:
    [listed] = parse_listing_feed(
        atom(
            "<id>oai:arXiv.org:2401.00001v2</id><title>T</title>"
            '<link href="https://arxiv.org/abs/2401.00001" rel="alternate" type="text/html"/>'
            "<summary>arXiv:2401.00001v2 Announce Type: replace Abstract: An abstract.</summary>"
            '<category term="cs.SE"/><category term="cs.PL"/>'
            "<published>2024-01-22T00:00:00-05:00</published>"
            "<dc:creator>Gordon Fraser, Andrea Stocco</dc:creator>"
        )
    )
    paper = listed.paper
    assert listed.announce == "replace"
    assert (paper.listing_id, paper.version, paper.abstract) == ("2401.00001v2", 2, "An abstract.")
    assert (paper.categories, paper.published) == (("cs.SE", "cs.PL"), date(2024, 1, 22))
    assert paper.authors == ("Gordon Fraser", "Andrea Stocco")


@pytest.mark.parametrize(
    ("item", "listing_id", "version"),
    [
        # The guid first, then the description, then the link.
        (
            "<guid>oai:arXiv.org:2401.00005v2</guid><link>https://arxiv.org/abs/2401.00009</link>"
            "<description>arXiv:2401.00007v1 Announce Type: new Abstract: x</description>",
            "2401.00005v2",
            2,
        ),
        (
            "<link>https://arxiv.org/abs/2401.00009</link>"
            "<description>arXiv:2401.00007v4 Announce Type: replace Abstract: x</description>",
            "2401.00007v4",
            4,
        ),
        ("<link>http://arxiv.org/abs/2401.00009v3</link>", "2401.00009v3", 3),
        # Without any version, a new submission is its first version.
        (
            "<link>https://arxiv.org/abs/2401.00009</link>"
            "<arxiv:announce_type>new</arxiv:announce_type>",
            "2401.00009",
            1,
        ),
        (
            "<link>https://arxiv.org/abs/2401.00009</link>"
            "<arxiv:announce_type>replace</arxiv:announce_type>",
            "2401.00009",
            0,
        ),
        ("<guid>oai:arXiv.org:math/0601001v1</guid>", "math/0601001v1", 1),
    ],
)
def test_listing_id_sources(item: str, listing_id: str, version: int) -> None:
    paper = one_item(f"<title>T</title>{item}")
    assert (paper.listing_id, paper.version) == (listing_id, version)
    assert paper.key == f"arxiv:{listing_id.split('v')[0]}"


@pytest.mark.parametrize(
    ("item", "announce"),
    [
        ("<arxiv:announce_type>new</arxiv:announce_type>", "new"),
        ("<arxiv:announce_type> Replace-Cross </arxiv:announce_type>", "replace-cross"),
        (
            "<description>arXiv:2401.00001v2 Announce Type: replace Abstract: x</description>",
            "replace",
        ),
        ("<description>Just an abstract.</description>", "new"),
    ],
)
def test_listing_announce_type(item: str, announce: str) -> None:
    [listed] = parse_listing_feed(
        rss(f"<title>T</title><guid>oai:arXiv.org:2401.00001v2</guid>{item}")
    )
    assert listed.announce == listed.paper.extra_value("announce_type") == announce


@pytest.mark.parametrize(
    ("title", "description", "expected_title", "expected_abstract"),
    [
        (
            "One\n  two\tthree ",
            "arXiv:2401.00001v1 Announce Type: new \nAbstract: a\n b",
            "One two three",
            "a b",
        ),
        (
            "T",
            "arXiv:2401.00001v1 Announce Type: cross\nAbstract:\n\n  Lines\n\nand  gaps.\n",
            "T",
            "Lines and gaps.",
        ),
        ("T", "arXiv:2401.00001v1  Announce Type:  replace-cross  Abstract: x", "T", "x"),
        ("T", "No header here,\n just text.", "T", "No header here, just text."),
        ("T", "", "T", ""),
        (
            "T",
            "arXiv:2401.00001v1 Announce Type: new \nAbstract: We cite arXiv:2312.00001 here.",
            "T",
            "We cite arXiv:2312.00001 here.",
        ),
    ],
)
def test_listing_whitespace_and_description_head(
    title: str, description: str, expected_title: str, expected_abstract: str
) -> None:
    paper = one_item(
        f"<title>{title}</title><description>{description}</description>"
        "<guid>oai:arXiv.org:2401.00001v1</guid>"
    )
    assert (paper.title, paper.abstract) == (expected_title, expected_abstract)


def test_listing_pubdate_is_the_announcement_day_in_its_own_zone() -> None:
    paper = one_item(
        "<title>T</title><guid>oai:arXiv.org:2401.00001v1</guid>"
        "<pubDate>Mon, 22 Jan 2024 00:00:00 -0500</pubDate>"
    )
    assert paper.published == date(2024, 1, 22)
    assert one_item("<title>T</title><guid>oai:arXiv.org:2401.00001v1</guid>").published is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<rss><channel><item>", r"malformed XML \(cut short\)"),
        (b"<rss><channel></item></channel></rss>", "malformed XML: mismatched tag"),
        (b"", "empty response"),
        (b"<!DOCTYPE html><html><body>Service unavailable&nbsp;</body></html>", "HTML page"),
        (b"<html><body><p>Service unavailable</p></body></html>", "HTML page"),
        (b"<feed/>", r"not an RSS 2\.0 or Atom feed \(root element <feed>\)"),
        (b"<rss version='2.0'/>", "not an RSS 2.0 or Atom feed"),
        (rss("<title>No id</title><link>https://example.org/</link>"), "item without an arXiv id"),
        (rss("<guid>oai:arXiv.org:2401.00001v1</guid>"), "item without a title"),
    ],
)
def test_bad_listing_payloads_name_the_origin_in_one_line(data: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=f"^feed-url: .*{problem}") as raised:
        parse_listing_feed(data, origin="feed-url")
    assert "\n" not in str(raised.value)


# --- author lists and TeX -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creators", "expected"),
    [
        ("Ana Gómez", (("Ana Gómez", ""),)),
        ("A One, B Two", (("A One", ""), ("B Two", ""))),
        ("A One (MIT, CSAIL), B Two", (("A One", "MIT, CSAIL"), ("B Two", ""))),
        (
            "Ana Gómez (MIT, CSAIL), Andr\\'e Martins, Bob Li (Univ. of X, Dept. Y)",
            (
                ("Ana Gómez", "MIT, CSAIL"),
                ("Andr\\'e Martins", ""),  # TeX is read later, by clean_paper
                ("Bob Li", "Univ. of X, Dept. Y"),
            ),
        ),
        (
            "A One (Univ. of X (Dept. Y), Z), B Two",
            (("A One", "Univ. of X (Dept. Y), Z"), ("B Two", "")),
        ),
        ("A One, B Two and C Three", (("A One", ""), ("B Two", ""), ("C Three", ""))),
        ("A One, B Two, and C Three", (("A One", ""), ("B Two", ""), ("C Three", ""))),
        ("A One and B Two", (("A One", ""), ("B Two", ""))),
        ("Anand Rand, Sandy Andersen", (("Anand Rand", ""), ("Sandy Andersen", ""))),
        ("A One (Research and Development Lab)", (("A One", "Research and Development Lab"),)),
        ("A One (X and (Y, Z)) and B Two", (("A One", "X and (Y, Z)"), ("B Two", ""))),
        ("A One (MIT) (Google), B Two", (("A One", "MIT; Google"), ("B Two", ""))),
        ("Andr\\'e Martins", (("Andr\\'e Martins", ""),)),
        (
            'J\\"urgen M\\"uller (Universit\\"at Hamburg)',
            (('J\\"urgen M\\"uller', 'Universit\\"at Hamburg'),),
        ),
        ("  A   One ,  B Two  ", (("A One", ""), ("B Two", ""))),
        ("A One,\n  B Two,", (("A One", ""), ("B Two", ""))),
        ("A One, , B Two", (("A One", ""), ("B Two", ""))),
        (
            "A One (1), B Two (1 and 2), C Three (2) ((1) MIT, (2) Univ. of X, Dept. Y)",
            (
                ("A One", "MIT"),
                ("B Two", "MIT; Univ. of X, Dept. Y"),
                ("C Three", "Univ. of X, Dept. Y"),
            ),
        ),
        ("A One (1, 3) ((1) MIT)", (("A One", "MIT; 3"),)),
        ("A One (MIT, B Two", (("A One (MIT", ""), ("B Two", ""))),  # unbalanced: plain text
        ("A One ()", (("A One", ""),)),
        ("", ()),
    ],
)
def test_split_creators(creators: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert split_creators(creators) == expected


NAME = st.from_regex(
    r"[A-Z][a-zà-ÿ'\-]{0,8}(?: [A-Z]\.| [a-z]{2,3})?(?: [A-Z][a-zà-ÿ\-]{1,10})", fullmatch=True
)


@given(st.lists(NAME.filter(lambda n: "and" not in n.split()), min_size=1, max_size=8))
def test_split_creators_round_trips_simple_names(names: list[str]) -> None:
    assert [name for name, _ in split_creators(", ".join(names))] == names


@given(
    st.lists(
        st.tuples(
            NAME.filter(lambda n: "and" not in n.split()),
            st.from_regex(r"[A-Z][A-Za-z.]{0,10}(?:, [A-Z][A-Za-z. ]{0,10}[a-z])?", fullmatch=True),
        ),
        min_size=1,
        max_size=6,
    )
)
@example([("A Aa", "A, A  a")])  # a run of spaces in an affiliation is read as one
def test_split_creators_round_trips_affiliations(pairs: list[tuple[str, str]]) -> None:
    creators = ", ".join(f"{name} ({affiliation})" for name, affiliation in pairs)
    expected = [(name, " ".join(affiliation.split())) for name, affiliation in pairs]
    assert list(split_creators(creators)) == expected


# --- API feed -------------------------------------------------------------------------------------


def test_api_page_one_every_field() -> None:
    page = api("api_page1.xml")
    assert (page.total, page.start, page.per_page, len(page.papers)) == (3, 0, 2, 2)
    first, second = page.papers
    assert first == Paper(
        key="arxiv:2401.02345",
        title="Continual Learning for Vision Transformers",
        authors=("Seyed Iman Mirzadeh", "Mehrdad Farajtabar", "François Fleuret"),
        abstract="We study catastrophic forgetting in vision transformers.",
        categories=("cs.CV", "cs.LG"),
        published=date(2024, 1, 3),
        url="https://arxiv.org/abs/2401.02345",
        source="arxiv-api",
        listing_id="2401.02345v1",
        arxiv_id="2401.02345",
        version=1,
        doi="10.1109/cvpr.2024.00042",
        extra=(
            ("affiliations", ["Apple", "", "University of Geneva; Idiap Research Institute"]),
            ("comment", "12 pages, 4 figures"),
            ("journal_ref", "CVPR 2024, pp. 401-410"),
            ("pdf_url", "https://arxiv.org/pdf/2401.02345v1"),
            ("primary_category", "cs.CV"),
            ("updated", "2024-01-03"),
        ),
    )
    assert (second.listing_id, second.version, second.doi) == (
        "2312.05555v2",
        2,
        "10.1000/icml.2023.42",
    )
    assert second.categories == ("cs.LG", "stat.ML")  # primary first, no duplicates
    assert second.published == date(2023, 12, 10)
    assert dict(second.extra) == {
        "journal_ref": "ICML 2023",
        "pdf_url": "https://arxiv.org/pdf/2312.05555v2",
        "primary_category": "cs.LG",
        "updated": "2023-12-20",
    }


def test_api_page_two_in_the_2026_shape_every_field() -> None:
    """Other prefixes, other element order, https links, the PDF link marked by type only."""
    page = api("api_page2.xml")
    assert (page.total, page.start, page.per_page) == (3, 2, 2)
    assert page.papers == (
        Paper(
            key="arxiv:2311.04444",
            title="Dropout as an Implicit Gating Mechanism",
            authors=("Iman Mirzadeh", "José García"),
            abstract="Dropout acts as an implicit gating mechanism.",
            categories=("stat.ML", "cs.LG"),
            published=date(2023, 11, 8),
            url="https://arxiv.org/abs/2311.04444",
            source="arxiv-api",
            listing_id="2311.04444v1",
            arxiv_id="2311.04444",
            version=1,
            doi="10.5555/jmlr.2024.17",  # the first of the two DOIs
            extra=(
                ("affiliations", ["Apple; Washington State University", ""]),
                ("comment", "Accepted at JMLR; code at https://github.com/example/dropout-gating"),
                ("journal_ref", "Journal of Machine Learning Research 25 (2024) 1-30"),
                ("pdf_url", "https://arxiv.org/pdf/2311.04444v1"),
                ("primary_category", "stat.ML"),
                ("updated", "2024-02-01"),
            ),
        ),
    )


def _shape(paper: Paper) -> tuple[list[str], list[str]]:
    filled = [name for name in Paper.__slots__ if getattr(paper, name) not in ("", (), None, 0)]
    return filled, [name for name, _ in paper.extra]


def test_api_page_two_parses_to_the_same_shape_as_page_one() -> None:
    assert _shape(api("api_page2.xml").papers[0]) == _shape(api("api_page1.xml").papers[0])


ENTRY = """<?xml version="1.0" encoding="UTF-8"?>
<{a}feed {ns}>
  <{a}entry>
    <{x}primary_category term="cs.CL"/>
    <{a}id>http://arxiv.org/abs/2402.00001v3</{a}id>
    <{a}title>T</{a}title>
    <{a}author><{a}name>Ana G\\'omez</{a}name><{x}affiliation>MIT</{x}affiliation></{a}author>
    <{x}comment>C</{x}comment>
    <{a}link href="http://arxiv.org/pdf/2402.00001v3" title="pdf" rel="related"/>
    <{a}category term="cs.AI"/>
  </{a}entry>
  <{o}totalResults>1</{o}totalResults>
  <{o}itemsPerPage>10</{o}itemsPerPage>
  <{o}startIndex>0</{o}startIndex>
</{a}feed>
"""
ATOM_NS, OPENSEARCH_NS, ARXIV_NS = (
    "http://www.w3.org/2005/Atom",
    "http://a9.com/-/spec/opensearch/1.1/",
    "http://arxiv.org/schemas/atom",
)


@pytest.mark.parametrize(
    ("a", "o", "x"),
    [
        ("", "opensearch", "arxiv"),  # Atom as the default namespace, as arXiv long did
        ("ns0", "ns1", "ns2"),
        ("atom", "os", "ax"),
        ("atom", "arxiv", "opensearch"),  # the conventional prefixes on the wrong namespaces
    ],
)
def test_api_reads_namespaces_not_prefixes(a: str, o: str, x: str) -> None:
    declare = " ".join(
        f'xmlns{":" + p if p else ""}="{uri}"'
        for p, uri in ((a, ATOM_NS), (o, OPENSEARCH_NS), (x, ARXIV_NS))
    )
    data = ENTRY.format(a=a and a + ":", o=o + ":", x=x + ":", ns=declare).encode()
    page = parse_api_feed(data)
    [paper] = [clean_paper(p) for p in page.papers]
    assert (page.total, page.start, page.per_page) == (1, 0, 10)
    assert (paper.listing_id, paper.authors, paper.categories) == (
        "2402.00001v3",
        ("Ana Gómez",),
        ("cs.CL", "cs.AI"),
    )
    assert dict(paper.extra) == {
        "affiliations": ["MIT"],
        "comment": "C",
        "pdf_url": "https://arxiv.org/pdf/2402.00001v3",
        "primary_category": "cs.CL",
    }


def test_api_elements_in_a_foreign_namespace_are_not_read() -> None:
    data = ENTRY.format(
        a="",
        o="o:",
        x="x:",
        ns=f'xmlns="{ATOM_NS}" xmlns:o="{OPENSEARCH_NS}" xmlns:x="http://example.org/not-arxiv"',
    ).encode()
    [paper] = parse_api_feed(data).papers
    assert (paper.categories, paper.extra_value("comment")) == (("cs.AI",), None)


def test_api_error_entry_reports_its_summary() -> None:
    with pytest.raises(SourceError) as raised:
        parse_api_feed((ARXIV / "api_error.xml").read_bytes(), origin="https://api.test/query")
    assert str(raised.value) == (
        "https://api.test/query: arXiv API error: incorrect id format for 1234.12345"
    )


def test_api_error_recognised_by_its_id_among_other_entries() -> None:
    data = ENTRY.format(
        a="", o="o:", x="x:", ns=f'xmlns="{ATOM_NS}" xmlns:o="{OPENSEARCH_NS}" xmlns:x="{ARXIV_NS}"'
    )
    error = (
        "<entry><id>http://arxiv.org/api/errors#max_results_must_be_non-negative</id>"
        "<title>Error</title><summary>max_results must be non-negative</summary></entry></feed>"
    )
    with pytest.raises(SourceError, match=r"arXiv API error: max_results must be non-negative$"):
        parse_api_feed(data.replace("</feed>", error).encode())


def test_a_paper_titled_error_is_not_an_error() -> None:
    data = ENTRY.format(
        a="", o="o:", x="x:", ns=f'xmlns="{ATOM_NS}" xmlns:o="{OPENSEARCH_NS}" xmlns:x="{ARXIV_NS}"'
    )
    data = data.replace("<title>T</title>", "<title>Error</title>")
    two = data.replace(
        "<entry>",
        "<entry><id>http://arxiv.org/abs/2402.00002v1</id><title>U</title></entry><entry>",
        1,
    )
    assert [p.title for p in parse_api_feed(two.encode()).papers] == ["U", "Error"]


def test_api_unknown_id_is_zero_entries() -> None:
    assert api("api_empty.xml") == ApiPage(papers=(), total=0, start=0, per_page=10)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>', r"malformed XML \(cut short\)"),
        (b"<feed><entry></feed>", "malformed XML: mismatched tag"),
        (b"  \n", "empty response"),
        (b"<!doctype html>\n<html><head><title>503</title></head></html>", "HTML page"),
        (b"<feed><entry/></feed>", r"not an Atom feed \(root element <feed>\)"),
        (b"<rss version='2.0'><channel/></rss>", r"not an Atom feed \(root element <rss>\)"),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:o="http://a9.com/-/spec/opensearch/1.1/">'
            b"<o:totalResults>many</o:totalResults></feed>",
            "opensearch:totalResults is not a number: 'many'",
        ),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://example.org/1</id>'
            b"<title>T</title></entry></feed>",
            "entry whose id is not an arXiv id: 'http://example.org/1'",
        ),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
            b"<id>http://arxiv.org/abs/2401.00001v1</id><title> </title></entry></feed>",
            "entry without a title",
        ),
    ],
)
def test_bad_api_payloads_name_the_origin_in_one_line(data: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=f"^api-url: .*{problem}") as raised:
        parse_api_feed(data, origin="api-url")
    assert "\n" not in str(raised.value)


def test_api_page_without_opensearch_totals_is_its_own_last_page() -> None:
    data = ENTRY.format(
        a="", o="o:", x="x:", ns=f'xmlns="{ATOM_NS}" xmlns:o="urn:other" xmlns:x="{ARXIV_NS}"'
    )
    page = parse_api_feed(data.encode())
    assert (page.total, page.start, page.per_page, len(page.papers)) == (1, 0, 1, 1)


@pytest.mark.parametrize(
    ("fields", "doi", "pdf_url"),
    [
        ("<arxiv:doi>10.1000/ABC</arxiv:doi>", "10.1000/abc", ""),
        (
            '<link title="doi" href="http://dx.doi.org/10.1000/XYZ" rel="related"/>',
            "10.1000/xyz",
            "",
        ),
        ('<link title="doi" href="https://doi.org/10.1000/XYZ" rel="related"/>', "10.1000/xyz", ""),
        (
            '<link href="http://arxiv.org/pdf/2401.00001v1" rel="related" type="application/pdf"/>',
            "",
            "https://arxiv.org/pdf/2401.00001v1",
        ),
        (
            '<link href="https://arxiv.org/pdf/2401.00001v1" title="pdf" rel="related"/>',
            "",
            "https://arxiv.org/pdf/2401.00001v1",
        ),
        (
            '<link href="http://arxiv.org/abs/2401.00001v1" rel="alternate" type="text/html"/>',
            "",
            "",
        ),
    ],
)
def test_api_doi_and_pdf_links(fields: str, doi: str, pdf_url: str) -> None:
    data = (
        f'<feed xmlns="{ATOM_NS}" xmlns:arxiv="{ARXIV_NS}"><entry><id>http://arxiv.org/abs/2401.00001v1</id>'
        f"<title>T</title>{fields}</entry></feed>"
    ).encode()
    [paper] = parse_api_feed(data).papers
    assert (paper.doi, paper.extra_value("pdf_url", "")) == (doi, pdf_url)
    assert paper.url == "https://arxiv.org/abs/2401.00001"


# --- sources over MockTransport -------------------------------------------------------------------


def _client(handler: httpx.MockTransport) -> PoliteClient:
    return PoliteClient(transport=handler, default_interval=0.0, sleep=lambda s: None)


def test_listing_source_keeps_new_and_cross_and_updates_replacements() -> None:
    requested: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(request)
        return httpx.Response(
            200, content=(ARXIV / "listing_cs.xml").read_bytes(), headers={"ETag": '"e"'}
        )

    config = ArxivConfig(categories=["cs.LG", "cs.CL"], listing_url="https://rss.test/rss")
    result = ArxivListingSource(config).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert str(requested[0].url) == "https://rss.test/rss/cs.LG+cs.CL"
    assert [p.arxiv_id for p in result.papers] == ["2401.01234", "2401.02345"]
    assert [p.arxiv_id for p in result.updates] == ["2309.00001", "2312.09999", "hep-th/9901001"]
    assert result.validators["https://rss.test/rss/cs.LG+cs.CL"].etag == '"e"'

    no_cross = ArxivListingSource(config.model_copy(update={"include_cross": False}))
    result = no_cross.fetch(FetchContext(now=NOW, client=_client(httpx.MockTransport(handler))))
    assert [p.arxiv_id for p in result.papers] == ["2401.01234"]


def test_authors_source_pages_through_every_spelling() -> None:
    queries: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        queries.append(query)
        page = "api_page1.xml" if query["start"] == ["0"] else "api_page2.xml"
        return httpx.Response(200, content=(ARXIV / page).read_bytes())

    config = ArxivConfig(api_url="https://api.test/query", max_results=2, author_days=365)
    author = FollowedAuthor("Seyed Iman Mirzadeh", ("Iman Mirzadeh",))
    result = ArxivAuthorsSource(config, [author]).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert [q["search_query"][0] for q in queries] == [
        'au:"Seyed Iman Mirzadeh"',
        'au:"Seyed Iman Mirzadeh"',
        'au:"Iman Mirzadeh"',
        'au:"Iman Mirzadeh"',
    ]
    assert [q["start"][0] for q in queries] == ["0", "2", "0", "2"]
    assert queries[0]["sortBy"] == ["submittedDate"]
    assert sorted(p.arxiv_id for p in result.papers) == ["2311.04444", "2312.05555", "2401.02345"]


def test_authors_source_stops_at_papers_older_than_the_window() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=(ARXIV / "api_page1.xml").read_bytes())

    config = ArxivConfig(api_url="https://api.test/query", max_results=2, author_days=14)
    result = ArxivAuthorsSource(config, [FollowedAuthor("Seyed Iman Mirzadeh")]).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert [p.arxiv_id for p in result.papers] == ["2401.02345"]
    assert len(calls) == 1


def test_api_http_400_error_feed_fails_the_source_with_its_summary() -> None:
    handler = httpx.MockTransport(
        lambda r: httpx.Response(400, content=(ARXIV / "api_error.xml").read_bytes())
    )
    config = ArxivConfig(api_url="https://api.test/query")
    with pytest.raises(SourceError, match="incorrect id format"):
        ArxivAuthorsSource(config, [FollowedAuthor("A B")]).fetch(
            FetchContext(now=NOW, client=_client(handler))
        )
