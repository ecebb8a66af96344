"""A report: what a center or a province did in a month or any range of days, as sheets of rows.

``build_report(store, scope, target, period)`` asks ``store.usage`` (aggregates made in SQL) and lays
the answers out as ``Sheet``s with Vietnamese headers (reports are Vietnamese whatever the page's
language, like every export of the fleet). ``fleet.reports.write`` turns a report into XLSX or CSV.
A scope that does not see the target gets ``NotFoundError`` (another center's report is a 404).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from common.errors import NotFoundError, ValidationError
from fleet.queue import stats as queue_stats
from fleet.queue.engine import Queue
from fleet.queue.models import StatRow
from fleet.store import Scope, Store
from fleet.store.models import Alarm, Center
from fleet.store.usage import (
    AVAILABILITY_TYPES,
    Downtime,
    KioskSpan,
    OutcomeCount,
    Period,
    RatingCount,
    RatingGroup,
    TicketCount,
    availability_percent,
    officer_labels,
    rating_groups,
    split_day_hour,
)
from fleet.web.contract_text import card_result, lookup_outcome, reason_label
from fleet.web.format import duration
from fleet.web.i18n import Translator

Cell = str | int | float | datetime | None


@dataclass(frozen=True)
class Target:
    """What a report is about: one center, or every center of a province."""

    kind: str  # "center" | "province"
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("center", "province"):
            raise ValidationError(f"report target {self.kind!r}: expected center or province")

    def scope(self) -> Scope:
        return Scope.center(self.id) if self.kind == "center" else Scope.province(self.id)


@dataclass(frozen=True)
class Sheet:
    key: str  # the file's sheet / section name comes from the catalog: report.sheet.<key>
    columns: list[str]  # catalog keys of the headers
    rows: list[list[Cell]]
    #: per column, how a number reads: "int", "percent" (0-100, one decimal), "hours", "ms"
    formats: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    target: Target
    title: str
    centers: list[Center]
    period: Period
    made_at: datetime
    zone: tzinfo
    sheets: list[Sheet]
    totals: dict[str, Any]

    def sheet(self, key: str) -> Sheet:
        return next(s for s in self.sheets if s.key == key)

    def filename(self, extension: str) -> str:
        first, last = self.period.first_day, self.period.last_day
        span = first.strftime("%Y-%m") if _whole_month(first, last) else f"{first}_{last}"
        return f"bao-cao-{self.target.id}-{span}.{extension}"


def _whole_month(first: date, last: date) -> bool:
    return (
        first.day == 1
        and (first.year, first.month) == (last.year, last.month)
        and ((last + timedelta(days=1)).day == 1)
    )


def target_centers(store: Store, scope: Scope, target: Target) -> list[Center]:
    """The target's centers, as the caller's scope sees them: refused (404) when it sees none of it."""
    if target.kind == "center":
        return [store.registry.center(scope, target.id)]
    if not scope.sees_province(target.id):
        raise NotFoundError(f"province {target.id!r} not found")
    found = store.registry.centers(Scope.province(target.id))
    if not found:
        raise NotFoundError(f"province {target.id!r} has no center")
    return found


def build_report(
    store: Store, scope: Scope, target: Target, period: Period, zone: tzinfo, *, ratings: bool = True
) -> Report:
    """Every sheet of a report. ``ratings=False`` leaves out the ratings sheet (a role without
    ``rating.view``); the satisfaction % in the summary stays (it is the center's, not a person's)."""
    centers = target_centers(store, scope, target)
    inside = target.scope()  # already checked against the caller's scope above
    center_id = target.id if target.kind == "center" else None
    usage = store.usage
    tr = Translator("vi")
    names = {c.id: c.name for c in centers}
    tickets_day, tickets_hour = split_day_hour(
        usage.tickets(inside, period, by="day_hour", center_id=center_id)
    )
    lookups = usage.lookups(inside, period, center_id=center_id)
    cards = usage.card_reads(inside, period, center_id=center_id)
    breakdown = usage.rating_breakdown(inside, period, center_id=center_id)
    by_level = breakdown["level"]
    spans = usage.kiosk_spans(inside, period, center_id=center_id)
    downs = usage.downtime(inside, period, center_id=center_id)
    alarm_list = usage.alarms(inside, period, center_id=center_id)
    services = usage.service_names(inside, center_id=center_id)
    queue = _queue_statistics(store, centers, period, zone)

    satisfied = sum(r.count for r in by_level if r.satisfied)
    rated = sum(r.count for r in by_level)
    span_total = sum(s.span_s for s in spans)
    offline_total = sum(d.down_s for d in downs if d.type == "offline")
    totals: dict[str, Any] = {
        "kiosks": len(spans),
        "issued": sum(t.issued for t in tickets_day),
        "voided": sum(t.voided for t in tickets_day),
        "lookups": sum(o.count for o in lookups),
        "card_reads": sum(o.count for o in cards),
        "ratings": rated,
        "satisfied": satisfied,
        "satisfied_percent": None if not rated else 100.0 * satisfied / rated,
        "availability_percent": availability_percent(span_total, offline_total),
        "downtime_h": sum(d.down_s for d in downs) / 3600.0,
        "alarms": len(alarm_list),
        **_queue_totals(queue),
    }
    title = (
        names[target.id]
        if target.kind == "center"
        else tr("report.province_title", name=centers[0].province_name)
    )
    sheets = [
        _summary(tr, title, period, store.db.now(), zone, totals),
        _centers(centers, tickets_day, by_level, spans, downs, alarm_list),
        _tickets_by_day(tickets_day, names, services),
        _tickets_by_hour(tickets_hour, names, services),
        _queue(tr, queue),
        _outcomes(tr, lookups, cards, names),
    ]
    if ratings:
        groups = {by: rating_groups(breakdown[by]) for by in ("reason", "counter", "officer")}
        officers = officer_labels(usage.officer_names(inside, center_id=center_id))
        sheets.append(_ratings(tr, by_level, groups, officers))
    sheets += [_availability(tr, spans, downs, names), _alarms(tr, alarm_list, names, zone, store.db.now())]
    return Report(target, title, centers, period, store.db.now(), zone, sheets, totals)


# --- sheets --------------------------------------------------------------------------------------


def _summary(
    tr: Translator, title: str, period: Period, made: datetime, zone: tzinfo, totals: dict[str, Any]
) -> Sheet:
    rows: list[list[Cell]] = [
        [tr("report.row.unit"), title],
        [tr("report.row.period"), f"{period.first_day:%d/%m/%Y} – {period.last_day:%d/%m/%Y}"],
        [tr("report.row.made_at"), made.astimezone(zone).replace(tzinfo=None)],
        [tr("report.row.kiosks"), totals["kiosks"]],
        [tr("report.row.issued"), totals["issued"]],
        [tr("report.row.voided"), totals["voided"]],
        [tr("report.row.lookups"), totals["lookups"]],
        [tr("report.row.card_reads"), totals["card_reads"]],
        [tr("report.row.ratings"), totals["ratings"]],
        [tr("report.row.satisfied"), totals["satisfied"]],
        [tr("report.row.satisfied_percent"), _round(totals["satisfied_percent"])],
        [tr("report.row.availability"), _round(totals["availability_percent"], 2)],
        [tr("report.row.downtime_h"), round(totals["downtime_h"], 2)],
        [tr("report.row.alarms"), totals["alarms"]],
        [tr("report.row.queue_arrivals"), totals["queue_arrivals"]],
        [tr("report.row.queue_served"), totals["queue_served"]],
        [tr("report.row.queue_no_shows"), totals["queue_no_shows"]],
        [tr("report.row.queue_left"), totals["queue_left"]],
        [tr("report.row.queue_transfers"), totals["queue_transfers"]],
        [tr("report.row.queue_wait_avg"), _minutes(totals["queue_wait_avg_s"])],
        [tr("report.row.queue_wait_max"), _minutes(totals["queue_wait_max_s"])],
        [tr("report.row.queue_over_target"), _round(totals["queue_over_target_percent"])],
        [tr("report.row.queue_service_avg"), _minutes(totals["queue_service_avg_s"])],
    ]
    return Sheet("summary", ["report.col.item", "report.col.value"], rows)


def _centers(
    centers: Sequence[Center],
    tickets: Sequence[TicketCount],
    levels: Sequence[RatingCount],
    spans: Sequence[KioskSpan],
    downs: Sequence[Downtime],
    alarm_list: Sequence[Alarm],
) -> Sheet:
    rows: list[list[Cell]] = []
    for c in centers:
        rated = [r for r in levels if r.center_id == c.id]
        n = sum(r.count for r in rated)
        sat = sum(r.count for r in rated if r.satisfied)
        span = sum(s.span_s for s in spans if s.center_id == c.id)
        offline = sum(d.down_s for d in downs if d.center_id == c.id and d.type == "offline")
        rows.append(
            [
                c.id,
                c.name,
                sum(1 for s in spans if s.center_id == c.id),
                sum(t.issued for t in tickets if t.center_id == c.id),
                sum(t.voided for t in tickets if t.center_id == c.id),
                n,
                _round(100.0 * sat / n if n else None),
                _round(availability_percent(span, offline), 2),
                sum(1 for a in alarm_list if a.center_id == c.id),
            ]
        )
    columns = [
        "report.col.center_id",
        "report.col.center",
        "report.col.kiosks",
        "report.col.issued",
        "report.col.voided",
        "report.col.ratings",
        "report.col.satisfied_percent",
        "report.col.availability",
        "report.col.alarms",
    ]
    return Sheet("centers", columns, rows, {6: "percent", 7: "percent"})


@dataclass(frozen=True)
class CenterQueue:
    """One center's queue statistics of the period, every grouping (``fleet.queue.stats``)."""

    center: Center
    target_s: float
    groups: dict[str, list[StatRow]]


