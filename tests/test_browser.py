"""The demo digest in a real browser: headless Chromium at desktop width, at phone width (375 px)
and in dark mode. Screenshots go to `out/screenshots/`; their pixels are read back with the
standard library (zlib), so the test needs no imaging package.

Chromium is Debian's `chromium` package. Without it the tests are skipped, unless
DIGEST_REQUIRE_BROWSER=1 (set by `.ci/run`, which installs it): then they fail. Nothing is
fetched from the network: the digest loads no remote resource, and host name resolution is
switched off for the browser.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import FIXED_NOW

SCREENSHOTS = Path(__file__).resolve().parent.parent / "out" / "screenshots"
TIMEOUT = 60
QUIET = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no DNS: nothing can reach the network
]
WHITE, PAGE = (0xFF, 0xFF, 0xFF), (0xEE, 0xF0, 0xF3)
DARK = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]  # 0 is kDark


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; skip (or fail, under DIGEST_REQUIRE_BROWSER=1) when it is missing."""
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if found:
        return found
    if os.environ.get("DIGEST_REQUIRE_BROWSER") == "1":
        pytest.fail("DIGEST_REQUIRE_BROWSER=1 but no `chromium` on PATH: apt-get install chromium")
    pytest.skip("no `chromium` on PATH (apt-get install chromium); .ci/run installs it")


