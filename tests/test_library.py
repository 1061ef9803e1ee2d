"""The library: BibTeX, RIS and CSL-JSON exports read into entries keyed like papers, and the
profile settings that name them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from digest import library as library_module
from digest import limits
from digest.errors import ConfigError
from digest.library import LibraryEntry, load_library, read_library_file
from digest.settings import load_settings

DATA = Path(__file__).parent / "data" / "library"


def _by_title(entries: tuple[LibraryEntry, ...]) -> dict[str, LibraryEntry]:
    return {e.title: e for e in entries}


def test_zotero_better_biblatex_export() -> None:
    entries, notes = read_library_file(DATA / "zotero-bbt-arxiv.biblatex.bib")
    assert notes == ()
    found = _by_title(entries)
    title = (
        "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet"
        " Classification"
    )
    assert len(entries) == 5
    preprint = next(e for e in entries if e.arxiv_id)
    assert preprint.title == title and preprint.arxiv_id == "1502.01852"
    assert preprint.keys[0] == "arxiv:1502.01852"
    assert preprint.authors[:2] == ("Kaiming He", "Xiangyu Zhang")
    assert "4.94% top-5" in preprint.abstract
    # The same paper without its eprint is still known by its title.
    proceedings = [e for e in entries if e.title == title and not e.arxiv_id]
    assert proceedings and proceedings[0].keys == (preprint.keys[-1],)
    # An export damaged by a wrong encoding (U+FFFD in names) still loads.
    assert "Hopfield Networks Is All You Need" in found


def test_bibtex_written_to_the_rules_strings_comments_accents_crlf() -> None:
    entries, notes = read_library_file(DATA / "hand.bib")
    found = _by_title(entries)
    assert set(found) == {
        "Understanding the Role of Training Regimes in Continual Learning",
        "Sur quelques points du calcul fonctionnel",
        "A Naïve Bayes Baseline for Müller's α-Divergence",
    }, "an entry without a title, DOI or id is left out"
    mirzadeh = found["Understanding the Role of Training Regimes in Continual Learning"]
    assert mirzadeh.arxiv_id == "2006.06958" and mirzadeh.abstract.startswith("Catastrophic")
    assert mirzadeh.authors[0] == "Seyed Iman Mirzadeh"
    frechet = found["Sur quelques points du calcul fonctionnel"]
    assert frechet.doi == "10.1007/BF03018603" and frechet.authors == ("Maurice Fréchet",)
    assert frechet.abstract == "" and frechet.keys[0] == "doi:10.1007/bf03018603"
    naive = found["A Naïve Bayes Baseline for Müller's α-Divergence"]
    assert naive.arxiv_id == "2405.12345", "the id from the URL, version dropped"
    assert naive.authors == ("Jörg Müller", "Søren Sørensen")
    assert notes == ()


def test_ris_with_ti_t1_authors_doi_and_arxiv_in_a_note() -> None:
    entries, _ = read_library_file(DATA / "library.ris")
    found = _by_title(entries)
    ogd = found["Orthogonal Gradient Descent for Continual Learning"]
    assert ogd.arxiv_id == "1910.07104" and ogd.authors == ("Mehrdad Farajtabar", "Navid Azizan")
    assert ogd.abstract.startswith("Neural networks")
    ewc = found["Overcoming catastrophic forgetting in neural networks"]
    assert ewc.doi == "10.1073/PNAS.1611835114" and ewc.keys[0] == "doi:10.1073/pnas.1611835114"
    assert ewc.authors == ("James Kirkpatrick",)
    assert "Quantized Key-Value Caches for Long-Context Inference" in found


def test_zotero_csl_json_arxiv_doi_note_number_literal_authors() -> None:
    entries, notes = read_library_file(DATA / "zotero-preprints.csl.json")
    found = _by_title(entries)
    assert len(entries) == 3 and notes == (), "the item without title or id is left out"
    rehearsal = found[
        "Mitigating Catastrophic Forgetting in Large Language Models with Self-Synthesized"
        " Rehearsal"
    ]
    assert rehearsal.arxiv_id == "2403.01244" and rehearsal.doi == ""
    assert rehearsal.keys[0] == "arxiv:2403.01244"
    assert rehearsal.authors[0] == "Jianheng Huang"
    ewc = found["Overcoming catastrophic forgetting in neural networks"]
    assert ewc.doi == "10.1073/pnas.1611835114" and ewc.arxiv_id == ""
    assert ewc.authors[-1] == "DeepMind"
    kernel = found["Schölkopf's kernel trick, revisited"]
    assert kernel.arxiv_id == "2101.00027", "arXiv id from a multi-line note"


def test_better_csl_json_export_with_html_in_titles() -> None:
    entries, _ = read_library_file(DATA / "zotero-bbt-report.csl.json")
    found = _by_title(entries)
    assert "Frithuswith (d. 727)" in found
    assert found["Frithuswith (d. 727)"].doi == "10.1093/ref:odnb/10183"
    assert "emptybook" not in {e.title for e in entries} and len(entries) == 6


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("broken.json", b'[{"title": "x",', "not valid JSON"),
        ("object.json", b'{"title": "x"}', "expected a list of items"),
        ("notris.ris", b"this is not RIS\n", "no RIS records"),
        ("bad.bib", b"@article{x, title = {unclosed\n", "no BibTeX entries found"),
        ("folder.bib", None, "is a directory"),
        ("missing.bib", "missing", "file not found"),
    ],
    ids=["bad-json", "json-object", "not-ris", "unbalanced-bibtex", "directory", "missing"],
)
def test_a_bad_file_is_one_line_and_the_others_still_load(
    tmp_path: Path, name: str, content: bytes | str | None, problem: str
) -> None:
    bad = tmp_path / name
    if content is None:
        bad.mkdir()
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    library = load_library([bad, DATA / "library.ris"])
    assert len(library.entries) == 3
    [warning] = library.warnings
    assert warning.startswith(f"library {bad}: ") and problem in warning
    assert "\n" not in warning and "Traceback" not in warning


def test_a_huge_file_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library_module, "MAX_FILE_BYTES", 1000)
    huge = tmp_path / "huge.bib"
    huge.write_bytes(b"@misc{a, title={A}}\n" * 100)
    library = load_library([huge])
    assert library.entries == ()
    assert library.warnings == (f"library {huge}: larger than 1,000 bytes, not read",)


def test_too_many_entries_are_cut_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library_module, "MAX_ENTRIES", 2)
    many = tmp_path / "many.json"
    many.write_text('[{"title": "A"}, {"title": "B"}, {"title": "C"}]')
    library = load_library([many])
    assert [e.title for e in library.entries] == ["A", "B"]
    assert library.warnings == (f"library {many}: 3 entries, only the first 2 are used",)


def test_profile_library_paths_and_suggestions(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        """
[[profiles]]
name = "lib"
library = "papers/mine.bib"

