"""The usage page (``/usage``): what citizens did and thought and how the kiosks held up, for one
center or every center the user sees, over a range of days (today by default), live.

Figures come from ``store.usage`` (aggregates made in SQL, scoped); this module only lays them out.
``?format=json`` answers the same figures (codes, UTC). The live stream (``/usage/live``) asks the
store's cheap watermark every ``POLL_S`` and re-renders the figures when it moved, as the other pages'
streams do (``fleet.js`` swaps the block by its ``data-live-target``). Ratings per level, reason,
counter and officer are shown to roles with ``rating.view`` only (officers and viewers never see
them); the satisfaction % of the center is shown to everyone who sees the center.
"""

from __future__ import annotations

import json
import logging
import time as clock
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fleet.reports.build import level_rows
from fleet.store import Scope, Store
from fleet.store.models import Center
from fleet.store.usage import (
    AVAILABILITY_TYPES,
    MAX_DAYS,
    OutcomeCount,
    Period,
    RatingGroup,
    availability_percent,
    officer_labels,
    rating_groups,
    split_day_hour,
)
from fleet.web.contract_text import reason_label
from fleet.web.core import Ctx, endpoint
from fleet.web.format import json_value

log = logging.getLogger(__name__)
POLL_S = 2.0  # the usage figures are heavier than a row: looked at every 2 s, re-rendered on change


@dataclass(frozen=True)
class Choice:
    """What the page shows: a center (or the whole scope) and a range of local days."""

    center_id: str | None
    first: date
    last: date
    error: str | None = None  # a catalog key: the range given was refused, today is shown instead

    def query(self) -> dict[str, str]:
        out = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        if self.center_id:
            out["center"] = self.center_id
        return out


def choose(ctx: Ctx, params: Any) -> Choice:
    """The page's center and days from the query; bad days fall back to today with a message."""
    today = ctx.web.store.db.now().astimezone(ctx.web.zone).date()
    center_id = params.get("center") or None
    if center_id is None and ctx.user is not None and ctx.user.center_id:
        center_id = ctx.user.center_id
    if center_id is not None:
        ctx.web.store.registry.center(ctx.scope, center_id)  # another center's: 404
    first_text, last_text = params.get("from"), params.get("to")
    if not first_text and not last_text:
        return Choice(center_id, today, today)
    try:
        first = date.fromisoformat(first_text or last_text)
        last = date.fromisoformat(last_text or first_text)
    except ValueError:
        return Choice(center_id, today, today, "usage.error.date")
    if last < first:
        return Choice(center_id, today, today, "usage.error.order")
    if (last - first).days + 1 > MAX_DAYS:
        return Choice(center_id, today, today, "usage.error.too_long")
    return Choice(center_id, first, last)


@dataclass(frozen=True)
class PartLine:
    type: str
    kiosks: int
    outages: int
    down_s: float
    available_percent: float | None


@dataclass(frozen=True)
class CenterLine:
    center: Center
    issued: int
    ratings: int
    satisfied_percent: float | None
    available_percent: float | None
    alarms: int


@dataclass(frozen=True)
class Figures:
    days: list[str]
    services: list[str]
    service_names: dict[str, str]
    by_day: dict[tuple[str, str], int]  # (day, service) -> issued
    by_hour: dict[tuple[str, str], int]  # (hour, service) -> issued
    hours: list[str]
    issued: int
    voided: int
    waiting: dict[str, int]
    waiting_total: int
    lookups: list[OutcomeCount]
    card_reads: list[OutcomeCount]
    ratings_total: int
    satisfied_percent: float | None
    levels: list[tuple[str, RatingGroup]]
    groups: dict[str, list[RatingGroup]]
    reason_labels: dict[str, dict[str, str]]  # reason code -> {"vi": ..., "en": ...}
    officer_labels: dict[str, str]  # officer key -> "name (key)", for those the store can name
    parts: list[PartLine]
    kiosk_available_percent: float | None
    centers: list[CenterLine]
    made_at: datetime


def _merge_outcomes(rows: list[OutcomeCount]) -> list[OutcomeCount]:
    """Several centers' rows of one outcome as one (weighted mean, largest maximum)."""
    merged: dict[str, list[float]] = {}
    for r in rows:
        acc = merged.setdefault(r.outcome, [0, 0.0, 0, -1.0])
        acc[0] += r.count
        if r.mean_ms is not None:
            acc[1] += r.mean_ms * r.count
            acc[2] += r.count
        acc[3] = max(acc[3], r.max_ms if r.max_ms is not None else -1.0)
    out = [
        OutcomeCount("", outcome, int(n), (total / timed) if timed else None, top if top >= 0 else None)
        for outcome, (n, total, timed, top) in merged.items()
    ]
    return sorted(out, key=lambda o: (-o.count, o.outcome))