def _queue_statistics(
    store: Store, centers: Sequence[Center], period: Period, zone: tzinfo
) -> list[CenterQueue]:
    """The queue's own statistics per center (the same code as the ``/queue/{center}`` page: one read
    of the period's steps per center), each center's waits against its own target."""
    queue = Queue(store)
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    out = []
    for c in centers:
        target_s = queue_stats.target_wait_s(queue, c.id)
        groups = queue_stats.compute_groups(
            queue, c.id, first, last, queue_stats.GROUPS, target_s, lang="vi", zone=zone
        )
        out.append(CenterQueue(c, target_s, groups))
    return out


def _queue_totals(queue: Sequence[CenterQueue]) -> dict[str, Any]:
    """The whole target's figures: the sums of the per-day rows (every step has a day)."""
    days = [r for q in queue for r in q.groups["day"]]
    waits = sum(r.wait_n for r in days)
    services = sum(r.service_n for r in days)
    return {
        "queue_arrivals": sum(r.arrivals for r in days),
        "queue_served": sum(r.served for r in days),
        "queue_no_shows": sum(r.no_shows for r in days),
        "queue_left": sum(r.left for r in days),
        "queue_transfers": sum(r.transfers for r in days),
        "queue_wait_avg_s": sum(r.wait_sum_s for r in days) / waits if waits else None,
        "queue_wait_max_s": max((r.wait_max_s for r in days if r.wait_n), default=None),
        "queue_over_target_percent": 100.0 * sum(r.wait_over_target for r in days) / waits if waits else None,
        "queue_service_avg_s": sum(r.service_sum_s for r in days) / services if services else None,
    }