[[profiles]]
name = "both"
keywords = ["x"]
library = ["~/zotero.json", "/abs/lib.ris"]
suggestions = 0

[[profiles]]
name = "none"
keywords = ["x"]
""",
        encoding="utf-8",
    )
    lib, both, none = load_settings(config).profile_records()
    assert lib.library == (config.parent / "papers" / "mine.bib",) and lib.suggestions == 5
    assert both.library == (Path.home() / "zotero.json", Path("/abs/lib.ris"))
    assert both.suggestions == 0
    assert none.library == () and none.suggestions == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [("51", "less than or equal to 50"), ("-1", "greater than or equal to 0")],
    ids=["too-many", "negative"],
)
def test_suggestions_are_bounded(tmp_path: Path, value: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[profiles]]\nname = "me"\nlibrary = "a.bib"\nsuggestions = {value}\n')
    with pytest.raises(ConfigError, match=rf"profiles\[0\] \(.me.\)\.suggestions: .*{message}"):
        load_settings(config)


# --- only regular files are read (a FIFO hung `digest match` forever) -----------------------------

ROOT = Path(__file__).resolve().parent.parent


def _digest(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` in a child that is killed and reaped if it has not ended in 60 s."""
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_a_fifo_library_is_refused_and_match_ends(tmp_path: Path) -> None:
    fifo = tmp_path / "papers.bib"
    os.mkfifo(fifo)
    shutil.copy(DATA / "library.ris", tmp_path / "library.ris")
    listing = tmp_path / "in.jsonl"
    listing.write_text(json.dumps({"id": "2401.00001", "title": "Continual learning"}) + "\n")
    (tmp_path / "config.toml").write_text(
        '[store]\npath = "d.sqlite"\n[[profiles]]\nname = "lib"\n'
        'library = ["papers.bib", "library.ris"]\nsuggestions = 2\n'
    )
    result = _digest(["match", "--input", str(listing), "--format", "jsonl"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"library {fifo.name}: is a named pipe (FIFO), not a regular file" in result.stderr


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(lambda p: Path("/dev/zero"), "is a character device", id="dev-zero"),
        pytest.param(lambda p: Path("/dev/null"), "is a character device", id="dev-null"),
        pytest.param(lambda p: _socket(p), "is a socket", id="socket"),
    ],
)
def test_a_device_or_socket_is_not_read(
    tmp_path: Path, make: Callable[[Path], Path], problem: str
) -> None:
    path = make(tmp_path)
    library = load_library([path])
    assert library.entries == ()
    assert library.warnings == (f"library {path}: {problem}, not a regular file",)


