"""A local SMTP sink for the end-to-end figure: aiosmtpd on 127.0.0.1, no TLS, no login.

Run as its own process (`python -m bench.sink`) so its work does not share the benchmarked
process's interpreter: it prints its port, accepts mail until its stdin is closed, then prints
how many messages it accepted.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from aiosmtpd.controller import Controller


class CountingHandler:
    """Accepts every message and counts them."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept the message."""
        self.count += 1
        return "250 Message accepted"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    """Serve until stdin closes; print the port first and the message count last."""
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    print(controller.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()
    print(handler.count, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
