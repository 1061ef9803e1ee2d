"""The preview server over real HTTP on 127.0.0.1: only its own Host names, many connections at
once, a read-only store, and a port already taken."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.serve import ServeOptions, running

from .conftest import DATA


def _write_config(directory: Path) -> Path:
    """A config over the test listings, its database `d.sqlite` beside it."""
    path = directory / "config.toml"
    path.write_text(
        f'[store]\npath = "d.sqlite"\n[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
        '[[profiles]]\nname = "me"\nkeywords = ["KV cache"]\nfirst_run_days = 1\n'
    )
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The config, with no database yet."""
    return _write_config(tmp_path)


def digest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The config, its database filled by one real `digest fetch` (shared: only read)."""
    config = _write_config(tmp_path_factory.mktemp("fetched"))
    result = digest("--config", str(config), "fetch")
    assert result.returncode == 0, result.stderr
    return config


def _serve(config: Path, db: Path | None = None) -> Iterator[int]:
    """`digest serve`'s app on a real uvicorn on 127.0.0.1: its port (stopped and joined after)."""
    with running(ServeOptions(config, db)) as (_, port):
        yield port


@pytest.fixture(scope="module")
def server(fetched: Path) -> Iterator[int]:
    yield from _serve(fetched)


def _get(port: int, path: str, host: str | None) -> tuple[int, str]:
    """GET `path` with exactly the Host header given (None: none at all, as HTTP/1.0 allows)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        lines = [f"GET {path} HTTP/1.0"] + ([f"Host: {host}"] if host is not None else [])
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read().decode()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LocalHost:{port}", True),
        ("[::1]:{port}", True),
        ("127.0.0.1", True),
        ("localhost", True),
        ("[::1]", True),
        ("attacker.example:{port}", False),
        ("attacker.example", False),
        ("localhost:1{port}", False),
        ("127.0.0.1:1", False),
        ("127.0.0.1.attacker.example:{port}", False),
        ("localhost.:{port}", False),
        ("", False),
        (None, False),
    ],
    ids=[
        "ip-port",
        "localhost-port",
        "localhost-any-case",
        "ipv6-port",
        "ip",
        "localhost",
        "ipv6",
        "other-name-port",
        "other-name",
        "other-port",
        "port-1",
        "ip-prefixed-name",
        "trailing-dot",
        "empty",
        "missing",
    ],
)
def test_only_the_servers_own_host_names_are_answered(
    server: int, host: str | None, allowed: bool
) -> None:
    port = server
    for path in ("/", "/me"):
        status, body = _get(port, path, host.format(port=port) if host is not None else None)
        if allowed:
            assert status == 200, body
            assert "Speculative Decoding" in body or "me</a>" in body
        else:
            assert status in (400, 421), body
            assert "me</a>" not in body and "Speculative" not in body


def test_two_hundred_concurrent_connections_are_all_answered(server: int) -> None:
    port = server
    start = threading.Barrier(200)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            start.wait(timeout=30)
            status, _ = _get(port, "/", f"127.0.0.1:{port}")
            outcome = str(status)
        except OSError as exc:  # reset, refused or timed out
            outcome = type(exc).__name__
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(set(outcomes)) == ["200"] and len(outcomes) == 200, (
        f"{sum(o != '200' for o in outcomes)} of 200 failed: {sorted(set(outcomes))}"
    )


def test_a_missing_database_is_not_created_and_the_page_says_so(
    config: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "missing.sqlite"
    for server in _serve(config, missing):
        port = server
        for path in ("/", "/me"):
            status, body = _get(port, path, f"localhost:{port}")
            assert status == 503
            assert "no database" in body and "digest fetch" in body
    assert not missing.exists() and not missing.parent.exists()
    assert not (tmp_path / "d.sqlite").exists()


def test_preview_to_files_does_not_create_a_database(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    result = digest(
        "--config", str(config), "--db", str(missing), "preview", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert str(missing) in result.stderr and "digest fetch" in result.stderr
    assert not missing.exists()


def test_the_preview_reads_an_existing_database_without_writing_it(
    fetched: Path, server: int
) -> None:
    db = fetched.parent / "d.sqlite"
    before = db.stat().st_mtime_ns, db.read_bytes()
    port = server
    assert _get(port, "/me", f"127.0.0.1:{port}")[0] == 200
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before


def test_a_port_in_use_is_one_line_suggesting_another(config: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = digest("--config", str(config), "preview", "--serve", "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {port}" in lines[0] and "--port" in lines[0]


def test_the_preview_reads_tex_as_text_in_both_parts(tmp_path: Path) -> None:
    """The preview is the next email: TeX reads as Unicode there too, highlight included."""
    import json
    from datetime import UTC, datetime

    from digest.app import build_app, fetch
    from digest.preview import render_previews
    from digest.settings import settings_from_dict
    from digest.store import Store

    listing = tmp_path / "tex.jsonl"
    line = {"title": r"$\varepsilon_1$-close KV cache", "abstract": r"In $\Theta(\sqrt{n})$."}
    listing.write_text(json.dumps(line) + "\n")
    settings = settings_from_dict(
        {
            "sources": {"files": [{"name": "tex", "path": str(listing)}]},
            "profiles": [{"name": "me", "keywords": ["KV cache"]}],
        },
        tmp_path / "config.toml",
    )
    now = datetime(2026, 11, 22, 6, tzinfo=UTC)
    app = build_app(settings, store=Store.open(None), clock=lambda: now)
    try:
        fetch(app)
        [(path, count)] = render_previews(app, tmp_path / "preview")
    finally:
        app.close()
    html, text = path.read_text(), path.with_suffix(".txt").read_text()
    assert count == 1
    assert "ε₁-close <mark" in html and ">KV cache</mark>" in html and "Θ(√n)" in html
    assert "1. ε₁-close KV cache" in text and "In Θ(√n)." in text
