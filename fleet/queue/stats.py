"""Statistics of the queue from its steps: arrivals, calls, served, no-shows, left, transfers, recalls,
waiting (average, maximum, share over the center's target) and service time, grouped per service,
counter, officer, hour or day (center time). Ratings per officer as aggregates only.

Waiting = first call - entry into the service's queue (the issue, or the transfer into it), recorded
on the ``called`` step; an appointment's from its booked time when the citizen came early (its
``issued`` and ``called`` steps carry ``appointment_at``, so appointments count apart from walk-ins);
service time = done or transfer - the call (or "serving", when pressed),
recorded on the ``done``/``transferred`` step. So a period's numbers are sums over its steps, and a
report of a month reads one indexed range of ``queue_steps``. A province's store holds the steps the
bridge brought (``fleet.queue.province``) in the same table: its page and reports run this same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import select

from fleet.queue.engine import Queue
from fleet.queue.models import RatingSummary, StatRow
from fleet.store.queue_tables import queue_ratings, queue_settings, queue_steps
from fleet.store.schema import users


def day_range(day_from: str, day_to: str, zone: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(date.fromisoformat(day_from), time(0), zone)
    end = datetime.combine(date.fromisoformat(day_to) + timedelta(days=1), time(0), zone)
    return start, end


@dataclass
class _Acc:
    arrivals: int = 0
    called: int = 0
    served: int = 0
    no_shows: int = 0
    left: int = 0
    transfers: int = 0
    recalls: int = 0
    wait_n: int = 0
    wait_sum_s: float = 0.0
    wait_max_s: float = 0.0
    wait_over_target: int = 0
    service_n: int = 0
    service_sum_s: float = 0.0
    service_max_s: float = 0.0
    appointments: int = 0
    appointments_late: int = 0
    appt_wait_n: int = 0
    appt_wait_sum_s: float = 0.0
    appt_wait_max_s: float = 0.0

    def add(self, kind: str, detail: dict[str, Any], target_s: float) -> None:
        """One ticket step's share of the figures."""
        if kind == "issued":
            self.arrivals += 1
            self.appointments += "appointment_at" in detail
            self.appointments_late += "appointment_late" in detail
        elif kind == "called":
            self.called += 1
            waited = detail.get("waited_s")
            if waited is not None:
                waited = float(waited)
                self.wait_n += 1
                self.wait_sum_s += waited
                self.wait_max_s = max(self.wait_max_s, waited)
                self.wait_over_target += waited > target_s
                if "appointment_at" in detail:  # timed from the booked time when the citizen came early
                    self.appt_wait_n += 1
                    self.appt_wait_sum_s += waited
                    self.appt_wait_max_s = max(self.appt_wait_max_s, waited)
        elif kind == "recalled":
            self.recalls += 1
        elif kind in ("done", "transferred"):
            if kind == "done":
                self.served += 1
            else:
                self.transfers += 1
            served = detail.get("served_s")
            if served is not None:
                served = float(served)
                self.service_n += 1
                self.service_sum_s += served
                self.service_max_s = max(self.service_max_s, served)
        elif kind == "no_show":
            self.no_shows += 1
        elif kind == "left":
            self.left += 1


