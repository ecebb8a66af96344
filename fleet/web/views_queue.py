"""The counter app (role ``officer``: cán bộ tiếp nhận và trả kết quả) and the queue's page for managers
(statistics, ratings per officer, settings). docs/queue.md.

Every action is a plain form POST that works without JavaScript (303 back to ``/counter``);
``static/counter.js`` sends the same forms with ``Accept: application/json`` and swaps the returned
markup, maps the keys of a USB keypad to the buttons and follows ``/counter/live``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from common.errors import NotFoundError, ValidationError
from fleet.queue import stats as queue_stats
from fleet.queue.models import CounterSession, QueueError, Step, Ticket
from fleet.web.core import Ctx, endpoint
from fleet.web.format import Column, csv_response, json_response
from fleet.web.queue_web import follow, macros, queue_web, resume_cursor, sse

ACTIONS = ("next", "recall", "no-show", "start", "done", "transfer", "break", "resume", "close")


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def counter_context(ctx: Ctx, session: CounterSession | None) -> dict[str, Any]:
    qw = queue_web(ctx.request)
    user = ctx.user
    assert user is not None and user.center_id is not None
    center_id = user.center_id
    settings = qw.queue.settings(center_id)
    services = qw.queue.services(center_id)
    return {
        "session": session,
        "settings": settings,
        "services": services,
        "service_names": {s.code: s.name(ctx.lang) for s in services},
        "counters": qw.queue.counters(center_id),
        "waiting": qw.queue.waiting_for(session) if session is not None else [],
        "now": qw.queue.db.now(),
        "zone": ctx.web.zone,
    }


def _fragments(ctx: Ctx, session: CounterSession | None) -> dict[str, str]:
    drawn = macros(ctx, counter_context(ctx, session), "counter_panel", "waiting_list")
    return {"counter-panel": drawn["counter_panel"], "waiting-list": drawn["waiting_list"]}


def _answer_markup(ctx: Ctx, qw: Any, session: CounterSession | None) -> dict[str, Any]:
    """An action's answer: the fragments, and the newest step they include. Live updates that reach the
    browser while the action is in flight are kept, and applied after it if they are newer."""
    assert ctx.user is not None and ctx.user.center_id is not None
    change_id = qw.queue.latest_step_id(ctx.user.center_id)  # read first: the markup is at least this new
    return {"html": _fragments(ctx, session), "change_id": change_id}


@endpoint("queue.counter")
def counter(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None
    qw = queue_web(request)
    session = qw.queue.session_of(ctx.user)
    message = request.query_params.get("msg")
    known = message if message and ctx.t.has(message) and message.startswith("queue.") else None
    values = counter_context(ctx, session)
    return ctx.web.render(
        ctx,
        "counter.html",
        message=ctx.t(known) if known else None,
        change_id=qw.queue.latest_step_id(ctx.user.center_id or ""),
        **values,
    )


@endpoint("queue.counter")
def counter_open(request: Request, ctx: Ctx) -> Response:
    assert ctx.user is not None and ctx.form is not None
    qw = queue_web(request)
    services = [v for v in ctx.form.getlist("services") if isinstance(v, str)]
    try:
        qw.queue.open_session(ctx.user, ctx.field("counter"), services)
    except QueueError as exc:
        return RedirectResponse(f"/counter?msg={exc.key}", status_code=303)
    return RedirectResponse("/counter", status_code=303)


@endpoint("queue.counter")
def counter_action(request: Request, ctx: Ctx) -> Response:
    """One button of the counter app: next, recall, no-show, start, done, transfer, break, resume, close."""
    assert ctx.user is not None
    qw = queue_web(request)
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise NotFoundError(f"no counter action {action!r}")
    user = ctx.user
    queue = qw.queue
    called: Ticket | None = None
    key, ok = "", True
    try:
        if action == "next":
            called = queue.call_next(user)
            key = "queue.msg.called" if called else "queue.msg.nobody"
        elif action == "recall":
            called = queue.recall(user)
            key = "queue.msg.recalled"
        elif action == "no-show":
            queue.no_show(user)
            key = "queue.msg.no_show"
        elif action == "start":
            queue.start(user)
            key = "queue.msg.started"
        elif action == "done":
            queue.done(user)
            key = "queue.msg.done"
        elif action == "transfer":
            target = ctx.field("to")
            kind, _, code = target.partition(":")
            if kind not in ("service", "counter") or not code:
                raise QueueError("queue.error.transfer_where", "transfer to a service or a counter")
            queue.transfer(user, **({"to_service": code} if kind == "service" else {"to_counter": code}))
            key = "queue.msg.transferred"
        elif action == "break":
            queue.pause(user)
            key = "queue.msg.break"
        elif action == "resume":
            queue.resume(user)
            key = "queue.msg.resumed"
        else:
            queue.close(user)
            key = "queue.msg.closed"
    except QueueError as exc:
        key, ok = exc.key, False
    except ValidationError:
        key, ok = "queue.error.transfer_where", False
    session = queue.session_of(user)
    task = None
    if called is not None and session is not None:
        task = BackgroundTask(qw.warm, called.number, session.counter)
    values = {"number": called.number if called else ""}
    text = ctx.t(key, **values) if "{number}" in ctx.t(key) else ctx.t(key)
    if _wants_json(request):
        return JSONResponse(
            {
                "ok": ok,
                "message": text,
                "key": key,
                "number": called.number if called else None,
                **_answer_markup(ctx, qw, session),
            },
            status_code=200 if ok else 409,
            background=task,
        )
    return RedirectResponse(f"/counter?msg={key}", status_code=303, background=task)


@endpoint("queue.counter")
def counter_left(request: Request, ctx: Ctx) -> Response:
    """A waiting citizen is gone (the officer saw it): the ticket leaves the queue as "left"."""
    assert ctx.user is not None and ctx.user.center_id is not None
    qw = queue_web(request)
    try:
        ticket_id = int(request.path_params["ticket_id"])
    except ValueError as exc:
        raise NotFoundError("no such ticket") from exc
    key, ok = "queue.msg.left", True
    try:
        qw.queue.mark_left(ctx.user.center_id, ticket_id, ctx.user)
    except QueueError as exc:
        key, ok = exc.key, False
    if _wants_json(request):
        session = qw.queue.session_of(ctx.user)
        return JSONResponse(
            {"ok": ok, "message": ctx.t(key), "key": key, **_answer_markup(ctx, qw, session)},
            status_code=200 if ok else 409,
        )
    return RedirectResponse(f"/counter?msg={key}", status_code=303)


@endpoint("queue.counter")
async def counter_live(request: Request, ctx: Ctx) -> Response:
    """The counter's waiting list and panel, re-rendered after every step of the center."""
    assert ctx.user is not None and ctx.user.center_id is not None and ctx.session is not None
    qw = queue_web(request)
    user, session_id = ctx.user, ctx.session.id
    center_id = ctx.user.center_id
    start = await _latest(qw, center_id)

    def render(steps: list[Step]) -> list[str]:
        fragments = _fragments(ctx, qw.queue.session_of(user))
        return [sse(steps[-1].id, "update", {"target": k, "html": v}) for k, v in fragments.items()]

    return follow(
        request,
        center_id,
        resume_cursor(request, start),
        render,
        poll_s=qw.settings.poll_s,
        still_allowed=lambda: ctx.web.store.accounts.session(session_id) is not None,
    )


