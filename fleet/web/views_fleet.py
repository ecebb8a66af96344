"""The fleet pages: the province's centers, a center's kiosks, one kiosk, alarms. Each list is the
same view as HTML, CSV (``?format=csv``) and JSON (``?format=json``), over the same scoped query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import NotFoundError
from fleet.store import Scope, Store
from fleet.store.models import Alarm, CenterSummary, Command, DeviceState, KioskRow, StatusChange, StoredEvent
from fleet.store.registry import KIOSK_SORTS
from fleet.store.schema import KIOSK_STATES
from fleet.web import charts
from fleet.web.contract_text import command_outcome, event_text, kind_label
from fleet.web.core import Ctx, endpoint, local_path, query_int
from fleet.web.format import Column, csv_response, duration, json_response, json_value
from fleet.web.i18n import Translator


def fmt_of(request: Request) -> str:
    value = request.query_params.get("format", "html")
    return value if value in ("html", "csv", "json") else "html"


def state_label(tr: Translator, state: str) -> str:
    return tr.optional(f"state.{state}", state)


def device_label(tr: Translator, device: str) -> str:
    return tr.optional(f"device.{device}", device)


def device_state_label(tr: Translator, state: str) -> str:
    return tr.optional(f"device_state.{state}", state)


def alarm_label(tr: Translator, alarm: Alarm) -> str:
    return tr.optional(f"alarm_type.{alarm.type}", alarm.type)


def devices_text(row: KioskRow, tr: Translator) -> str:
    return "; ".join(f"{device_label(tr, d.device)}: {device_state_label(tr, d.state)}" for d in row.devices)


# --- centers -------------------------------------------------------------------------------------

CENTER_COLUMNS = [
    Column("id", "common.id", lambda s: s.center.id),
    Column("name", "centers.center", lambda s: s.center.name),
    Column("province", "centers.province", lambda s: s.center.province_name),
    Column("kiosks", "centers.kiosks", lambda s: s.kiosks),
    Column("online", "centers.online", lambda s: s.online),
    Column("offline", "centers.offline", lambda s: s.offline),
    Column("unknown", "centers.unknown", lambda s: s.unknown),
    Column("active_alarms", "centers.alarms", lambda s: s.active_alarms),
]


@endpoint("fleet.view")
def centers(request: Request, ctx: Ctx) -> Response:
    store = ctx.web.store
    change_id = store.changes.stream_start()  # before the rows: fleet.web.live
    summaries: list[CenterSummary] = store.registry.center_summaries(ctx.scope)
    form = fmt_of(request)
    if form == "csv":
        return csv_response("trung-tam", CENTER_COLUMNS, summaries, ctx.web.zone)
    if form == "json":
        return json_response(CENTER_COLUMNS, summaries)
    return ctx.web.render(ctx, "centers.html", summaries=summaries, change_id=change_id)


# --- a center's kiosks ---------------------------------------------------------------------------

KIOSK_COLUMNS = [
    Column("id", "center.kiosk", lambda r: r.kiosk.id),
    Column("label", "center.label", lambda r: r.kiosk.label),
    Column("slot", "center.slot", lambda r: r.kiosk.slot),
    Column("state", "center.state", lambda r: r.kiosk.state, lambda r, tr: state_label(tr, r.kiosk.state)),
    Column("state_since", "kiosk.state_since", lambda r: r.kiosk.state_since),
    Column("last_seen", "center.last_seen", lambda r: r.kiosk.last_seen),
    Column("agent_version", "kiosk.agent_version", lambda r: r.kiosk.agent_version),
    Column("app_version", "kiosk.app_version", lambda r: r.kiosk.app_version),
    Column("config_center_version", "kiosk.config_center", lambda r: r.kiosk.config_center_version),
    Column("config_kiosk_version", "kiosk.config_kiosk", lambda r: r.kiosk.config_kiosk_version),
    Column("devices", "center.devices", lambda r: {d.device: d.state for d in r.devices}, devices_text),
    Column("active_alarms", "center.alarms", lambda r: r.active_alarms),
    Column(
        "worst_severity",
        "alarms.severity",
        lambda r: r.worst_severity,
        lambda r, tr: tr(f"severity.{r.worst_severity}") if r.worst_severity else "",
    ),
]


@endpoint("fleet.view")
def center(request: Request, ctx: Ctx) -> Response:
    store, params = ctx.web.store, request.query_params
    center_id = request.path_params["center_id"]
    found = store.registry.center(ctx.scope, center_id)
    state = params.get("state") if params.get("state") in KIOSK_STATES else None
    search = (params.get("q") or "").strip()[:64] or None
    sort = params.get("sort", "id")
    sort = sort if sort in KIOSK_SORTS else "id"
    form = fmt_of(request)
    if form in ("csv", "json"):
        rows = store.registry.kiosk_rows(
            ctx.scope, center_id, state=state, search=search, sort=sort, limit=None
        )
        if form == "csv":
            return csv_response(f"kiosk-{center_id}", KIOSK_COLUMNS, rows.items, ctx.web.zone)
        return json_response(KIOSK_COLUMNS, rows.items, center=center_id, total=rows.total)
    size = query_int(params, "size", ctx.web.settings.page_size, 10, 1000)
    number = query_int(params, "page", 1, 1, 10**6)
    change_id = store.changes.stream_start()  # before the rows: fleet.web.live
    page = store.registry.kiosk_rows(
        ctx.scope, center_id, state=state, search=search, sort=sort, offset=(number - 1) * size, limit=size
    )
    summary = store.registry.center_summaries(ctx.scope, [center_id])[0]
    query = {
        k: v
        for k, v in (
            ("state", state),
            ("q", search),
            ("sort", sort if sort != "id" else None),
            ("size", str(size) if size != ctx.web.settings.page_size else None),
        )
        if v
    }
    return ctx.web.render(
        ctx,
        "center.html",
        center=found,
        summary=summary,
        page=page,
        state=state,
        search=search or "",
        sort=sort,
        query=query,
        change_id=change_id,
    )


# --- one kiosk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    x: float  # percent of the window
    width: float
    state: str
    start: datetime
    end: datetime


def timeline(
    history: list[StatusChange], now: datetime, window: timedelta = timedelta(hours=24)
) -> list[Segment]:
    """The kiosk's states over the last day, from the applied status changes (newest first in)."""
    start = now - window
    applied = sorted((h for h in history if h.applied), key=lambda h: (h.received_at, h.id))
    state, cursor = "unknown", start
    segments: list[Segment] = []
    for change in applied:
        if change.received_at <= start:
            state = change.state
            continue
        if change.state != state:
            segments.append(Segment(0, 0, state, cursor, change.received_at))
            state, cursor = change.state, change.received_at
    segments.append(Segment(0, 0, state, cursor, now))
    total = window.total_seconds()
    out = []
    for s in segments:
        x = (s.start - start).total_seconds() / total * 100
        width = (s.end - s.start).total_seconds() / total * 100
        if width > 0:
            out.append(Segment(round(x, 3), round(width, 3), s.state, s.start, s.end))
    return out