def _socket(folder: Path) -> Path:
    path = folder / "s.bib"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the file stays: a socket that nobody answers on
    return path


def test_a_file_grown_past_the_bound_is_not_read_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library_module, "MAX_FILE_BYTES", 100)
    path = tmp_path / "grows.bib"
    path.write_bytes(b"@misc{a, title={A}}\n" * 50)
    [warning] = load_library([path]).warnings
    assert warning == f"library {path}: larger than 100 bytes, not read"


def test_library_fields_are_cut_to_the_paper_limits_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    item = {"title": "T " * 3_000, "abstract": "word " * 30_000, "author": [{"literal": "A"}]}
    path.write_text(json.dumps([item, {"title": "Short"}]))
    entries, notes = read_library_file(path)
    assert len(entries[0].title) == limits.TITLE_CHARS
    assert len(entries[0].abstract) == limits.ABSTRACT_CHARS
    assert entries[1].title == "Short"
    assert notes == (
        f"library {path}: 1 entry cut to the field limits (title 1,000, abstract 20,000, "
        "author name 200 characters, 5,000 authors)",
    )


# --- @string macros: bounded expansion (a 550-byte "macro bomb" took 860 MB) ----------------------


def _bomb(levels: int, fanout: int) -> str:
    lines = ['@string{m0 = "' + "A" * 40 + '"}']
    for level in range(1, levels + 1):
        lines.append(f"@string{{m{level} = " + " # ".join([f"m{level - 1}"] * fanout) + "}")
    lines.append(f"@misc{{bomb, title = m{levels}}}")
    return "\n".join(lines) + "\n"


_PEAK_CHILD = """
import json, resource, sys
from pathlib import Path
from digest.library import load_library
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
library = load_library([Path(sys.argv[1])])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "warnings": list(library.warnings)}))
"""


def test_a_macro_bomb_is_refused_with_its_reason_and_costs_little(tmp_path: Path) -> None:
    path = tmp_path / "bomb.bib"
    path.write_text(_bomb(levels=7, fanout=9))  # 479 bytes; 191 million characters expanded
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    report = json.loads(done.stdout)
    print(f"peak RSS growth reading the bomb: {report['growth_kb'] / 1024:.0f} MB")
    assert report["warnings"] == [
        f"library {path}: its @string macros expand to 191,318,760 characters, more than "
        "41,943,040 (a macro bomb?); not read"
    ]
    assert report["growth_kb"] < 30 * 1024  # expanded by the parser, it was +190 MB


def test_macros_expand_in_the_fields_read(tmp_path: Path) -> None:
    path = tmp_path / "macros.bib"
    path.write_text(
        '@string{conf = "Proc. of " # who}\n@string{who = "ICML"}\n'
        '@inproceedings{a, title = "Deep " # {Nets}, journal = conf, author = "Ann " # "Lee",'
        " month = jan, note = undefined}\n"
    )
    [entry], notes = read_library_file(path)
    assert entry.title == "Deep Nets" and entry.authors == ("Ann Lee",)
    assert notes == ()


def test_a_macro_defined_through_itself_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "loop.bib"
    path.write_text("@string{a = b}\n@string{b = a}\n@misc{x, title = a}\n")
    [warning] = load_library([path]).warnings
    assert warning == f"library {path}: the @string macro 'a' is defined through itself"


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"], ids=str
)
def test_a_library_saved_as_utf16_or_utf32_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "windows.bib"
    path.write_bytes("@article{a, title = {Über Lernen}, author = {Jörg Lee}}\n".encode(encoding))
    [entry], notes = read_library_file(path)
    assert entry.title == "Über Lernen" and entry.authors == ("Jörg Lee",) and notes == ()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(
            "\ufeff@misc{a, title={A}}".encode("utf-16-le")[:-1] + b"\x00\xd8",
            "starts as UTF-16 but is not valid UTF-16",
            id="broken-utf16",
        ),
        pytest.param(b"@misc{a,\x00\x01\x00\x00\xff title={A}}", "holds NUL bytes", id="binary"),
    ],
)
def test_an_undecodable_library_says_its_encoding(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "odd.bib"
    path.write_bytes(content)
    [warning] = load_library([path]).warnings
    assert warning.startswith(f"library {path}: {problem}")
    assert warning.endswith("UTF-8")
