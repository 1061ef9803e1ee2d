"""`digest serve` over real HTTP: a real uvicorn on 127.0.0.1 (ephemeral port, stopped and its
thread joined), the email's signed feedback links round-tripping through it, and a real SQLite
store and config file behind it."""

from __future__ import annotations

import html
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from digest.app import build_app, fetch, plan_digests
from digest.feedback import Ask, secret_path, sign, signing_secret
from digest.serve import ServeOptions, running
from digest.settings import load_settings
from digest.store import Store

from .conftest import DATA

PUBLIC = "https://lab.example.org/digest"
CONFIG = f"""# my digest config
[store]
path = "d.sqlite"

[server]
public_url = "{PUBLIC}"  # where the lab's proxy serves it

[[sources.files]]
path = "{DATA / "listings.jsonl"}"

[[profiles]]
name = "me"
# what I read
keywords = ["KV cache"]  # my topic
first_run_days = 1  # a day back

[[profiles]]
name = "you"
keywords = ["forgetting"]
first_run_days = 1
"""


@dataclass(frozen=True)
class Site:
    """A config with a fetched database and a running server."""

    config: Path
    db: Path
    port: int

    def client(self, host: str | None = None) -> httpx.Client:
        headers = {"Host": host} if host else {}
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=30)

    def verdicts(self, profile: str = "me") -> list[tuple[str, str]]:
        store = Store.open(self.db, read_only=True)
        try:
            return [(f.paper_key, f.action) for f in store.feedback(profile)]
        finally:
            store.close()

    def secret(self) -> str:
        return signing_secret(load_settings(self.config), self.db)


def _fetched(directory: Path, text: str = CONFIG) -> Path:
    config = directory / "config.toml"
    config.write_text(text)
    app = build_app(load_settings(config))
    try:
        assert not any(r.error for r in fetch(app))
    finally:
        app.close()
    return config


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = _fetched(tmp_path)
    with running(ServeOptions(config, None)) as (_, port):
        yield Site(config, tmp_path / "d.sqlite", port)


def email_links(config: Path, profile: str = "me") -> dict[str, list[str]]:
    """The long feedback links (one per action, to a confirm page) of the profile's next
    email, by label, as emails sent before the short links carried them: they keep working.
    Empty without a `public_url`."""
    from digest.feedback import email_linker

    settings = load_settings(config)
    if not settings.server.public_url:
        return {}
    app = build_app(settings, store=Store.open(config.parent / "d.sqlite"))
    try:
        plan = plan_digests(app, app.settings.profile_records(profile))[profile]
        secret = signing_secret(settings, config.parent / "d.sqlite")
        # The served app keeps the system clock: the links are made on the app's, no numbers.
        linker = email_linker(settings.server.public_url, secret, profile, app.clock)
        found: dict[str, list[str]] = {}
        for match in plan.digest.papers:
            for label, url in linker(match):
                found.setdefault(label[:1].upper() + label[1:], []).append(url)
    finally:
        app.close()
    return found


def short_links(config: Path, profile: str = "me") -> list[str]:
    """The one feedback link a paper of the profile's next email (its text part), in order."""
    app = build_app(load_settings(config), store=Store.open(config.parent / "d.sqlite"))
    try:
        text = plan_digests(app, app.settings.profile_records(profile))[profile].rendered.text
    finally:
        app.close()
    return re.findall(r"^   Feedback: (https://\S+/f/\S+)$", text, re.M)


def _path(url: str) -> str:
    """An email link's path and query, as the proxy forwards it (public prefix removed)."""
    return url.removeprefix(PUBLIC)


def _token(url: str) -> str:
    return url.partition("?t=")[2]


def test_the_email_link_get_shows_one_button_and_records_nothing(site: Site) -> None:
    [link, *_] = email_links(site.config)["More like this"]
    with site.client("lab.example.org") as client:
        page = client.get(_path(link))
    assert page.status_code == 200, page.text
    assert page.text.count("<form method='post'") == 1 and "Yes, more like this" in page.text
    assert "Speculative Decoding" in page.text
    assert site.verdicts() == []