def _queue(tr: Translator, queue: Sequence[CenterQueue]) -> Sheet:
    """Per service, counter, officer, hour and day (that order), each center's rows in turn: the
    columns of the ``/queue/{center}`` page's export, with the center and its target wait."""
    rows: list[list[Cell]] = []
    for by in queue_stats.GROUPS:
        for q in queue:
            for r in q.groups[by]:
                rows.append(
                    [
                        tr(f"queue.by.{by}"),
                        q.center.name,
                        r.key,
                        r.label,
                        r.arrivals,
                        r.called,
                        r.served,
                        r.no_shows,
                        r.left,
                        r.transfers,
                        r.recalls,
                        _minutes(r.wait_avg_s),
                        _minutes(r.wait_max_s if r.wait_n else None),
                        _minutes(q.target_s),
                        _round(100.0 * r.over_target_share if r.over_target_share is not None else None),
                        _minutes(r.service_avg_s),
                        _minutes(r.service_max_s if r.service_n else None),
                    ]
                )
    columns = [
        "report.col.group",
        "report.col.center",
        "report.col.code",
        "report.col.name",
        "queue.stats.arrivals",
        "queue.stats.called",
        "queue.stats.served",
        "queue.stats.no_shows",
        "queue.stats.left",
        "queue.stats.transfers",
        "queue.stats.recalls",
        "queue.stats.wait_avg",
        "queue.stats.wait_max",
        "report.col.target_wait",
        "queue.stats.over_target",
        "queue.stats.service_avg",
        "queue.stats.service_max",
    ]
    return Sheet("queue", columns, rows, {14: "percent"})