def figures(
    store: Store, scope: Scope, choice: Choice, zone: Any, *, ratings: bool, language: str = "vi"
) -> Figures:
    """Everything the page shows, from a dozen aggregate queries; services named in ``language``."""
    usage, center_id = store.usage, choice.center_id
    period = Period.days(choice.first, choice.last, zone)
    by_day_rows, by_hour_rows = split_day_hour(
        usage.tickets(scope, period, by="day_hour", center_id=center_id)
    )
    today = store.db.now().astimezone(zone).date()
    waiting_rows = usage.waiting(scope, today, center_id=center_id)
    breakdown = usage.rating_breakdown(scope, period, center_id=center_id)
    levels = breakdown["level"]
    spans = usage.kiosk_spans(scope, period, center_id=center_id)
    downs = usage.downtime(scope, period, center_id=center_id)
    named = usage.service_names(scope, center_id=center_id, language=language)
    names = {code: name for (_, code), name in named.items()}
    by_day: dict[tuple[str, str], int] = {}
    by_hour: dict[tuple[str, str], int] = {}
    for t in by_day_rows:
        by_day[(t.bucket, t.service)] = by_day.get((t.bucket, t.service), 0) + t.issued
    for t in by_hour_rows:
        by_hour[(t.bucket, t.service)] = by_hour.get((t.bucket, t.service), 0) + t.issued
    waiting: dict[str, int] = {}
    for w in waiting_rows:
        waiting[w.service] = waiting.get(w.service, 0) + w.waiting
    services = sorted({s for _, s in by_day} | set(waiting))
    hours = sorted({h for h, _ in by_hour})
    rated = sum(r.count for r in levels)
    satisfied = sum(r.count for r in levels if r.satisfied)
    span_total = sum(s.span_s for s in spans)
    parts = []
    for type in AVAILABILITY_TYPES:
        mine = [d for d in downs if d.type == type]
        if not mine and type != "offline":
            continue
        down = sum(d.down_s for d in mine)
        parts.append(
            PartLine(
                type,
                len({d.kiosk_id for d in mine}),
                sum(d.alarms for d in mine),
                down,
                availability_percent(span_total, down),
            )
        )
    groups: dict[str, list[RatingGroup]] = {}
    if ratings:
        for by in ("reason", "counter", "officer"):
            groups[by] = rating_groups(breakdown[by])
    officers = officer_labels(usage.officer_names(scope, center_id=center_id)) if ratings else {}
    centers: list[CenterLine] = []
    if center_id is None:
        alarm_counts = usage.alarm_counts(scope, period)
        for c in store.registry.centers(scope):
            mine_levels = [r for r in levels if r.center_id == c.id]
            n = sum(r.count for r in mine_levels)
            sat = sum(r.count for r in mine_levels if r.satisfied)
            c_span = sum(s.span_s for s in spans if s.center_id == c.id)
            c_down = sum(d.down_s for d in downs if d.center_id == c.id and d.type == "offline")
            centers.append(
                CenterLine(
                    c,
                    sum(t.issued for t in by_day_rows if t.center_id == c.id),
                    n,
                    100.0 * sat / n if n else None,
                    availability_percent(c_span, c_down),
                    alarm_counts.get(c.id, 0),
                )
            )
    offline = sum(d.down_s for d in downs if d.type == "offline")
    return Figures(
        days=period.day_labels(),
        services=services,
        service_names=names,
        by_day=by_day,
        by_hour=by_hour,
        hours=hours,
        issued=sum(t.issued for t in by_day_rows),
        voided=sum(t.voided for t in by_day_rows),
        waiting=waiting,
        waiting_total=sum(waiting.values()),
        lookups=_merge_outcomes(usage.lookups(scope, period, center_id=center_id)),
        card_reads=_merge_outcomes(usage.card_reads(scope, period, center_id=center_id)),
        ratings_total=rated,
        satisfied_percent=100.0 * satisfied / rated if rated else None,
        levels=level_rows(levels) if ratings else [],
        groups=groups,
        reason_labels={
            g.key: {lang: reason_label(g.key, lang) for lang in ("vi", "en")}
            for g in groups.get("reason", [])
        },
        officer_labels=officers,
        parts=parts,
        kiosk_available_percent=availability_percent(span_total, offline),
        centers=centers,
        made_at=store.db.now(),
    )