def test_a_post_records_once_and_a_replay_records_nothing_new(site: Site) -> None:
    [link, *_] = email_links(site.config)["Less like this"]
    form = {"t": _token(link)}
    with site.client() as client:
        first = client.post("/me/feedback", data=form)
        again = client.post("/me/feedback", data=form)
    assert first.status_code == 200 and "Recorded: less like this" in first.text
    assert again.status_code == 200 and "Already recorded" in again.text
    assert site.verdicts() == [("arxiv:2401.01234", "dislike")]


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    ("forge", "status", "said"),
    [
        (lambda secret, _t: _tampered(_t), 403, "not valid"),
        (lambda secret, _t: _t[:-3], 403, "not valid"),
        (lambda secret, _t: "garbage", 403, "not valid"),
        (lambda secret, _t: "", 403, "not valid"),
        (
            lambda secret, _t: sign(
                "another-secret-of-32-characters!",
                "feedback",
                Ask("me", "arxiv:2401.01234", "like"),
            ),
            403,
            "not valid",
        ),
        (
            lambda secret, _t: sign(secret, "feedback", Ask("you", "arxiv:2401.01234", "like")),
            403,
            "made for another profile",
        ),
        (
            lambda secret, _t: sign(secret, "undo", Ask("me", "arxiv:2401.01234", "like")),
            403,
            "not valid",
        ),
        (
            lambda secret, _t: sign(
                secret,
                "feedback",
                Ask("me", "arxiv:2401.01234", "like"),
                clock=lambda: datetime(2020, 1, 1, tzinfo=UTC),  # expired on any later day
            ),
            410,
            "expired",
        ),
    ],
    ids=[
        "tampered",
        "cut",
        "garbage",
        "empty",
        "other-secret",
        "other-profile",
        "undo-salt",
        "expired",
    ],
)
def test_a_bad_token_is_refused_and_nothing_is_recorded(
    site: Site, forge: Callable[[str, str], str], status: int, said: str
) -> None:
    [link, *_] = email_links(site.config)["More like this"]
    token = forge(site.secret(), _token(link))
    with site.client() as client:
        shown = client.get("/me/feedback", params={"t": token})
        posted = client.post("/me/feedback", data={"t": token})
    for response in (shown, posted):
        assert response.status_code == status, response.text
        assert said in response.text and "Nothing was recorded" in response.text
    assert site.verdicts() == [] and site.verdicts("you") == []


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:{port}", True),
        ("lab.example.org", True),
        ("LAB.example.org", True),
        ("attacker.example", False),
        ("lab.example.org.attacker.example", False),
        ("127.0.0.1:1", False),
    ],
    ids=["local", "public-host", "public-any-case", "foreign", "public-prefixed", "other-port"],
)
def test_only_its_own_and_the_public_host_are_answered(
    site: Site, host: str, allowed: bool
) -> None:
    [link, *_] = email_links(site.config)["More like this"]
    with site.client(host.format(port=site.port)) as client:
        responses = [
            client.get("/"),
            client.get(_path(link)),
            client.post("/me/feedback", data={"t": _token(link)}),
        ]
    for response in responses:
        assert (response.status_code == 200) is allowed, response.text
        if not allowed:
            assert response.status_code == 421
    assert site.verdicts() == ([("arxiv:2401.01234", "like")] if allowed else [])


def test_a_post_from_another_sites_page_is_refused(site: Site) -> None:
    [link, *_] = email_links(site.config)["More like this"]
    with site.client() as client:
        foreign = client.post(
            "/me/feedback", data={"t": _token(link)}, headers={"Origin": "https://evil.example"}
        )
        own = client.post(
            "/me/feedback",
            data={"t": _token(link)},
            headers={"Origin": f"http://127.0.0.1:{site.port}"},
        )
    assert foreign.status_code == 403
    assert own.status_code == 200 and site.verdicts() == [("arxiv:2401.01234", "like")]


def test_an_oversized_form_is_refused(site: Site) -> None:
    with site.client() as client:
        response = client.post("/me/feedback", content=b"t=" + b"A" * 20_000)
    assert response.status_code == 413 and site.verdicts() == []


def test_the_verdicts_page_lists_them_and_undo_forgets_one(site: Site) -> None:
    [link, *_] = email_links(site.config)["More like this"]
    with site.client() as client:
        assert client.post("/me/feedback", data={"t": _token(link)}).status_code == 200
        listed = client.get("/me/verdicts")
        assert listed.status_code == 200 and "liked: Speculative Decoding" in listed.text
        [undo] = re.findall(r"name='t' value='([^']+)'", listed.text)
        assert site.verdicts() == [("arxiv:2401.01234", "like")]  # the GET changed nothing
        done = client.post("/me/undo", data={"t": undo})
        again = client.post("/me/undo", data={"t": undo})
        after = client.get("/me/verdicts")
    assert done.status_code == 200 and "Undone" in done.text
    assert "Nothing to undo" in again.text
    assert site.verdicts() == [] and "Nothing yet" in after.text