def _service(services: dict[tuple[str, str], str], center_id: str, code: str) -> str:
    return services.get((center_id, code), code)


def _tickets_by_day(
    tickets: Sequence[TicketCount], names: dict[str, str], services: dict[tuple[str, str], str]
) -> Sheet:
    rows: list[list[Cell]] = [
        [
            t.bucket,
            names.get(t.center_id, t.center_id),
            t.service,
            _service(services, t.center_id, t.service),
            t.issued,
            t.voided,
        ]
        for t in tickets
    ]
    columns = [
        "report.col.day",
        "report.col.center",
        "report.col.service",
        "report.col.service_name",
        "report.col.issued",
        "report.col.voided",
    ]
    return Sheet("tickets_day", columns, rows)


def _tickets_by_hour(
    tickets: Sequence[TicketCount], names: dict[str, str], services: dict[tuple[str, str], str]
) -> Sheet:
    ordered = sorted(tickets, key=lambda t: (t.center_id, t.bucket, t.service))
    rows: list[list[Cell]] = [
        [
            f"{t.bucket}:00",
            names.get(t.center_id, t.center_id),
            t.service,
            _service(services, t.center_id, t.service),
            t.issued,
            t.voided,
        ]
        for t in ordered
    ]
    columns = [
        "report.col.hour",
        "report.col.center",
        "report.col.service",
        "report.col.service_name",
        "report.col.issued",
        "report.col.voided",
    ]
    return Sheet("tickets_hour", columns, rows)


def _outcomes(
    tr: Translator, lookups: Sequence[OutcomeCount], cards: Sequence[OutcomeCount], names: dict[str, str]
) -> Sheet:
    rows: list[list[Cell]] = []
    said: tuple[tuple[str, Sequence[OutcomeCount], Callable[[Translator, str], str]], ...] = (
        ("lookup", lookups, lookup_outcome),
        ("card_read", cards, card_result),
    )
    for what, items, words in said:
        for o in items:
            rows.append(
                [
                    tr(f"report.what.{what}"),
                    names.get(o.center_id, o.center_id),
                    words(tr, o.outcome),
                    o.count,
                    _round(o.mean_ms),
                    _round(o.max_ms),
                ]
            )
    columns = [
        "report.col.what",
        "report.col.center",
        "report.col.outcome",
        "report.col.count",
        "report.col.mean_ms",
        "report.col.max_ms",
    ]
    return Sheet("outcomes", columns, rows)


def level_rows(levels: Sequence[RatingCount]) -> list[tuple[str, RatingGroup]]:
    """Ratings per (scale, level): the label is the kiosk's level word when there is one."""
    labels: dict[tuple[int, int], str] = {}
    for r in levels:
        if r.key != "phone":
            labels.setdefault((r.scale, r.level), r.key)
    keyed = [RatingCount(r.center_id, f"{r.level}/{r.scale}", r.scale, r.level, r.count) for r in levels]
    groups = sorted(
        rating_groups(keyed), key=lambda g: (g.key.split("/")[1], g.key.split("/")[0]), reverse=True
    )
    out = []
    for g in groups:
        level, scale = (int(x) for x in g.key.split("/"))
        out.append((labels.get((scale, level), ""), g))
    return out