STATUS_COLUMNS = [
    Column("received_at", "kiosk.status_at", lambda s: s.received_at),
    Column("at", "kiosk.kiosk_time", lambda s: s.at),
    Column("state", "kiosk.status_state", lambda s: s.state, lambda s, tr: state_label(tr, s.state)),
    Column(
        "reason",
        "kiosk.status_reason",
        lambda s: s.reason,
        lambda s, tr: tr.optional(f"reason.{s.reason}", s.reason),
    ),
    Column("bdseq", "kiosk.bdseq", lambda s: s.bdseq),
    Column("boot", "kiosk.boot", lambda s: s.boot),
    Column("applied", "kiosk.status_applied", lambda s: s.applied),
]


def event_columns(services: Mapping[str, str]) -> list[Column]:
    """A kiosk's events as a list: the spreadsheet says each in words (Vietnamese, with ``services``,
    the center's service names) beside the raw payload; JSON keeps the codes and the payload only."""
    return [
        Column("occurred_at", "kiosk.event_at", lambda e: e.occurred_at),
        Column("received_at", "kiosk.received_at", lambda e: e.received_at),
        Column("kind", "kiosk.event_kind", lambda e: e.kind, lambda e, tr: kind_label(tr, e.kind)),
        Column("seq", "kiosk.event_seq", lambda e: e.seq),
        Column("journal_id", "kiosk.journal", lambda e: e.journal_id),
        Column("event_id", "kiosk.event_id", lambda e: e.event_id),
        Column("replay", "kiosk.replay", lambda e: e.replay),
        Column(
            "text",
            "kiosk.event_text",
            lambda e: None,
            lambda e, tr: event_text(tr, e.kind, e.payload, services),
            json=False,
        ),
        Column("payload", "kiosk.event_payload", lambda e: e.payload),
    ]


#: the columns' keys and headers (the lists themselves are made with the kiosk's center's services)
EVENT_COLUMNS = event_columns({})