@dataclass(frozen=True)
class Demo:
    """The rendered demo digest on disk, and the first paper's title as the text part has it."""

    path: Path
    first_title: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    from digest.app import run_demo

    result = run_demo(tmp_path_factory.mktemp("demo") / "out", clock=lambda: FIXED_NOW)
    [path] = result.html_paths
    [report] = result.sent
    assert report.rendered is not None and report.papers == len(report.rendered.paper_keys) > 50
    first = re.search(r"^1\. (.+)$", report.rendered.text, re.M)
    assert first, "the text part numbers its papers"
    return Demo(path, first[1])


Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def run_chromium(chromium: str, tmp_path: Path) -> Run:
    """Run Chromium on a file with a fresh profile directory each time, within TIMEOUT seconds."""

    def run(page: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
        command = [chromium, *QUIET, f"--user-data-dir={profile}", *flags, page.as_uri()]
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done

    return run


# --- reading a screenshot -------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """Decoded 8-bit RGB(A) pixels: `rows[y][x * channels : …]`."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        start = x * self.channels
        red, green, blue = self.rows[y][start : start + 3]
        return red, green, blue

    def luminance(self, x: int, y: int) -> float:
        red, green, blue = self.pixel(x, y)
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    def colours(self, step: int = 7) -> set[tuple[int, int, int]]:
        """The distinct colours on a sampling grid."""
        return {
            self.pixel(x, y)
            for y in range(0, self.height, step)
            for x in range(0, self.width, step)
        }

    def share(self, x: int, colour: tuple[int, int, int]) -> float:
        """The share of pixels of one column of pixels (x) that have `colour`."""
        return sum(self.pixel(x, y) == colour for y in range(self.height)) / self.height

    def mean_luminance(self, step: int = 11) -> float:
        samples = [
            self.luminance(x, y)
            for y in range(0, self.height, step)
            for x in range(0, self.width, step)
        ]
        return sum(samples) / len(samples)


def read_png(path: Path) -> Image:
    """Decode a non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes) with zlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, chunks, header = 8, [], b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, colour_type, interlace) in ((8, 2, 0), (8, 6, 0)), "unexpected PNG format"
    channels = 3 if colour_type == 2 else 4
    rows = _unfilter(zlib.decompress(b"".join(chunks)), width * channels, height, channels)
    return Image(width, height, channels, rows)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    low = int.from_bytes(b"\x7f" * stride, "big")
    high = int.from_bytes(b"\x80" * stride, "big")
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        if kind == 0:
            row = bytes(line)
        elif kind == 2:  # Up: byte-wise addition without carries, on one big integer
            a, b = int.from_bytes(line, "big"), int.from_bytes(previous, "big")
            row = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big")
        else:
            row = bytes(_unfilter_row(kind, bytearray(line), previous, bpp))
        rows.append(row)
        previous = row
    return rows


def _unfilter_row(kind: int, out: bytearray, above: bytes, bpp: int) -> bytearray:
    for x in range(len(out)):
        left = out[x - bpp] if x >= bpp else 0
        if kind == 1:
            out[x] = (out[x] + left) & 255
        elif kind == 3:
            out[x] = (out[x] + ((left + above[x]) >> 1)) & 255
        else:  # 4: Paeth
            up, corner = above[x], above[x - bpp] if x >= bpp else 0
            guess = left + up - corner
            by_left, by_up, by_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
            if by_left <= by_up and by_left <= by_corner:
                predicted = left
            else:
                predicted = up if by_up <= by_corner else corner
            out[x] = (out[x] + predicted) & 255
    return out


# --- the tests ------------------------------------------------------------------------------------


def screenshot(run: Run, page: Path, name: str, size: str, *flags: str) -> Image:
    """Take a screenshot into out/screenshots/NAME.png and decode it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    target.unlink(missing_ok=True)
    run(page, f"--window-size={size}", f"--screenshot={target}", *flags)
    assert target.is_file(), f"Chromium wrote no {target}"
    return read_png(target)


def assert_not_blank(image: Image) -> None:
    """Text, highlights and links: many colours, not one flat page."""
    assert len(image.colours()) > 50, "the screenshot is (nearly) blank"


def visible_text(dom: str) -> str:
    """The text of a DOM dump: no tags, no style sheet, entities decoded, spaces collapsed."""
    body = re.sub(r"<(style|head)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split())


def test_the_first_paper_is_on_the_page(run_chromium: Run, demo: Demo) -> None:
    dom = run_chromium(demo.path, "--dump-dom").stdout.decode()
    text = visible_text(dom)
    assert demo.first_title in text
    assert "From people you follow" in text and "On your topics" in text


def test_desktop_width(run_chromium: Run, demo: Demo) -> None:
    image = screenshot(run_chromium, demo.path, "desktop", "1200,2000")
    assert (image.width, image.height) == (1200, 2000)
    assert_not_blank(image)
    # A 600 px white column centred on the light grey page.
    assert image.pixel(600, 30) == WHITE
    for x in (20, 290, 910):
        assert image.share(x, PAGE) > 0.99
    for x in (305, 895):
        assert image.share(x, WHITE) > 0.9


def test_phone_width(run_chromium: Run, demo: Demo) -> None:
    image = screenshot(run_chromium, demo.path, "phone", "375,2000")
    assert (image.width, image.height) == (375, 2000)
    assert_not_blank(image)
    # The column fills the screen: its blue top rule runs edge to edge, no grey gutters.
    assert image.pixel(1, 1) == image.pixel(373, 1) == (0x25, 0x63, 0xEB)
    for x in (2, 372):
        assert image.share(x, WHITE) > 0.9


PROBE = """<!DOCTYPE html><html><head><title>probe</title></head><body style="margin:0">
<iframe id="digest" src="{src}" width="375" height="2000" style="border:0"></iframe>
<script>
document.getElementById("digest").onload = () => {{
  const root = document.getElementById("digest").contentDocument.documentElement;
  document.title = "width=" + root.scrollWidth;
}};
</script></body></html>
"""


def test_phone_width_does_not_scroll_sideways(
    run_chromium: Run, demo: Demo, tmp_path: Path
) -> None:
    """In a 375 px frame (headless windows are at least 500 px wide) nothing sticks out."""
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE.format(src=demo.path.as_uri()), encoding="utf-8")
    dom = run_chromium(probe, "--allow-file-access-from-files", "--dump-dom").stdout.decode()
    found = re.search(r"<title>width=(\d+)</title>", dom)
    assert found, "the probe did not run"
    assert int(found[1]) == 375


def test_dark_mode(run_chromium: Run, demo: Demo) -> None:
    dark = screenshot(run_chromium, demo.path, "desktop-dark", "1200,2000", *DARK)
    assert_not_blank(dark)
    assert dark.luminance(20, 600) < 30, "the page background is dark"
    assert dark.luminance(600, 30) < 40, "the column is dark"
    assert dark.mean_luminance() < 60
    phone = screenshot(run_chromium, demo.path, "phone-dark", "375,2000", *DARK)
    assert_not_blank(phone)
    assert phone.mean_luminance() < 60


MATH_PAPERS = (
    (
        "2501.00001",
        r"$\varepsilon_1$-Close Policies for $\Theta(\sqrt{n})$ Regret in KV Cache Eviction",
    ),
    (
        "2501.00002",
        r"Ranking $\{1, \dots, n\}$ with $\texttt{SPECS}$: Speculative Decoding at Scale",
    ),
    ("2501.00003", r"$\omega$Test: Quantized Models Beyond `memory allocation' Limits"),
)


def test_math_reads_as_text_in_the_browser(run_chromium: Run, tmp_path: Path) -> None:
    """A digest of papers whose titles carry TeX, rendered as the email's HTML part: the page
    shows ε₁, Θ(√n), {1, …, n} and SPECS, never `$\\…`; out/screenshots/math.png is the
    picture in docs/digest-math.png."""
    from digest.match import match_profiles
    from digest.models import Paper, Profile
    from digest.render import build_digest, render_digest

    profile = Profile("me", keywords=("KV cache", "speculative decoding", "quantiz*"))
    papers = [
        Paper(
            key=f"arxiv:{arxiv_id}",
            title=title,
            arxiv_id=arxiv_id,
            authors=("Ada Example", "Ben Example"),
            abstract=r"We bound the error by $O(\log^2 n)$ and keep the KV cache small.",
        )
        for arxiv_id, title in MATH_PAPERS
    ]
    matches = match_profiles(papers, [profile])["me"]
    page = tmp_path / "math.html"
    page.write_text(render_digest(build_digest(profile, matches, FIXED_NOW)).html, "utf-8")
    text = visible_text(run_chromium(page, "--dump-dom").stdout.decode())
    for shown in ("ε₁-Close", "Θ(√n)", "{1, …, n}", "SPECS", "ωTest"):
        assert shown in text
    assert "$" not in text and "\\" not in text
    assert_not_blank(screenshot(run_chromium, page, "math", "700,760"))


# --- the feedback button flow, in a real browser against `digest serve` ---------------------------


class Pipe:
    """Chromium's DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out; each
    message JSON ending in NUL): enough to evaluate script in a page."""

    def __init__(self, chromium: str, profile: str, url: str) -> None:
        import os

        self.to_browser_read, self.to_browser = os.pipe()
        self.from_browser, self.from_browser_write = os.pipe()
        os.set_inheritable(self.to_browser_read, True)
        os.set_inheritable(self.from_browser_write, True)
        flags = [f for f in QUIET if not f.startswith("--host-resolver")]
        self.process = subprocess.Popen(
            [chromium, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: (
                os.dup2(self.to_browser_read, 3),
                os.dup2(self.from_browser_write, 4),
            ),
            close_fds=False,
        )
        os.close(self.to_browser_read)
        os.close(self.from_browser_write)
        self.buffer = b""
        self.next_id = 0

    def call(self, method: str, session: str | None = None, **params: object) -> Any:
        import json
        import os
        import select
        import time

        self.next_id += 1
        message: dict[str, object] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            while b"\0" in self.buffer:
                raw, _, self.buffer = self.buffer.partition(b"\0")
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    assert "error" not in reply, reply
                    return reply.get("result", {})
            ready, _, _ = select.select([self.from_browser], [], [], 1)
            if ready:
                chunk = os.read(self.from_browser, 65536)
                assert chunk, "Chromium closed the pipe"
                self.buffer += chunk
        raise AssertionError(f"no reply to {method} within {TIMEOUT} s")

    def close(self) -> None:
        import os

        self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        os.close(self.to_browser)
        os.close(self.from_browser)


def _page_text(pipe: Pipe, session: str, wanted: str) -> str:
    """The page's text once it contains `wanted` (the browser loads asynchronously)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        result = pipe.call(
            "Runtime.evaluate", session, expression="document.body ? document.body.innerText : ''"
        )
        text = str(result["result"].get("value", ""))
        if wanted in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{wanted!r} never shown; the page says: {text[:500]}")


def test_the_emails_one_feedback_link_opens_the_actions_and_a_click_records(
    chromium: str, tmp_path: Path
) -> None:
    """Open an email's one feedback link in Chromium: the page shows the paper and a button per
    action and the GET records nothing; clicking "More like this" (a real form POST, with the
    browser's Origin) records it."""
    import re as regex

    from digest.app import build_app, fetch, plan_digests
    from digest.serve import ServeOptions, running
    from digest.settings import load_settings
    from digest.store import Store

    from .conftest import DATA

    config = tmp_path / "config.toml"
    config.write_text(
        '[store]\npath = "d.sqlite"\n[server]\npublic_url = "http://127.0.0.1:{port}"\n'
        f'[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
        '[[profiles]]\nname = "me"\nkeywords = ["KV cache"]\nfirst_run_days = 1\n'
    )

    def verdicts() -> list[tuple[str, str]]:
        store = Store.open(tmp_path / "d.sqlite", read_only=True)
        try:
            return [(f.paper_key, f.action) for f in store.feedback("me")]
        finally:
            store.close()

    with running(ServeOptions(config, None)) as (_, port):
        config.write_text(config.read_text().replace("{port}", str(port)))
        app = build_app(load_settings(config))
        try:
            fetch(app)
            text = plan_digests(app, app.settings.profile_records())["me"].rendered.text
        finally:
            app.close()
        [link, *_] = regex.findall(r"Feedback: (\S+)", text)
        assert regex.fullmatch(rf"http://127\.0\.0\.1:{port}/me/f/[\w-]{{20,60}}", link), link
        pipe = Pipe(chromium, tempfile.mkdtemp(prefix="chromium-", dir=tmp_path), link)
        try:
            [target] = [
                t for t in pipe.call("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ]
            session = str(
                pipe.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)[
                    "sessionId"
                ]
            )
            shown = _page_text(pipe, session, "More like this")
            for action in ("Less like this", "Mute the term “KV cache”", "Mute the author"):
                assert action in shown
            assert "Speculative Decoding" in shown and verdicts() == []
            click = (
                "[...document.querySelectorAll('button')]"
                ".find(b => b.textContent === 'More like this').click()"
            )
            pipe.call("Runtime.evaluate", session, expression=click)
            assert "Recorded: more like this" in _page_text(pipe, session, "Recorded")
        finally:
            pipe.close()
    assert verdicts() == [("arxiv:2401.01234", "like")]
