"""agent + broker + allocator service reduced to up or down, in front of the real allocator book: for
tests of what the kiosk makes of the allocator's answers (test_property has the lossy variant)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from common.errors import NetworkError
from fleet.allocator import AllocatorBook


class BookChannel:
    """The ``ask`` of a ``CenterTicketSource``: the book answers as the allocator would at ``clock()``."""

    def __init__(self, book: AllocatorBook, kiosk: str, clock: Callable[[], datetime]) -> None:
        self.book, self.kiosk, self.clock = book, kiosk, clock
        self.up = True

    def __call__(self, cmd: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if not self.up:
            raise NetworkError("no answer")
        payload = json.dumps(args["request"]).encode()
        handle = self.book.handle
        return self.book.transaction(lambda: [handle(self.kiosk, payload, self.clock()).to_data()])[0]
