"""Failed logins, throttled per client and logged: a password guessed at 40 tries a second is no password.

An ASGI middleware around the app's `/login` route (Gradio checks the password; its check never sees who
is asking). Each failed attempt is logged with the client's address; after `attempts` failures within
`window_seconds` that address gets HTTP 429 with the time to wait, whatever it sends, until the window has
passed. A success clears the address's record. Behind a reverse proxy every client shares the proxy's
address: run the server with the proxy's forwarded-address headers trusted, or throttle at the proxy.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FailedLogins:
    """Failure times per client address, and how long an address must still wait."""

    def __init__(self, attempts: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and self.clock() - failures[0] >= self.window:
            failures.popleft()
        return failures

    def wait_seconds(self, client: str) -> float:
        """0 when the client may try; else the seconds until its oldest counted failure leaves the window."""
        with self._lock:
            failures = self._recent(client)
            if len(failures) < self.attempts:
                return 0.0
            return failures[0] + self.window - self.clock()

    def failed(self, client: str) -> int:
        with self._lock:
            failures = self._recent(client)
            failures.append(self.clock())
            return len(failures)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class LoginThrottle:
    """ASGI middleware: counts the answers of POST .../login and refuses an address over its limit."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], attempts: int = 5,
                 window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.failures = FailedLogins(attempts, window_seconds, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                not str(scope.get("path", "")).rstrip("/").endswith("/login"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.failures.wait_seconds(client)
        if wait > 0:
            log.warning("Login refused for %s: too many failed attempts (wait %.0f s)", client, wait)
            await _refuse(send, math.ceil(wait))
            return
        status: dict[str, int] = {}

        async def remember_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        await self.app(scope, receive, remember_status)
        if status.get("code") == 200:
            self.failures.succeeded(client)
        elif status.get("code") in (400, 401, 403):
            count = self.failures.failed(client)
            log.warning("Failed login from %s (%d in the last %.0f s)", client, count, self.failures.window)


async def _refuse(send: Send, wait: int) -> None:
    body = json.dumps({"detail": f"Too many failed logins from this address. Wait {wait} seconds, then try "
                                 "again."}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", str(wait).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