async def _latest(qw: Any, center_id: str) -> int:
    from starlette.concurrency import run_in_threadpool

    return int(await run_in_threadpool(qw.queue.latest_step_id, center_id))


# --- the manager's page: now, statistics, ratings, settings ------------------------------------------

STAT_COLUMNS = [
    Column("key", "queue.stats.group", lambda r: r.label),
    Column("arrivals", "queue.stats.arrivals", lambda r: r.arrivals),
    Column("called", "queue.stats.called", lambda r: r.called),
    Column("served", "queue.stats.served", lambda r: r.served),
    Column("no_shows", "queue.stats.no_shows", lambda r: r.no_shows),
    Column("left", "queue.stats.left", lambda r: r.left),
    Column("transfers", "queue.stats.transfers", lambda r: r.transfers),
    Column("recalls", "queue.stats.recalls", lambda r: r.recalls),
    Column("wait_avg_min", "queue.stats.wait_avg", lambda r: _minutes(r.wait_avg_s)),
    Column("wait_max_min", "queue.stats.wait_max", lambda r: _minutes(r.wait_max_s if r.wait_n else None)),
    Column("wait_over_target_pct", "queue.stats.over_target", lambda r: _percent(r.over_target_share)),
    Column("service_avg_min", "queue.stats.service_avg", lambda r: _minutes(r.service_avg_s)),
    Column(
        "service_max_min",
        "queue.stats.service_max",
        lambda r: _minutes(r.service_max_s if r.service_n else None),
    ),
    # appointments apart from walk-ins (added last: the columns before keep their places in exports)
    Column("walk_ins", "queue.appt.walk_ins", lambda r: r.walk_ins),
    Column("appointments", "queue.appt.appointments", lambda r: r.appointments),
    Column("appointments_late", "queue.appt.late", lambda r: r.appointments_late),
    Column("walkin_wait_avg_min", "queue.appt.walkin_wait_avg", lambda r: _minutes(r.walkin_wait_avg_s)),
    Column("appt_wait_avg_min", "queue.appt.wait_avg", lambda r: _minutes(r.appt_wait_avg_s)),
    Column(
        "appt_wait_max_min",
        "queue.appt.wait_max",
        lambda r: _minutes(r.appt_wait_max_s if r.appt_wait_n else None),
    ),
]
RATING_COLUMNS = [
    Column("officer", "queue.ratings.officer", lambda r: r.label),
    Column("count", "queue.ratings.count", lambda r: r.count),
    Column("average_pct", "queue.ratings.average", lambda r: _percent(r.average, scale=1)),
    Column("satisfied_pct", "queue.ratings.satisfied", lambda r: _percent(r.satisfied_share)),
    Column("phone", "queue.ratings.phone", lambda r: r.by_via.get("phone", 0)),
    Column("kiosk", "queue.ratings.kiosk", lambda r: r.by_via.get("kiosk", 0)),
]
GROUPS = queue_stats.GROUPS


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def _percent(share: float | None, scale: float = 100.0) -> float | None:
    return None if share is None else round(share * scale, 1)