def test_the_preview_page_has_buttons_that_post_directly(site: Site) -> None:
    with site.client() as client:
        page = client.get("/me")
        assert page.status_code == 200
        forms = re.findall(
            r'<form method="post" action="/me/feedback"[^>]*><input type="hidden" name="t" '
            r'value="([^"]+)"><button[^>]*>([^<]+)</button>',
            page.text,
        )
        labels = {label for _, label in forms}
        assert {"more like this", "less like this", "mute this term"} <= labels
        token = next(t for t, label in forms if label == "more like this")
        assert client.post("/me/feedback", data={"t": token}).status_code == 200
    assert site.verdicts() == [("arxiv:2401.01234", "like")]


def test_the_preview_buttons_are_there_without_a_public_url(tmp_path: Path) -> None:
    config = _fetched(tmp_path, CONFIG.replace(f'public_url = "{PUBLIC}"', ""))
    with running(ServeOptions(config, None)) as (_, port):
        page = httpx.get(f"http://127.0.0.1:{port}/me", timeout=30)
    assert page.status_code == 200 and page.text.count('action="/me/feedback"') >= 2
    assert email_links(config) == {}


def test_mute_this_term_excludes_it_in_the_profile_file_with_comments_kept(site: Site) -> None:
    [link] = email_links(site.config)["Mute this term"]
    with site.client() as client:
        assert "mute the term" in client.get(_path(link)).text
        assert "KV cache" in site.config.read_text() and "exclude" not in site.config.read_text()
        done = client.post("/me/feedback", data={"t": _token(link)})
        again = client.post("/me/feedback", data={"t": _token(link)})
    assert done.status_code == 200 and "Muted" in done.text
    assert "Already muted" in again.text
    text = site.config.read_text()
    assert re.search(r'exclude = \["KV cache"\]', text)
    for comment in ("# my digest config", "# what I read", "# my topic", "# a day back"):
        assert comment in text
    assert load_settings(site.config).profiles[0].exclude == ["KV cache"]