def shown_events(ctx: Ctx, found: list[StoredEvent]) -> list[StoredEvent]:
    """A kiosk's events as this user may read them, on the page and in its exports. Ratings are read
    one by one by nobody (center.md, "Privacy at the center"): a rating's target (the ticket, counter
    or officer it was about) is withheld from everyone, since ratings per counter and officer are the
    usage page's aggregates; and roles without ``rating.view`` (technicians, viewers), which never see
    ratings on the usage page, get a rating's kind and time only, not its level or reasons."""
    ratings = ctx.can("rating.view")
    return [_shown_event(event, ratings) for event in found]


def _shown_event(event: StoredEvent, ratings: bool) -> StoredEvent:
    if event.kind != "rating":
        return event
    if not ratings:
        return replace(event, payload={})
    return replace(event, payload={k: v for k, v in event.payload.items() if k != "target_id"})


def _outcome_text(command: Command, tr: Translator) -> str:
    outcome = command_outcome(tr, command)
    return outcome.text if outcome is not None else ""


COMMAND_COLUMNS = [
    Column("request_id", "kiosk.request_id", lambda c: c.request_id),
    Column("command", "kiosk.command", lambda c: c.command),
    Column("args", "kiosk.args", lambda c: c.args),
    Column("requested_by", "kiosk.command_by", lambda c: c.requested_by_name),
    Column(
        "sent_elsewhere",
        "kiosk.command_from",
        lambda c: c.sent_elsewhere,
        lambda c, tr: tr("kiosk.sent_elsewhere") if c.sent_elsewhere else "",
    ),
    Column("requested_at", "kiosk.command_at", lambda c: c.requested_at),
    Column(
        "status",
        "kiosk.command_status",
        lambda c: c.status,
        lambda c, tr: tr.optional(f"command_status.{c.status}", c.status),
    ),
    # "Chi tiết" as the console says it (in Vietnamese: the spreadsheet's language), then the machine
    # values: the result's code and the kiosk's English as it came
    Column("outcome", "kiosk.command_reason", lambda c: None, _outcome_text, json=False),
    Column("result_code", "kiosk.command_code", lambda c: c.result_code),
    Column("result_reason", "kiosk.command_raw_reason", lambda c: c.result_reason),
    Column("result_at", "kiosk.result_at", lambda c: c.result_at),
]
DEVICE_COLUMNS = [
    Column("device", "kiosk.device", lambda d: d.device, lambda d, tr: device_label(tr, d.device)),
    Column("state", "center.state", lambda d: d.state, lambda d, tr: device_state_label(tr, d.state)),
    Column("since", "kiosk.device_since_col", lambda d: d.since),
    Column("updated_at", "kiosk.updated_at", lambda d: d.updated_at),
    Column("detail", "alarms.detail", lambda d: d.detail),
]


@endpoint("fleet.view")
def kiosk(request: Request, ctx: Ctx) -> Response:
    kiosk_id = request.path_params["kiosk_id"]
    if fmt_of(request) == "json":
        return _kiosk_json(ctx, kiosk_id)
    message = ctx.t("console.sent") if request.query_params.get("done") == "command" else None
    return render_kiosk(ctx, kiosk_id, message=message)


def _kiosk_json(ctx: Ctx, kiosk_id: str) -> Response:
    row = ctx.web.store.registry.kiosk_rows_by_id(ctx.scope, [kiosk_id])
    if not row:
        raise NotFoundError(f"kiosk {kiosk_id!r} not found")
    kiosk_row = row[0]
    k = kiosk_row.kiosk
    return json_response(
        KIOSK_COLUMNS,
        [kiosk_row],
        hardware=k.hardware,
        heartbeat_s=k.heartbeat_s,
        bdseq=k.bdseq,
        boot=k.boot,
        state_reason=k.state_reason,
        state_since=json_value(k.state_since),
    )


