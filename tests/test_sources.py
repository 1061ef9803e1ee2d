"""The `files` source and the fetch job: a bad payload fails only its own source."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from digest import limits
from digest.app import build_app, fetch
from digest.errors import SourceError
from digest.settings import Settings
from digest.sources import FetchContext
from digest.sources.files import FilesSource, listing_to_paper, parse_listing_jsonl
from digest.store import Store

from .conftest import DATA, Clock


def test_parse_listing_jsonl_reads_the_schema() -> None:
    papers = parse_listing_jsonl((DATA / "listings.jsonl").read_bytes(), "listings.jsonl")
    assert len(papers) == 6
    first = papers[0]
    assert (first.key, first.arxiv_id, first.version) == ("arxiv:2401.01234", "2401.01234", 2)
    assert first.listing_id == "2401.01234v2"
    assert first.authors == ("Rishabh Tiwari", "Ana Gómez")
    assert first.published is not None and first.published.isoformat() == "2024-01-03"
    doi_paper = papers[4]
    assert (doi_paper.key, doi_paper.doi, doi_paper.upvotes) == (
        "doi:10.1000/xyz-123",
        "10.1000/xyz-123",
        12,
    )
    no_id = papers[1]
    assert no_id.key.startswith("title:") and no_id.listing_id == ""


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"title": ""}', "'title' is missing or empty"),
        ('{"title": "x", "authors": "A B"}', "'authors' must be a list of strings"),
        ('{"title": "x", "published": "yesterday"}', "'published' is not an ISO date"),
        ('{"title": "x", "extra": []}', "'extra' must be an object"),
        ('["not", "an", "object"]', "must be a JSON object"),
        ('{"title": "x",', "Expecting"),
    ],
)
def test_bad_lines_name_the_file_and_line(line: str, problem: str) -> None:
    data = ('{"title": "fine"}\n\n' + line + "\n").encode()
    with pytest.raises(SourceError, match=r"^f\.jsonl:3: ") as caught:
        parse_listing_jsonl(data, "f.jsonl")
    assert problem in str(caught.value)


def test_not_utf8_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="not UTF-8"):
        parse_listing_jsonl(b'{"title": "caf\xe9"}', "f.jsonl")


def test_listing_without_optional_fields() -> None:
    paper = listing_to_paper({"title": "  Only   a title "})
    assert paper.title == "Only a title" and paper.authors == () and paper.published is None


def test_files_source_globs_and_fails_when_nothing_matches(tmp_path: Path, clock: Clock) -> None:
    (tmp_path / "a.jsonl").write_text('{"title": "A"}\n')
    (tmp_path / "b.jsonl").write_text('{"title": "B"}\n')
    assert [p.title for p in FilesSource("f", str(tmp_path / "*.jsonl")).read_all()] == [
        "A",
        "B",
    ]
    with pytest.raises(SourceError, match="no files match"):
        FilesSource("f", str(tmp_path / "*.none")).read_all()


def test_files_source_names_its_papers_by_its_configured_name(tmp_path: Path, clock: Clock) -> None:
    """The digest's `Sources:` line shows the configured name, not each line's own tag."""
    (tmp_path / "a.jsonl").write_text('{"title": "A", "source": "seed:hf-papers"}\n')
    result = FilesSource("my seeds", str(tmp_path / "*.jsonl")).fetch(FetchContext(now=clock()))
    [paper] = result.papers
    assert (paper.source, paper.sources) == ("my seeds", ("my seeds",))
    assert paper.extra_value("listing_source") == "seed:hf-papers"


def test_a_bad_source_stores_nothing_and_the_others_go_on(
    tmp_path: Path, make_settings: Callable[..., Settings], clock: Clock
) -> None:
    (tmp_path / "bad.jsonl").write_text('{"title": "Would be stored"}\n{"title": 3}\n')
    settings = make_settings(
        sources={
            "files": [
                {"name": "bad", "path": str(tmp_path / "bad.jsonl")},
                {"name": "good", "path": str(DATA / "listings.jsonl")},
            ]
        }
    )
    app = build_app(settings, store=Store.open(None), clock=clock)

    bad, good = fetch(app)

    assert "bad.jsonl:2: 'title' must be a string" in bad.error
    assert good.error == "" and good.counts.new == 6
    assert app.store.count_papers() == 6
    assert app.store.get_paper("title:x") is None
    [state] = app.store.failing_sources()
    assert state.name == "bad" and state.failing_since == clock.now
    assert app.store.fetch_state("good") is not None


def test_fetch_one_source_by_name(make_settings: Callable[..., Settings], clock: Clock) -> None:
    settings = make_settings(sources={"files": [{"name": "good", "path": str(DATA / "*.jsonl")}]})
    app = build_app(settings, store=Store.open(None), clock=clock)
    assert [r.source for r in fetch(app, "good")] == ["good"]
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match="no source named 'nope'"):
        fetch(app, "nope")


_READ_ALL = (
    "import sys\n"
    "from digest.errors import SourceError\n"
    "from digest.sources.files import FilesSource\n"
    "try:\n"
    "    FilesSource('f', sys.argv[1]).read_all()\n"
    "except SourceError as exc:\n"
    "    print(exc)\n"
)


def test_a_fifo_among_the_listing_files_fails_the_source_and_does_not_block(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.jsonl").write_text('{"title": "A"}\n')
    os.mkfifo(tmp_path / "b.jsonl")
    done = subprocess.run(  # a child, killed and reaped should the read block
        [sys.executable, "-c", _READ_ALL, str(tmp_path / "*.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"},
    )
    assert (
        done.stdout.strip() == f"{tmp_path / 'b.jsonl'}: is a named pipe (FIFO), not a regular file"
    )


def test_a_listing_file_past_the_size_bound_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "LISTING_FILE_BYTES", 1000)
    (tmp_path / "big.jsonl").write_text('{"title": "A"}\n' * 100)
    with pytest.raises(SourceError, match=r"big\.jsonl: larger than 1,000 bytes, not read"):
        FilesSource("f", str(tmp_path / "*.jsonl")).read_all()