def _day_param(value: str | None, default: str) -> str:
    if not value:
        return default
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ValidationError(f"not a day: {value[:20]!r}") from exc


@endpoint("queue.view")
def center_queue(request: Request, ctx: Ctx) -> Response:
    qw = queue_web(request)
    center_id = request.path_params["center_id"]
    center = ctx.web.store.registry.center(ctx.scope, center_id)  # another center: 404
    params = request.query_params
    today = qw.queue.today()
    day_to = _day_param(params.get("to"), today)
    day_from = _day_param(params.get("from"), day_to)
    if date.fromisoformat(day_to) - date.fromisoformat(day_from) > timedelta(days=62):
        raise ValidationError("at most 62 days at once")
    by = params.get("by", "service")
    by = by if by in GROUPS else "service"
    settings = qw.queue.settings(center_id)
    rows = queue_stats.compute(
        qw.queue,
        center_id,
        day_from,
        day_to,
        by,
        settings.target_wait_min * 60,
        lang=ctx.lang,
        zone=ctx.web.zone,
    )
    form = params.get("format", "html")
    what = params.get("list", "stats")
    if what == "ratings":
        if not ctx.can("rating.view"):
            return ctx.web.error(ctx, 403, "error.forbidden")
        ratings = queue_stats.ratings(qw.queue, center_id, day_from, day_to, zone=ctx.web.zone)
        if form == "csv":
            return csv_response(f"danh-gia-{center_id}-{day_from}", RATING_COLUMNS, ratings, ctx.web.zone)
        return json_response(RATING_COLUMNS, ratings, center=center_id, start=day_from, end=day_to)
    if form == "csv":
        return csv_response(f"hang-doi-{center_id}-{by}-{day_from}", STAT_COLUMNS, rows, ctx.web.zone)
    if form == "json":
        return json_response(STAT_COLUMNS, rows, center=center_id, start=day_from, end=day_to, by=by)
    services = qw.queue.services(center_id)
    paces = qw.queue.paces(center_id)
    ratings = (
        queue_stats.ratings(qw.queue, center_id, day_from, day_to, zone=ctx.web.zone)
        if ctx.can("rating.view")
        else []
    )
    return ctx.web.render(
        ctx,
        "queue_center.html",
        center=center,
        rows=rows,
        by=by,
        groups=GROUPS,
        day_from=day_from,
        day_to=day_to,
        settings=settings,
        services=services,
        paces=paces,
        sessions=qw.queue.sessions(center_id),
        ratings=ratings,
        columns=STAT_COLUMNS,
        rating_columns=RATING_COLUMNS,
        message=ctx.t("queue.settings.saved") if params.get("saved") else None,
    )


@endpoint("queue.manage")
def center_queue_settings(request: Request, ctx: Ctx) -> Response:
    qw = queue_web(request)
    center_id = request.path_params["center_id"]
    ctx.web.store.registry.center(ctx.scope, center_id)  # another center: 404
    before = qw.queue.settings(center_id)
    changes: dict[str, Any] = {}
    for name in ("priority_mode", "pulling", "notice_vi", "notice_en", "appointment_early"):
        if ctx.form is not None and name in ctx.form:
            changes[name] = ctx.field(name)
    for name in (
        "priority_every",
        "max_recalls",
        "target_wait_min",
        "recent_calls",
        "appointment_ahead_min",
        "appointment_late_min",
    ):
        if ctx.form is not None and name in ctx.form:
            try:
                changes[name] = int(ctx.field(name))
            except ValueError as exc:
                raise ValidationError(f"{name}: a whole number") from exc
    after = qw.queue.update_settings(center_id, **changes)
    assert ctx.user is not None
    keep = (
        "priority_mode",
        "priority_every",
        "pulling",
        "max_recalls",
        "target_wait_min",
        "recent_calls",
        "notice_vi",
        "notice_en",
        "appointment_early",
        "appointment_ahead_min",
        "appointment_late_min",
    )
    ctx.web.store.audit.record(
        "queue.settings",
        user_id=ctx.user.id,
        username=ctx.user.username,
        object_type="center",
        object_id=center_id,
        center_id=center_id,
        before={k: getattr(before, k) for k in keep},
        after={k: getattr(after, k) for k in keep},
        address=ctx.address,
    )
    return RedirectResponse(f"/queue/{center_id}?saved=1", status_code=303)