def render_kiosk(ctx: Ctx, kiosk_id: str, *, status: int = 200, **extra: Any) -> Response:
    """The kiosk page; ``extra``: the console's message, error (command, text) and draft."""
    from fleet.web import views_console

    store, scope = ctx.web.store, ctx.scope
    change_id = store.changes.stream_start()  # before the rows: fleet.web.live
    row = store.registry.kiosk_rows_by_id(scope, [kiosk_id])
    if not row:
        raise NotFoundError(f"kiosk {kiosk_id!r} not found")
    kiosk_row = row[0]
    center_found = store.registry.center(scope, kiosk_row.kiosk.center_id)
    history = store.telemetry.status_history(scope, kiosk_id, limit=200)
    now = store.db.now()
    values = {"message": None, "console_error": None, "console_draft": {}, **extra}
    health_range = charts.range_of(ctx.request.query_params.get("health"))
    health_since = now - charts.RANGES[health_range]
    if health_range == "24h":
        samples = store.telemetry.health_samples(scope, kiosk_id, health_since, now)
        health_charts = charts.raw_charts(samples, health_since, now)
    else:
        hour_start = health_since.replace(minute=0, second=0, microsecond=0)
        hours = store.telemetry.health_hours(scope, kiosk_id, hour_start, now)
        health_charts = charts.hourly_charts(hours, health_since, now)
    return ctx.web.render(
        ctx,
        "kiosk.html",
        status=status,
        console=views_console.entries(store, scope, kiosk_id),
        console_commands=views_console.CONSOLE,
        lifetimes=list(views_console.LIFETIMES),
        default_lifetime=views_console.DEFAULT_LIFETIME,
        **values,
        row=kiosk_row,
        k=kiosk_row.kiosk,
        center=center_found,
        history=history[:50],
        segments=timeline(history, now),
        window_start=now - timedelta(hours=24),
        now=now,
        health_charts=health_charts,
        health_range=health_range,
        health_ranges=list(charts.RANGES),
        health_ticks=charts.time_ticks(health_since, now, ctx.web.zone),
        chart_box=charts.Box(),
        events=shown_events(ctx, store.events.recent(scope, kiosk_id, limit=30)),
        services=service_names(store, scope, kiosk_row.kiosk.center_id, ctx.lang),
        gaps=store.events.gaps(scope, kiosk_id),
        alarms=store.alarms.page(scope, active=None, kiosk_id=kiosk_id, limit=20).items,
        config=store.configs.state(scope, kiosk_id),
        change_id=change_id,
    )


def service_names(store: Store, scope: Scope, center_id: str, language: str) -> dict[str, str]:
    """A center's service codes -> their names in ``language`` (its queue's services, else the ones it
    pushed: ``Usage.service_names``)."""
    names = store.usage.service_names(scope, center_id=center_id, language=language)
    return {code: name for (_, code), name in names.items()}


SUBLISTS: dict[str, tuple[list[Column], str]] = {
    "status": (STATUS_COLUMNS, "trang-thai"),
    "events": (EVENT_COLUMNS, "su-kien"),
    "commands": (COMMAND_COLUMNS, "lenh"),
    "devices": (DEVICE_COLUMNS, "thiet-bi"),
}


@endpoint("fleet.view")
def kiosk_list(request: Request, ctx: Ctx) -> Response:
    """A kiosk's status history, events, commands or devices as CSV / JSON (HTML: the kiosk page)."""
    store, scope = ctx.web.store, ctx.scope
    kiosk_id, name = request.path_params["kiosk_id"], request.path_params["list"]
    if name not in SUBLISTS:
        raise NotFoundError(f"no list {name!r}")
    found = store.registry.kiosk(scope, kiosk_id)  # 404 outside the scope, whatever the list
    columns, filename = SUBLISTS[name]
    rows: list[StatusChange] | list[StoredEvent] | list[Command] | list[DeviceState]
    if name == "status":
        rows = store.telemetry.status_history(scope, kiosk_id, limit=None)
    elif name == "events":
        rows = shown_events(ctx, store.events.recent(
            scope, kiosk_id, limit=query_int(request.query_params, "limit", 10_000, 1, 100_000)
        ))
        # said in Vietnamese, the spreadsheet's language, with the center's service names
        columns = event_columns(service_names(store, scope, found.center_id, "vi"))
    elif name == "commands":
        rows = store.commands.for_kiosk(scope, kiosk_id, limit=None)
    else:
        rows = store.registry.devices(scope, kiosk_id)
    form = fmt_of(request)
    if form == "csv":
        return csv_response(f"{filename}-{kiosk_id}", columns, rows, ctx.web.zone)
    if form == "json":
        return json_response(columns, rows, kiosk=kiosk_id)
    return RedirectResponse(f"/kiosks/{kiosk_id}#{name}", status_code=303)


# --- alarms --------------------------------------------------------------------------------------

