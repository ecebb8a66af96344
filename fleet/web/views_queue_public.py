"""Pages without a person's login (docs/queue.md):

- the hall display, opened with a display token (``/display/{token}``): the latest call per counter,
  the latest calls, people waiting per service, the notice and the clock; each new call highlighted,
  with a chime and the announcement ``/display/{token}/audio/{step}.wav`` queued by the page;
- the citizen's phone page (``/q/{token}``, the ticket's QR): that one ticket's position, people ahead,
  expected wait, the counter once called, and after the service a one-tap rating. The token is an
  HMAC of (center, day, number) (``contract.queue.phone_token``): it shows only its own ticket, of
  the current center day.

A token that is unknown, revoked or of another day is a 404, like any id the caller may not see.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from common.errors import NotFoundError
from fleet.queue.models import QueueError, Step, Ticket
from fleet.web.core import Ctx, endpoint
from fleet.web.queue_web import follow, macros, queue_web, resume_cursor, sse

#: the phone's rating: four faces, as the kiosk's default scale
PHONE_SCALE = 4
PUBLIC_PATHS = (
    "/display/{token}",
    "/display/{token}/live",
    "/display/{token}/audio/{step_id}",
    "/q/{token}",
    "/q/{token}/live",
    "/q/{token}/rate",
    "/q/{token}/leave",
)


# --- the hall display ------------------------------------------------------------------------------


def _display_center(request: Request) -> str:
    center_id = queue_web(request).queue.display_center(request.path_params["token"])
    if center_id is None:
        raise NotFoundError("unknown or revoked display token")
    return center_id


def _board_values(ctx: Ctx, center_id: str) -> dict[str, Any]:
    board = queue_web(ctx.request).queue.board(center_id)
    return {"board": board, "center_name": _center_name(ctx, center_id), "zone": ctx.web.zone}


def _center_name(ctx: Ctx, center_id: str) -> str:
    from fleet.store import Scope

    return ctx.web.store.registry.center(Scope.everything(), center_id).name


def _board_fragments(ctx: Ctx, center_id: str) -> dict[str, str]:
    drawn = macros(
        ctx, _board_values(ctx, center_id), "display_counters", "display_recent", "display_waiting"
    )
    return {
        "display-counters": drawn["display_counters"],
        "display-recent": drawn["display_recent"],
        "display-waiting": drawn["display_waiting"],
    }


@endpoint(None, login=False)
def display(request: Request, ctx: Ctx) -> Response:
    center_id = _display_center(request)
    values = _board_values(ctx, center_id)
    response = ctx.web.render(ctx, "display.html", token=request.path_params["token"], **values)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@endpoint(None, login=False)
async def display_live(request: Request, ctx: Ctx) -> Response:
    center_id = await run_in_threadpool(_display_center, request)
    qw = queue_web(request)
    token = request.path_params["token"]
    start = await run_in_threadpool(qw.queue.latest_step_id, center_id)

    def render(steps: list[Step]) -> list[str]:
        out = []
        for step in steps:
            if step.is_call and step.counter and step.number:
                out.append(
                    sse(
                        step.id,
                        "call",
                        {
                            "id": step.id,
                            "number": step.number,
                            "counter": step.counter,
                            "recall": step.kind == "recalled",
                            "audio": f"/display/{token}/audio/{step.id}.wav",
                        },
                    )
                )
        for target, html in _board_fragments(ctx, center_id).items():
            out.append(sse(steps[-1].id, "update", {"target": target, "html": html}))
        return out

    token_ok = lambda: qw.queue.display_center(token) == center_id  # noqa: E731  (a revoked token ends it)
    return follow(
        request,
        center_id,
        resume_cursor(request, start),
        render,
        poll_s=qw.settings.poll_s,
        still_allowed=token_ok,
    )


@endpoint(None, login=False)
def display_audio(request: Request, ctx: Ctx) -> Response:
    """The WAV of one call (chime and words), made offline on this server and cached."""
    center_id = _display_center(request)
    raw = request.path_params["step_id"]
    if not raw.endswith(".wav") or not raw[:-4].isdigit():
        raise NotFoundError("no such announcement")
    qw = queue_web(request)
    step = qw.queue.step(center_id, int(raw[:-4]))
    if not step.is_call or not step.number or not step.counter:
        raise NotFoundError("no such announcement")
    path = qw.announcer.announcement(step.number, step.counter)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, max-age=86400"})


# --- the citizen's phone ---------------------------------------------------------------------------------


def _phone_ticket(request: Request) -> Ticket:
    qw = queue_web(request)
    ticket = qw.queue.by_token(request.path_params["token"])
    if ticket is None or ticket.day != qw.queue.today():
        raise NotFoundError("unknown ticket token, or a ticket of another day")
    return ticket


def _phone_values(ctx: Ctx, ticket: Ticket) -> dict[str, Any]:
    qw = queue_web(ctx.request)
    position = qw.queue.position(ticket)
    services = {s.code: s.name(ctx.lang) for s in qw.queue.services(ticket.center_id)}
    rated = None
    if ticket.state == "done":
        rated = ctx.request.query_params.get("rated")
    return {
        "ticket": ticket,
        "position": position,
        "service_name": services.get(ticket.service, ticket.service),
        "center_name": _center_name(ctx, ticket.center_id),
        "token": ctx.request.path_params["token"],
        "scale": PHONE_SCALE,
        "rated": rated,
        "already": _already_rated(ctx, ticket),
    }


def _already_rated(ctx: Ctx, ticket: Ticket) -> bool:
    return queue_web(ctx.request).queue.rated(ticket.id, "phone")


@endpoint(None, login=False)
def phone(request: Request, ctx: Ctx) -> Response:
    ticket = _phone_ticket(request)
    response = ctx.web.render(ctx, "phone.html", **_phone_values(ctx, ticket))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@endpoint(None, login=False)
async def phone_live(request: Request, ctx: Ctx) -> Response:
    ticket = await run_in_threadpool(_phone_ticket, request)
    qw = queue_web(request)
    start = await run_in_threadpool(qw.queue.latest_step_id, ticket.center_id)

    def render(steps: list[Step]) -> list[str]:
        fresh = qw.queue.ticket(ticket.center_id, ticket.id)
        html = macros(ctx, _phone_values(ctx, fresh), "phone_card")["phone_card"]
        return [sse(steps[-1].id, "update", {"target": "phone-card", "html": html})]

    return follow(
        request, ticket.center_id, resume_cursor(request, start), render, poll_s=qw.settings.phone_poll_s
    )


@endpoint(None, login=False)
def phone_rate(request: Request, ctx: Ctx) -> Response:
    """One tap: the rating of this ticket's service, tied to the counter and the officer who served it."""
    ticket = _phone_ticket(request)
    try:
        level = int(ctx.field("level"))
    except ValueError:
        level = 0
    token = request.path_params["token"]
    if not 1 <= level <= PHONE_SCALE:
        return RedirectResponse(f"/q/{token}", status_code=303)
    try:
        counted = queue_web(request).queue.rate(ticket, level, PHONE_SCALE, "phone")
    except QueueError:
        return RedirectResponse(f"/q/{token}", status_code=303)
    return RedirectResponse(f"/q/{token}?rated={'1' if counted else 'again'}", status_code=303)


@endpoint(None, login=False)
def phone_leave(request: Request, ctx: Ctx) -> Response:
    """The citizen says they will not wait any longer: the ticket leaves the queue (counted as left)."""
    ticket = _phone_ticket(request)
    with contextlib.suppress(QueueError):
        queue_web(request).queue.mark_left(ticket.center_id, ticket.id)
    return RedirectResponse(f"/q/{request.path_params['token']}", status_code=303)