def _ratings(
    tr: Translator,
    levels: Sequence[RatingCount],
    groups: dict[str, list[RatingGroup]],
    officers: dict[str, str],
) -> Sheet:
    rows: list[list[Cell]] = []
    for word, g in level_rows(levels):
        label = f"{g.key} {tr.optional('usage.level_word.' + word, word)}".strip()
        rows.append([tr("report.group.level"), label, *_rating_cells(g)])
    labels: dict[str, Callable[[str], str]] = {
        "reason": lambda key: reason_label(key, tr.language),
        "counter": lambda key: tr("usage.counter_name", counter=key),
        "officer": lambda key: officers.get(key, key),
    }
    for by, items in groups.items():
        for g in items:
            rows.append([tr(f"report.group.{by}"), labels[by](g.key), *_rating_cells(g)])
    columns = [
        "report.col.group",
        "report.col.value",
        "report.col.count",
        "report.col.satisfied",
        "report.col.satisfied_percent",
        "report.col.mean_score",
    ]
    return Sheet("ratings", columns, rows, {4: "percent"})


def _rating_cells(g: RatingGroup) -> list[Cell]:
    return [g.count, g.satisfied, _round(g.satisfied_percent), _round(g.mean_score)]


def _availability(
    tr: Translator, spans: Sequence[KioskSpan], downs: Sequence[Downtime], names: dict[str, str]
) -> Sheet:
    by_kiosk: dict[str, dict[str, Downtime]] = {}
    for down_row in downs:
        by_kiosk.setdefault(down_row.kiosk_id, {})[down_row.type] = down_row
    rows: list[list[Cell]] = []
    for s in spans:
        mine = by_kiosk.get(s.kiosk_id, {})
        for type in AVAILABILITY_TYPES:
            d = mine.get(type)
            if d is None and type != "offline":
                continue  # a part that never failed: one row per kiosk (its connection) is enough
            down = d.down_s if d else 0.0
            rows.append(
                [
                    names.get(s.center_id, s.center_id),
                    s.kiosk_id,
                    s.label,
                    tr(f"report.part.{type}"),
                    d.alarms if d else 0,
                    _hms(down),
                    round(down / 3600.0, 3),
                    _round(availability_percent(s.span_s, down), 2),
                ]
            )
    columns = [
        "report.col.center",
        "report.col.kiosk",
        "report.col.label",
        "report.col.part",
        "report.col.outages",
        "report.col.downtime",
        "report.col.downtime_h",
        "report.col.availability",
    ]
    return Sheet("availability", columns, rows, {7: "percent"})


def _alarms(
    tr: Translator, alarm_list: Sequence[Alarm], names: dict[str, str], zone: tzinfo, now: datetime
) -> Sheet:
    def local(when: datetime | None) -> datetime | None:
        return None if when is None else when.astimezone(zone).replace(tzinfo=None)

    rows: list[list[Cell]] = [
        [
            local(a.started_at),
            local(a.ended_at),
            duration(a.started_at, a.ended_at or now),
            names.get(a.center_id, a.center_id),
            a.kiosk_id or "",
            tr.optional(f"alarm_type.{a.type}", a.type),
            tr.optional(f"device.{a.device}", a.device) if a.device else "",
            tr(f"severity.{a.severity}"),
            tr("report.alarm_active") if a.active else tr("report.alarm_cleared"),
            a.acknowledged_by_name or "",
            local(a.acknowledged_at),
            a.reminders,
        ]
        for a in alarm_list
    ]
    columns = [
        "report.col.started",
        "report.col.ended",
        "report.col.duration",
        "report.col.center",
        "report.col.kiosk",
        "report.col.alarm_type",
        "report.col.device",
        "report.col.severity",
        "report.col.state",
        "report.col.acknowledged_by",
        "report.col.acknowledged_at",
        "report.col.reminders",
    ]
    return Sheet("alarms", columns, rows)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _hms(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
