"""Live pages: Server-Sent Events that follow the store's change log (``changes``) by polling its
newest ids every ``live_poll_s``. Any process's write is seen by every web process: there is no
in-process pub/sub. Each message carries the server-rendered markup of what changed (the same Jinja
macro the page drew) and the change id, so a reconnecting browser resumes with Last-Event-ID.

A page streams from the change id it was drawn at (``&from=``), and a view reads that id **before** the
rows it draws: a write committed in between is then both on the page and sent again (harmless, the same
markup), never in neither. Read after the rows, a result the ingest stored while the kiosk page was being
drawn was missed for good: the command stayed "Chờ gửi" on the page (the kiosk answers ~0.1 s after the
publish, so under load that moment is hit: 1 run in 8 of the console's browser test).

A stream follows the log with a ``Gaps`` of its own (fleet.store.changes): on PostgreSQL an id taken first
can be committed last, so its cursor stops before a missing id until it comes (or ``GAP_WAIT_S`` passed),
while what is above it is sent at once, and once. Each message's SSE id is that cursor, so a browser that
reconnects resumes below the missing id (docs/fleet.md, "Change ids in commit order")."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fleet.store.changes import Gaps
from fleet.web.core import Ctx, endpoint

log = logging.getLogger(__name__)
PING_S = 15.0
VIEWS = ("centers", "center", "kiosk", "alarms", "config")


def _message(change_id: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {change_id}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def poll(
    ctx: Ctx, view: str, center_id: str | None, kiosk_id: str | None, cursor: int, gaps: Gaps
) -> tuple[list[str], int]:
    """One look at the change log: the messages to send and where to continue."""
    web, scope = ctx.web, ctx.scope
    changes, upto = web.store.changes.since(scope, cursor, center_id=center_id, kiosk_id=kiosk_id, gaps=gaps)
    if not changes:
        return [], upto
    last = upto  # what a reconnecting browser resumes from (Last-Event-ID): below a missing id
    out: list[str] = []
    if view == "alarms":
        if any(c.topic == "alarm" for c in changes):
            out.append(_message(last, "notice", {"notice": "alarms"}))
        return out, upto
    if view == "config" and center_id:
        from fleet.web.views_config import live_rows

        updates = live_rows(ctx, center_id, kiosk_id, changes)
        return [_message(last, "update", update) for update in updates], upto
    centers_changed = sorted({c.center_id for c in changes})
    kiosks_changed = sorted({c.kiosk_id for c in changes if c.kiosk_id})
    if view == "centers":
        for summary in web.store.registry.center_summaries(scope, centers_changed):
            html = web.fragment(ctx, "fragments.html", "center_row", summary)
            out.append(_message(last, "update", {"target": f"center-row:{summary.center.id}", "html": html}))
        return out, upto
    rows = web.store.registry.kiosk_rows_by_id(scope, kiosks_changed)
    if view == "center":
        for row in rows:
            html = web.fragment(ctx, "fragments.html", "kiosk_row", row)
            out.append(_message(last, "update", {"target": f"kiosk-row:{row.kiosk.id}", "html": html}))
        for summary in web.store.registry.center_summaries(scope, centers_changed):
            html = web.fragment(ctx, "fragments.html", "center_summary", summary)
            out.append(
                _message(last, "update", {"target": f"center-summary:{summary.center.id}", "html": html})
            )
    else:  # one kiosk
        from fleet.web.views_console import live_parts

        for row in rows:
            for part in ("kiosk_state", "kiosk_devices"):
                html = web.fragment(ctx, "fragments.html", part, row)
                out.append(
                    _message(
                        last, "update", {"target": f"{part.replace('_', '-')}:{row.kiosk.id}", "html": html}
                    )
                )
            # the console's results and the alarm list (fleet.web.views_console)
            for target, html in live_parts(ctx, row):
                out.append(_message(last, "update", {"target": target, "html": html}))
        if any(c.topic == "alarm" for c in changes):
            out.append(_message(last, "notice", {"notice": "alarms"}))
    return out, upto


@endpoint("fleet.view")
async def live(request: Request, ctx: Ctx) -> Response:
    web, params = ctx.web, request.query_params
    view = params.get("view", "centers")
    view = view if view in VIEWS else "centers"
    center_id, kiosk_id = params.get("center") or None, params.get("kiosk") or None
    # the scope is checked before anything streams: another center's id is a 404, as on the pages
    if center_id:
        await run_in_threadpool(web.store.registry.center, ctx.scope, center_id)
    if kiosk_id:
        await run_in_threadpool(web.store.registry.kiosk, ctx.scope, kiosk_id)
    resume = request.headers.get("last-event-id") or params.get("from")
    start = web.store.changes.stream_start
    try:
        cursor = int(resume) if resume is not None else await run_in_threadpool(start)
    except ValueError:
        cursor = await run_in_threadpool(start)
    settings = web.settings

    gaps = Gaps()

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        started = last_sent = checked = time.monotonic()
        yield f"retry: 2000\nid: {cursor}\n\n"
        while time.monotonic() - started < settings.live_max_s:
            if await request.is_disconnected():
                return
            if time.monotonic() - checked >= settings.live_session_check_s:
                checked = time.monotonic()
                assert ctx.session is not None
                if await run_in_threadpool(web.store.accounts.session, ctx.session.id) is None:
                    return
            try:
                messages, cursor = await run_in_threadpool(poll, ctx, view, center_id, kiosk_id, cursor, gaps)
            except Exception:  # the browser reconnects (retry) and resumes from its last id
                log.exception(
                    "live stream %s for %s ended by an error", view, ctx.user.username if ctx.user else "-"
                )
                return
            for message in messages:
                yield message
            now = time.monotonic()
            if messages:
                last_sent = now
            elif now - last_sent >= PING_S:
                yield ": ping\n\n"
                last_sent = now
            await anyio.sleep(settings.live_poll_s)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
