"""Crash test: `digest send` killed with SIGKILL at random moments against a slow SMTP server,
then run to completion. No paper is lost, none goes out under two Message-IDs, and the database
stays sound."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from digest.store import Store

from .conftest import SmtpHandler, free_port

KILLS = 30


class SlowHandler(SmtpHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.15)  # a slow server widens every window a kill can land in
        return await super().handle_DATA(server, session, envelope)


def _digest(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    listings = tmp_path / "listings"
    listings.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from_address = "digest@example.org"
timeout = 10
[delivery]
attempts = 1
[[sources.files]]
path = "{listings}/*.jsonl"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["KV cache"]
max_items = 1000
""",
        encoding="utf-8",
    )
    rng = random.Random(20261122)
    titles: list[str] = []
    try:
        for round_ in range(KILLS):
            batch = [f"KV cache study {round_:02d}{suffix}" for suffix in "ab"]
            titles += batch
            (listings / f"{round_:02d}.jsonl").write_text(
                "".join(json.dumps({"title": t, "abstract": "x"}) + "\n" for t in batch)
            )
            assert _digest(config, "fetch").wait(timeout=60) == 0
            sender = _digest(config, "send")
            time.sleep(rng.uniform(0.0, 0.9))
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=60)
        for _ in range(3):  # then to completion
            final = subprocess.run(
                [sys.executable, "-m", "digest", "--config", str(config), "send"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert final.returncode == 0, final.stderr
    finally:
        controller.stop()

    seen: dict[str, set[str]] = defaultdict(set)
    for raw in handler.raw:
        message = message_from_bytes(raw, policy=policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for title in titles:
            if title in text:
                seen[title].add(str(message["Message-ID"]))
    assert sorted(seen) == sorted(titles), "every matched paper was delivered"
    assert {t: ids for t, ids in seen.items() if len(ids) > 1} == {}, "one Message-ID per paper"
    store = Store.open(tmp_path / "d.sqlite")
    assert store.integrity_ok()
    assert store.outbox("me", status="pending") == []
    assert len(store.delivered_keys("me")) == len(titles)
    store.close()
