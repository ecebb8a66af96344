"""What the queue's pages share: the engine, the announcer, the wake-up of live streams, and ``follow``,
the Server-Sent Events loop of the counter app, the hall display and the phone page.

The streams follow the center's ``queue_steps`` (the queue's own change log) by polling its newest id
every ``poll_s``; a write made by this process also wakes them at once (``Wakeup``), so a call made
through this server reaches its displays without waiting for the next poll. A write made by another
process (a second web process, the ingest) is seen at the next poll. Nothing is kept in memory that
another process would need: the wake-up is only a hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from fleet.queue.audio import Announcer, Voice
from fleet.queue.engine import Queue
from fleet.queue.models import Step
from fleet.store import Store

log = logging.getLogger(__name__)
PING_S = 15.0


@dataclass(frozen=True)
class QueueWebSettings:
    audio_cache: Path = Path("var/queue/audio")
    voice: Voice = field(default_factory=lambda: Voice("espeak"))
    #: the center's address as phones in the hall reach it (the QR's URL); "" = as the request came
    public_url: str = ""
    poll_s: float = 0.2  # counter app and hall display
    phone_poll_s: float = 1.0
    stream_max_s: float = 300.0


class Wakeup:
    """Live streams of this process waiting for their center's next step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def fire(self, center_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(center_id, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the stream is gone
                loop.call_soon_threadsafe(event.set)

    def add(self, center_id: str, event: asyncio.Event) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.setdefault(center_id, set()).add(entry)
        return entry

    def remove(self, center_id: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.get(center_id, set()).discard(entry)


class QueueWeb:
    def __init__(self, store: Store, settings: QueueWebSettings, timezone: str) -> None:
        self.settings = settings
        self.queue = Queue(store, timezone)
        self.wakeup = Wakeup()
        self.queue.listeners.append(self.wakeup.fire)
        self.announcer = Announcer(settings.audio_cache, settings.voice)

    def warm(self, number: str, counter: str) -> None:
        """Make a call's announcement now, before the display asks for it."""
        try:
            self.announcer.announcement(number, counter)
        except Exception:  # the display asks again and gets the error then
            log.exception("announcement of %s at %s", number, counter)


def queue_web(request: Request) -> QueueWeb:
    found: QueueWeb = request.app.state.queue
    return found


def macros(ctx: Any, values: dict[str, Any], *names: str) -> dict[str, str]:
    """Macros of ``queue_fragments.html`` drawn with ``values``: name -> markup (page and stream alike)."""
    module = ctx.web.jinja.get_template("queue_fragments.html").make_module(
        {"ctx": ctx, "t": ctx.t, "user": ctx.user, "csrf": ctx.csrf, "lang": ctx.lang, **values}
    )
    return {name: str(getattr(module, name)()) for name in names}


def sse(event_id: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def follow(
    request: Request,
    center_id: str,
    cursor: int,
    render: Callable[[list[Step]], list[str]],
    *,
    poll_s: float,
    still_allowed: Callable[[], bool] | None = None,
) -> StreamingResponse:
    """The stream of one page: ``render`` (run in the thread pool) turns new steps into messages."""
    qw = queue_web(request)
    max_s = qw.settings.stream_max_s

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        event = asyncio.Event()
        entry = qw.wakeup.add(center_id, event)
        started = last_sent = checked = time.monotonic()
        try:
            yield f"retry: 1000\nid: {cursor}\n\n"
            while time.monotonic() - started < max_s:
                if await request.is_disconnected():
                    return
                if still_allowed is not None and time.monotonic() - checked >= 10.0:
                    checked = time.monotonic()
                    if not await run_in_threadpool(still_allowed):
                        return
                try:
                    steps = await run_in_threadpool(qw.queue.steps_since, center_id, cursor)
                    messages = await run_in_threadpool(render, steps) if steps else []
                except Exception:  # the browser reconnects and resumes from its last id
                    log.exception("queue stream of %s ended by an error", center_id)
                    return
                if steps:
                    cursor = steps[-1].id
                for message in messages:
                    yield message
                now = time.monotonic()
                if messages:
                    last_sent = now
                elif now - last_sent >= PING_S:
                    yield ": ping\n\n"
                    last_sent = now
                if not steps:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), poll_s)
                    event.clear()
        finally:
            qw.wakeup.remove(center_id, entry)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def resume_cursor(request: Request, default: int) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("from")
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