def _json(fig: Figures, choice: Choice) -> dict[str, Any]:
    def group(g: RatingGroup) -> dict[str, Any]:
        return {**asdict(g), "satisfied_percent": g.satisfied_percent}

    return {
        "center": choice.center_id,
        "from": choice.first.isoformat(),
        "to": choice.last.isoformat(),
        "made_at": json_value(fig.made_at),
        "tickets": {
            "issued": fig.issued,
            "voided": fig.voided,
            "by_day": [{"day": d, "service": s, "issued": n} for (d, s), n in sorted(fig.by_day.items())],
            "by_hour": [{"hour": h, "service": s, "issued": n} for (h, s), n in sorted(fig.by_hour.items())],
        },
        "waiting": fig.waiting,
        "lookups": [asdict(o) | {"center_id": None} for o in fig.lookups],
        "card_reads": [asdict(o) | {"center_id": None} for o in fig.card_reads],
        "ratings": {
            "count": fig.ratings_total,
            "satisfied_percent": fig.satisfied_percent,
            "levels": [{"label": word, **group(g)} for word, g in fig.levels],
            **{by: [group(g) for g in items] for by, items in fig.groups.items()},
        },
        "availability": {
            "kiosks_percent": fig.kiosk_available_percent,
            "parts": [asdict(p) for p in fig.parts],
        },
        "centers": [
            {
                "id": c.center.id,
                "issued": c.issued,
                "ratings": c.ratings,
                "satisfied_percent": c.satisfied_percent,
                "available_percent": c.available_percent,
                "alarms": c.alarms,
            }
            for c in fig.centers
        ],
    }


def _title(ctx: Ctx, choice: Choice) -> str:
    store = ctx.web.store
    if choice.center_id:
        return ctx.t("usage.title_center", name=store.registry.center(ctx.scope, choice.center_id).name)
    if ctx.scope.kind == "province":
        found = store.registry.centers(ctx.scope)
        if found:
            return ctx.t("usage.title_province", name=found[0].province_name)
    return ctx.t("usage.title")


@endpoint("fleet.view")
def usage_page(request: Request, ctx: Ctx) -> Response:
    store = ctx.web.store
    choice = choose(ctx, request.query_params)
    fig = figures(store, ctx.scope, choice, ctx.web.zone, ratings=ctx.can("rating.view"), language=ctx.lang)
    if request.query_params.get("format") == "json":
        return JSONResponse(_json(fig, choice))
    today = store.db.now().astimezone(ctx.web.zone).date()
    quick = {
        "today": (today, today),
        "last_7": (today - timedelta(days=6), today),
        "this_month": (today.replace(day=1), today),
    }
    return ctx.web.render(
        ctx,
        "usage.html",
        fig=fig,
        choice=choice,
        title=_title(ctx, choice),
        centers=store.registry.centers(ctx.scope),
        quick=quick,
        live_url="/usage/live?" + "&".join(f"{k}={v}" for k, v in choice.query().items()),
        report_query=choice.query(),
    )


@endpoint("fleet.view")
async def usage_live(request: Request, ctx: Ctx) -> Response:
    web = ctx.web
    choice = await run_in_threadpool(choose, ctx, request.query_params)
    shows_ratings = ctx.can("rating.view")
    scope, center_id = ctx.scope, choice.center_id

    session_id = ctx.session.id if ctx.session is not None else ""

    async def stream() -> AsyncIterator[str]:
        started = checked = clock.monotonic()
        mark = await run_in_threadpool(web.store.usage.watermark, scope, center_id=center_id)
        number = 0
        yield "retry: 3000\n\n"
        pause = POLL_S
        while clock.monotonic() - started < web.settings.live_max_s:
            await anyio.sleep(pause)
            if await request.is_disconnected():
                return
            if clock.monotonic() - checked >= web.settings.live_session_check_s:
                checked = clock.monotonic()  # a logout or a locked account ends the stream
                if await run_in_threadpool(web.store.accounts.session, session_id) is None:
                    return
            try:
                now_mark = await run_in_threadpool(web.store.usage.watermark, scope, center_id=center_id)
                if now_mark == mark:
                    yield ": ping\n\n"
                    continue
                mark = now_mark
                computing = clock.monotonic()
                fig = await run_in_threadpool(
                    figures, web.store, scope, choice, web.zone, ratings=shows_ratings, language=ctx.lang
                )
                # a month of a busy province takes seconds: at most a fifth of the time goes to it
                pause = max(POLL_S, 5 * (clock.monotonic() - computing))
                html = await run_in_threadpool(
                    web.fragment, ctx, "usage_fragments.html", "usage_body", fig, choice
                )
            except Exception:  # the browser reconnects (retry)
                log.exception("usage stream for %s ended by an error", ctx.user.username if ctx.user else "-")
                return
            number += 1
            data = json.dumps({"target": "usage-body", "html": html}, ensure_ascii=False)
            yield f"id: {number}\nevent: update\ndata: {data}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["Choice", "Figures", "choose", "figures", "usage_live", "usage_page"]