def _officers(queue: Queue, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with queue.db.read() as conn:
        rows = conn.execute(
            select(users.c.id, users.c.username, users.c.display_name).where(users.c.id.in_(wanted))
        )
        return {r.id: r.display_name or r.username for r in rows}


#: the groupings of the statistics (page, exports, reports)
GROUPS = ("service", "counter", "officer", "hour", "day")
#: the target wait of a center whose queue settings this store does not hold (the table's default)
DEFAULT_TARGET_WAIT_MIN = 30


def target_wait_s(queue: Queue, center_id: str) -> float:
    """The center's target wait in seconds, read without creating its settings (a report, or a
    province that only holds bridged steps of the center, must not write on read)."""
    with queue.db.read() as conn:
        minutes = conn.execute(
            select(queue_settings.c.target_wait_min).where(queue_settings.c.center_id == center_id)
        ).scalar_one_or_none()
    return 60.0 * (DEFAULT_TARGET_WAIT_MIN if minutes is None else int(minutes))


def _officer_names(queue: Queue, usernames: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    with queue.db.read() as conn:
        rows = conn.execute(
            select(users.c.username, users.c.display_name).where(users.c.username.in_(wanted))
        )
        return {r.username: r.display_name or r.username for r in rows}


def compute(
    queue: Queue,
    center_id: str,
    day_from: str,
    day_to: str,
    by: str,
    target_s: float,
    *,
    lang: str,
    zone: tzinfo,
) -> list[StatRow]:
    return compute_groups(queue, center_id, day_from, day_to, (by,), target_s, lang=lang, zone=zone)[by]


def compute_groups(
    queue: Queue,
    center_id: str,
    day_from: str,
    day_to: str,
    groupings: Sequence[str],
    target_s: float,
    *,
    lang: str,
    zone: tzinfo,
) -> dict[str, list[StatRow]]:
    """The statistics of one center's days under several groupings from one read of its steps (a
    report asks for all five; the page for one)."""
    start, end = day_range(day_from, day_to, zone)
    with queue.db.read() as conn:
        rows = conn.execute(
            select(
                queue_steps.c.kind,
                queue_steps.c.at,
                queue_steps.c.service,
                queue_steps.c.counter,
                queue_steps.c.officer,
                queue_steps.c.day,
                queue_steps.c.detail,
            )
            .where(queue_steps.c.center_id == center_id, queue_steps.c.at >= start, queue_steps.c.at < end)
            # by time, the order of (center_id, at) (migration 0013): a range of the center's steps,
            # never all of them (by id, the planner could walk the center's history for its order);
            # the figures are sums and maxima, the same in any order
            .order_by(queue_steps.c.at)
        ).all()
    groups: dict[str, dict[Any, _Acc]] = {by: {} for by in groupings}
    for row in rows:  # one pass: a row's local time and its kind's figures once, added to each grouping
        kind = row.kind
        if kind.startswith("counter_") or kind == "rated":
            continue
        local = row.at.astimezone(zone)
        keys = {
            "service": row.service,
            "counter": row.counter,
            # the username, as published: a center's own steps and the same steps bridged to the
            # province (fleet.queue.province, no account there) group alike, under the same key
            "officer": row.officer,
            "hour": local.hour,
            "day": local.date().isoformat(),
        }
        detail = row.detail or {}
        for by, accs in groups.items():
            key = keys.get(by, keys["day"])
            if key is None or (kind == "issued" and by in ("counter", "officer")):
                continue  # an arrival has no counter yet
            acc = accs.get(key)
            if acc is None:
                acc = accs[key] = _Acc()
            acc.add(kind, detail, target_s)
    return {by: _rows(queue, center_id, by, accs, lang) for by, accs in groups.items()}


def _rows(queue: Queue, center_id: str, by: str, groups: dict[Any, _Acc], lang: str) -> list[StatRow]:
    labels = _labels(queue, center_id, by, groups, lang)
    order = sorted(groups, key=lambda k: (str(type(k)), k))
    return [
        StatRow(str(k), labels.get(k, str(k)), **{f.name: getattr(groups[k], f.name) for f in fields(_Acc)})
        for k in order
    ]


def _labels(queue: Queue, center_id: str, by: str, groups: dict[Any, _Acc], lang: str) -> dict[Any, str]:
    if by == "service":
        return {s.code: s.name(lang) for s in queue.services(center_id)}
    if by == "counter":
        named = {c.code: c.name for c in queue.counters(center_id)}
        return {k: named.get(k) or (f"Counter {k}" if lang == "en" else f"Quầy {k}") for k in groups}
    if by == "officer":  # the account's display name where this store has it, else the username
        return _officer_names(queue, groups)
    if by == "hour":
        return {h: f"{h:02d}:00–{(h + 1) % 24:02d}:00" for h in groups}
    return {}


def ratings(queue: Queue, center_id: str, day_from: str, day_to: str, *, zone: tzinfo) -> list[RatingSummary]:
    """Per officer: how many ratings, the average (0-100), the share satisfied, by channel."""
    start, end = day_range(day_from, day_to, zone)
    with queue.db.read() as conn:
        rows = conn.execute(
            select(
                queue_ratings.c.user_id, queue_ratings.c.level, queue_ratings.c.scale, queue_ratings.c.via
            ).where(
                queue_ratings.c.center_id == center_id, queue_ratings.c.at >= start, queue_ratings.c.at < end
            )
        ).all()
    per: dict[Any, list[Any]] = {}
    for row in rows:
        per.setdefault(row.user_id, []).append(row)
    names = _officers(queue, [k for k in per if k is not None])
    out = []
    for key, items in sorted(per.items(), key=lambda kv: names.get(kv[0], "~")):
        scores = [(r.level - 1) / (r.scale - 1) for r in items]
        satisfied = sum(1 for r in items if r.level > (r.scale + 1) / 2)
        by_via: dict[str, int] = {}
        for r in items:
            by_via[r.via] = by_via.get(r.via, 0) + 1
        out.append(
            RatingSummary(
                str(key),
                names.get(key, "—"),
                len(items),
                round(100 * sum(scores) / len(scores), 1),
                satisfied / len(items),
                by_via,
            )
        )
    return out