def test_mute_this_author_unfollows_a_followed_one(tmp_path: Path) -> None:
    followed = '# my topic\nauthors = ["Iman Mirzadeh"]  # a colleague'
    config = _fetched(tmp_path, CONFIG.replace("# my topic", followed))
    with running(ServeOptions(config, None)) as (_, port):
        [link] = email_links(config)["Mute this author"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            done = client.post("/me/feedback", data={"t": _token(link)})
    assert done.status_code == 200 and "No longer following Iman Mirzadeh" in done.text
    text = config.read_text()
    assert "Iman Mirzadeh" not in text and "# a colleague" in text and "# my topic" in text


def test_feedback_on_a_missing_database_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SERVER__SECRET", "x" * 32)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    db = tmp_path / "d.sqlite"
    token = sign("x" * 32, "feedback", Ask("me", "arxiv:2401.01234", "like"))
    with (
        running(ServeOptions(config, None)) as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        index = client.get("/")
        posted = client.post("/me/feedback", data={"t": token})
    assert index.status_code == 503 and posted.status_code == 503
    assert "digest fetch" in posted.text
    assert not db.exists() and not list(tmp_path.glob("d.sqlite*"))


def test_a_config_error_is_a_page_and_the_server_keeps_running(site: Site) -> None:
    good = site.config.read_text()
    with site.client() as client:
        site.config.write_text(good.replace('name = "you"', 'name = "you"\nbogus = 1'))
        broken = client.get("/me")
        site.config.write_text(good)
        fixed = client.get("/me")
    assert broken.status_code == 500 and "Config error" in broken.text and "bogus" in broken.text
    assert fixed.status_code == 200


def test_the_generated_secret_is_kept_private_beside_the_database(site: Site) -> None:
    secret = site.secret()
    path = secret_path(site.db)
    assert path.read_text().strip() == secret and len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert site.secret() == secret  # generated once
    with site.client() as client:
        for page in ("/", "/me", "/me/verdicts"):
            assert secret not in client.get(page).text


# --- the one short link a paper (digest.short_links) --------------------------------------------


def _forms(page: str) -> dict[str, tuple[str, str]]:
    """The page's one-button forms: label -> (action path, token)."""
    found = re.findall(
        r"<form method='post' action='([^']+)'[^>]*><input type='hidden' name='t' "
        r"value='([^']+)'><button[^>]*>([^<]+)</button></form>",
        page,
    )
    return {html.unescape(label): (action, token) for action, token, label in found}


def test_the_short_link_page_lists_the_papers_actions_and_records_nothing(site: Site) -> None:
    [link, *_] = short_links(site.config)
    assert len(link.rpartition("/f/")[2]) <= 60
    with site.client("lab.example.org") as client:
        page = client.get(_path(link))
    assert page.status_code == 200, page.text
    assert "Speculative Decoding" in page.text and "Liked and disliked" in page.text
    forms = _forms(page.text)
    assert {"More like this", "Less like this", "Mute the term “KV cache”"} <= set(forms)
    assert any(label.startswith("Mute the author ") for label in forms)
    assert {action for action, _ in forms.values()} == {"/me/feedback"}
    assert site.verdicts() == []


def test_a_button_of_the_short_link_page_records_once(site: Site) -> None:
    [link, *_] = short_links(site.config)
    with site.client() as client:
        forms = _forms(client.get(_path(link)).text)
        action, token = forms["Less like this"]
        origin = {"Origin": f"http://127.0.0.1:{site.port}"}
        first = client.post(action, data={"t": token}, headers=origin)
        again = client.post(action, data={"t": token}, headers=origin)
        foreign = client.post(
            action,
            data={"t": forms["More like this"][1]},
            headers={"Origin": "https://evil.example"},
        )
    assert first.status_code == 200 and "Recorded: less like this" in first.text
    assert "Already recorded" in again.text and foreign.status_code == 403
    assert site.verdicts() == [("arxiv:2401.01234", "dislike")]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/me/f/{cut}", 403),
        ("/me/f/{tampered}", 403),
        ("/me/f/garbage", 403),
        ("/me/f/" + "A" * 500, 403),
        ("/me/f/%00%ff", 403),
        ("/you/f/{token}", 403),  # another profile's path: the profile is under the MAC
        ("/nobody/f/{token}", 404),
        ("/me/f/", 404),
    ],
    ids=["cut", "tampered", "garbage", "long", "bytes", "other-profile", "no-profile", "none"],
)
def test_a_bad_short_link_is_a_4xx_and_records_nothing(site: Site, path: str, status: int) -> None:
    [link, *_] = short_links(site.config)
    token = link.rpartition("/f/")[2]
    shown = path.format(cut=token[:-2], tampered=_tampered(token), token=token)
    with site.client() as client:
        response = client.get(shown)
    assert response.status_code == status, response.text
    assert site.verdicts() == [] and site.verdicts("you") == []


def test_a_short_link_expires_after_link_days_on_the_servers_clock(tmp_path: Path) -> None:
    from datetime import timedelta

    from digest.short_links import make_token

    from .conftest import FIXED_NOW, Clock

    config = _fetched(tmp_path)
    db = tmp_path / "d.sqlite"
    store = Store.open(db)
    try:
        number = store.paper_number("arxiv:2401.01234")
    finally:
        store.close()
    assert number is not None
    secret = signing_secret(load_settings(config), db)
    token = make_token(secret, "me", "arxiv:2401.01234", number, FIXED_NOW)
    clock = Clock(FIXED_NOW + timedelta(days=29))
    with (
        running(ServeOptions(config, None, clock=clock)) as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        fresh = client.get(f"/me/f/{token}")
        clock.now = FIXED_NOW + timedelta(days=31)
        stale = client.get(f"/me/f/{token}")
    assert fresh.status_code == 200 and "Speculative Decoding" in fresh.text
    assert stale.status_code == 410 and "expired" in stale.text


def test_a_short_link_from_before_the_secret_was_replaced_says_so(site: Site) -> None:
    [link, *_] = short_links(site.config)
    with site.client() as client:
        assert client.get(_path(link)).status_code == 200
        secret_path(site.db).unlink()  # lost: a new secret is generated on the next request
        refused = client.get(_path(link))
        fresh = short_links(site.config)[0]
        again = client.get(_path(fresh))
    assert refused.status_code == 403 and "signing secret changed" in refused.text
    assert again.status_code == 200 and site.verdicts() == []
