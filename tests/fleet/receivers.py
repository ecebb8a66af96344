"""What the fleet's notifications reach in tests: a real SMTP server (aiosmtpd, on a free port) and a
real HTTP server for webhooks (stdlib ``http.server`` in a thread) that can be told to fail."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.fleet.pg import free_port


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.cond:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.cond.notify_all()
        return "250 OK"


@dataclass
class Smtp:
    host: str
    port: int
    box: _Mailbox

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self.box.cond:
            while len(self.box.messages) < count and time.monotonic() < deadline:
                self.box.cond.wait(0.2)
            return list(self.box.messages)


@contextmanager
def smtp_server() -> Iterator[Smtp]:
    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp("127.0.0.1", port, box)
    finally:
        controller.stop()


@dataclass
class Webhook:
    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    #: answer these statuses first (one per request), then 204
    fail_with: list[int] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[dict[str, str], dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self.cond.wait(0.2)
            return list(self.received)


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.cond:
                status = hook.fail_with.pop(0) if hook.fail_with else 204
                if status < 300:
                    hook.received.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                    hook.received[-1][0]["x-raw-body"] = body.decode()
                hook.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alarm"
    thread = threading.Thread(target=server.serve_forever, name="webhook-server", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