ALARM_COLUMNS = [
    Column("id", "common.id", lambda a: a.id),
    Column("center_id", "alarms.center", lambda a: a.center_id),
    Column("kiosk_id", "alarms.kiosk", lambda a: a.kiosk_id),
    Column("type", "alarms.type", lambda a: a.type, lambda a, tr: alarm_label(tr, a)),
    Column(
        "device",
        "alarms.device",
        lambda a: a.device,
        lambda a, tr: device_label(tr, a.device) if a.device else "",
    ),
    Column("severity", "alarms.severity", lambda a: a.severity, lambda a, tr: tr(f"severity.{a.severity}")),
    Column(
        "active",
        "alarms.status",
        lambda a: a.active,
        lambda a, tr: tr("alarms.active") if a.active else tr("alarms.cleared"),
    ),
    Column("started_at", "alarms.started", lambda a: a.started_at),
    Column("ended_at", "alarms.ended", lambda a: a.ended_at),
    Column(
        "duration_s",
        "alarms.duration",
        lambda a: round(((a.ended_at or a.updated_at) - a.started_at).total_seconds()),
        lambda a, tr: duration(a.started_at, a.ended_at or a.updated_at),
    ),
    Column("acknowledged_by", "alarms.acknowledged", lambda a: a.acknowledged_by_name),
    Column("acknowledged_at", "alarms.acknowledged_at", lambda a: a.acknowledged_at),
    Column("reminders", "alarms.reminders", lambda a: a.reminders),
    Column("detail", "alarms.detail", lambda a: a.detail),
]
ALARM_VIEWS = {"active": True, "cleared": False, "all": None}


@endpoint("fleet.view")
def alarms(request: Request, ctx: Ctx) -> Response:
    store, params = ctx.web.store, request.query_params
    view = params.get("view", "active")
    view = view if view in ALARM_VIEWS else "active"
    center_id = params.get("center") or None
    kiosk_id = params.get("kiosk") or None
    if center_id:
        store.registry.center(ctx.scope, center_id)  # 404 outside the scope rather than an empty list
    if kiosk_id:
        store.registry.kiosk(ctx.scope, kiosk_id)
    form = fmt_of(request)
    if form in ("csv", "json"):
        listed = store.alarms.page(
            ctx.scope, active=ALARM_VIEWS[view], center_id=center_id, kiosk_id=kiosk_id, limit=None
        )
        if form == "csv":
            return csv_response("canh-bao", ALARM_COLUMNS, listed.items, ctx.web.zone)
        return json_response(ALARM_COLUMNS, listed.items, total=listed.total)
    size = ctx.web.settings.page_size
    number = query_int(params, "page", 1, 1, 10**6)
    change_id = store.changes.stream_start()  # before the rows: fleet.web.live
    page = store.alarms.page(
        ctx.scope,
        active=ALARM_VIEWS[view],
        center_id=center_id,
        kiosk_id=kiosk_id,
        offset=(number - 1) * size,
        limit=size,
    )
    names = {c.id: c.name for c in store.registry.centers(ctx.scope)}
    query = {
        k: v
        for k, v in (("view", view if view != "active" else None), ("center", center_id), ("kiosk", kiosk_id))
        if v
    }
    done = params.get("done") == "ack"
    return ctx.web.render(
        ctx,
        "alarms.html",
        page=page,
        view=view,
        center_names=names,
        query=query,
        center_id=center_id,
        kiosk_id=kiosk_id,
        change_id=change_id,
        message=ctx.t("alarms.acknowledged_ok") if done else None,
    )


def _alarm_audit(alarm: Alarm) -> dict[str, Any]:
    return {
        "acknowledged_by": alarm.acknowledged_by_name,
        "acknowledged_at": alarm.acknowledged_at.isoformat() if alarm.acknowledged_at else None,
        "type": alarm.type,
        "kiosk_id": alarm.kiosk_id,
        "severity": alarm.severity,
        "active": alarm.active,
    }


@endpoint("alarm.ack")
def acknowledge(request: Request, ctx: Ctx) -> Response:
    store, user = ctx.web.store, ctx.user
    assert user is not None
    try:
        alarm_id = int(request.path_params["alarm_id"])
    except ValueError:
        raise NotFoundError("alarm id is not a number") from None
    before, after = store.alarms.acknowledge(ctx.scope, alarm_id, user.id)
    if before.acknowledged_at is None:
        store.audit.record(
            "alarm.ack",
            user_id=user.id,
            username=user.username,
            object_type="alarm",
            object_id=str(alarm_id),
            center_id=after.center_id,
            before=_alarm_audit(before),
            after=_alarm_audit(after),
            address=ctx.address,
        )
    target = local_path(ctx.field("next"), "/alarms")
    separator = "&" if "?" in target else "?"
    return RedirectResponse(
        f"{target}{separator}done=ack" if "done=ack" not in target else target, status_code=303
    )
