"""The center's queue: one source of truth in the fleet's store for tickets, calls and counters.

Every change is one write transaction that updates the ticket (or the counter's session) and appends a
``queue_steps`` row: the history, the change log the pages follow, and the outbox of ``queue-event/1``.
Writes of one center are ordered: SQLite's ``BEGIN IMMEDIATE`` takes the database's write lock; on
PostgreSQL every write first locks the center's ``queue_settings`` row (``SELECT ... FOR UPDATE``).
So two counters calling at once run one after the other, and the second sees the first's call: a
ticket can never be called twice, and the per-center ``seq`` of the contract has no gap.

Nothing lives in one process's memory: a restart of ``fleet serve`` (or a second web process) reads
the same queue. Times are the store's clock (aware UTC); the center's day is Vietnam's calendar day.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from common.errors import NotFoundError, PermissionDeniedError, ValidationError
from contract.queue import QUEUE_EVENT_KINDS, expected_wait_min, phone_token
from contract.tickets import center_day, center_zone
from fleet.queue.models import (
    Board,
    Counter,
    CounterSession,
    CounterState,
    Pace,
    Position,
    Printed,
    QueueError,
    QueueSettings,
    Service,
    Step,
    Ticket,
)
from fleet.store import Scope, Store
from fleet.store.accounts import user_from
from fleet.store.models import User
from fleet.store.queue_tables import (
    queue_counters,
    queue_displays,
    queue_ratings,
    queue_services,
    queue_sessions,
    queue_settings,
    queue_steps,
    queue_tickets,
)
from fleet.store.recordsets import BIGINT, BOOLEAN, JSONB_VALUE, TEXT, TIMESTAMPTZ, recordset, rows_json
from fleet.store.schema import centers, users

log = logging.getLogger(__name__)

#: fewer finished services than this in the window: the pace is unknown (said so, never guessed)
MIN_HISTORY = 3
#: the pace is the mean of this many latest services of the service...
PACE_SAMPLES = 20
#: ...within this window
PACE_WINDOW = timedelta(days=7)
CALL_KINDS = ("called", "recalled")
Listener = Callable[[str], None]


def _ticket(row: Any) -> Ticket:
    m = row._mapping
    return Ticket(
        m["id"],
        m["center_id"],
        m["day"],
        m["number"],
        m["service"],
        m["first_service"],
        bool(m["priority"]),
        m["source"],
        m["kiosk_id"],
        m["token"],
        m["issued_at"],
        m["queued_at"],
        m["state"],
        m["target_counter"],
        m["assigned_counter"],
        m["counter"],
        m["user_id"],
        int(m["calls"]),
        m["called_at"],
        m["serving_at"],
        m["finished_at"],
        m["appointment_at"],
    )


def _step(row: Any) -> Step:
    m = row._mapping
    return Step(
        m["id"],
        m["seq"],
        m["event_id"],
        m["center_id"],
        m["at"],
        m["kind"],
        m["ticket_id"],
        m["day"],
        m["number"],
        m["service"],
        m["counter"],
        m["user_id"],
        m["officer"],
        dict(m["detail"] or {}),
    )


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else round(max(0.0, (later - earlier).total_seconds()), 3)


def _waiting_per_service(conn: Connection, center_id: str, day: str) -> dict[str, int]:
    """How many tickets of the center's ``day`` wait, per service (the board's and the paces' count)."""
    rows = conn.execute(
        select(queue_tickets.c.service, func.count())
        .where(
            queue_tickets.c.center_id == center_id,
            queue_tickets.c.day == day,
            queue_tickets.c.state == "waiting",
        )
        .group_by(queue_tickets.c.service)
    ).all()
    return {service: int(n) for service, n in rows}


def _step_values(
    center_id: str,
    seq: int,
    kind: str,
    at: datetime,
    *,
    ticket: Ticket | None = None,
    service: str | None = None,
    counter: str | None = None,
    user: User | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``queue_steps`` row: the center's ``seq`` (the contract's, without gaps) and what happened."""
    assert kind in QUEUE_EVENT_KINDS, kind
    return {
        "center_id": center_id,
        "seq": seq,
        "event_id": uuid.uuid4().hex,
        "at": at,
        "kind": kind,
        "ticket_id": ticket.id if ticket else None,
        "day": ticket.day if ticket else None,
        "number": ticket.number if ticket else None,
        "service": service or (ticket.service if ticket else None),
        "counter": counter,
        "user_id": user.id if user else None,
        "officer": user.username if user else None,
        "detail": detail or {},
    }


class Queue:
    """The queue engine over the fleet's store. ``listeners`` are told the center id after each commit
    (the web wakes its live streams at once; other processes see the change by polling the steps)."""

    def __init__(self, store: Store, timezone: str = "Asia/Ho_Chi_Minh") -> None:
        self.store = store
        self.db = store.db
        self.zone: tzinfo = center_zone(timezone)
        self.listeners: list[Listener] = []

    # -- plumbing --------------------------------------------------------------------------------------

    def today(self, now: datetime | None = None) -> str:
        return center_day(now or self.db.now(), self.zone)

    def _ensure_settings(self, conn: Connection, center_id: str) -> None:
        row = self.db.insert(queue_settings).values(
            center_id=center_id, phone_key=secrets.token_hex(32), updated_at=self.db.now()
        )
        conn.execute(row.on_conflict_do_nothing(index_elements=[queue_settings.c.center_id]))

    @contextmanager
    def _write(self, center_id: str) -> Iterator[Connection]:
        """One write of the center's queue, ordered with every other (see the module doc)."""
        with self._write_centers([center_id]) as (conn, _settings):
            yield conn

    @contextmanager
    def _write_centers(
        self, center_ids: Sequence[str]
    ) -> Iterator[tuple[Connection, dict[str, dict[str, Any]]]]:
        """One write of several centers' queues (the ingest's batch), with their settings as read
        under the lock. The centers' rows are locked in id order, by one statement: two writers that
        both want some of them (two workers' batches, a counter's call) never wait on each other in
        opposite orders."""
        ordered = sorted(set(center_ids))
        try:
            with self.db.write() as conn:
                settings = self._lock_centers(conn, ordered)
                # made first only the once it is missing (an INSERT ... ON CONFLICT on every write was
                # a statement per ticket for nothing)
                missing = [c for c in ordered if c not in settings]
                for center_id in missing:
                    self._ensure_settings(conn, center_id)
                if missing:
                    settings.update(self._lock_centers(conn, missing))
                yield conn, settings
        except IntegrityError as exc:
            if "centers" in str(exc.orig) or "foreign key" in str(exc.orig).lower():
                named = ", ".join(repr(c) for c in ordered)
                raise NotFoundError(f"center {named} is not in the registry") from exc
            raise
        for center_id in ordered:
            for listener in list(self.listeners):
                try:
                    listener(center_id)
                except Exception:  # a broken listener must not undo a committed step
                    log.exception("queue listener failed")

    def _lock_centers(self, conn: Connection, ordered: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The centers' settings rows, locked (PostgreSQL; SQLite's write lock covers all) in order."""
        lock = (
            select(queue_settings)
            .where(queue_settings.c.center_id.in_(ordered))
            .order_by(queue_settings.c.center_id)
        )
        if self.db.is_postgres:
            lock = lock.with_for_update()
        return {row.center_id: dict(row._mapping) for row in conn.execute(lock)}

    def _add_step(
        self,
        conn: Connection,
        center_id: str,
        kind: str,
        at: datetime,
        *,
        ticket: Ticket | None = None,
        service: str | None = None,
        counter: str | None = None,
        user: User | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        seq = int(
            conn.execute(
                update(queue_settings)
                .where(queue_settings.c.center_id == center_id)
                .values(last_seq=queue_settings.c.last_seq + 1)
                .returning(queue_settings.c.last_seq)
            ).scalar_one()
        )
        values = _step_values(
            center_id, seq, kind, at,
            ticket=ticket, service=service, counter=counter, user=user, detail=detail,
        )
        return int(
            conn.execute(insert(queue_steps).values(**values).returning(queue_steps.c.id)).scalar_one()
        )

    def _load_ticket(self, conn: Connection, ticket_id: int) -> Ticket:
        row = conn.execute(select(queue_tickets).where(queue_tickets.c.id == ticket_id)).first()
        if row is None:
            raise NotFoundError(f"ticket {ticket_id} not found")
        return _ticket(row)

    def _set_ticket(self, conn: Connection, ticket: Ticket, **values: Any) -> Ticket:
        values["updated_at"] = self.db.now()
        conn.execute(update(queue_tickets).where(queue_tickets.c.id == ticket.id).values(**values))
        return self._load_ticket(conn, ticket.id)

    # -- configuration ---------------------------------------------------------------------------------

    def settings(self, center_id: str) -> QueueSettings:
        with self.db.read() as conn:
            row = conn.execute(select(queue_settings).where(queue_settings.c.center_id == center_id)).first()
        if row is None:
            with self._write(center_id) as conn:
                row = conn.execute(
                    select(queue_settings).where(queue_settings.c.center_id == center_id)
                ).first()
        assert row is not None
        m = row._mapping
        return QueueSettings(
            center_id,
            m["priority_mode"],
            int(m["priority_every"]),
            m["pulling"],
            int(m["max_recalls"]),
            int(m["target_wait_min"]),
            int(m["recent_calls"]),
            m["notice_vi"],
            m["notice_en"],
            bytes.fromhex(m["phone_key"]),
            m["appointment_early"],
            int(m["appointment_ahead_min"]),
            int(m["appointment_late_min"]),
        )

    def update_settings(self, center_id: str, **changes: Any) -> QueueSettings:
        allowed = {
            "priority_mode": ("first", "interleave"),
            "pulling": ("shared", "strict"),
            "appointment_early": ("wait", "hold"),
        }
        ranges = {
            "priority_every": (1, 20),
            "max_recalls": (0, 10),
            "target_wait_min": (1, 600),
            "recent_calls": (1, 20),
            "appointment_ahead_min": (0, 60),
            "appointment_late_min": (0, 240),
        }
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name in allowed:
                if value not in allowed[name]:
                    raise ValidationError(f"{name}: one of {allowed[name]}")
            elif name in ranges:
                low, high = ranges[name]
                if not isinstance(value, int) or not low <= value <= high:
                    raise ValidationError(f"{name}: a whole number from {low} to {high}")
            elif name in ("notice_vi", "notice_en"):
                if not isinstance(value, str) or len(value) > 300:
                    raise ValidationError(f"{name}: at most 300 characters")
                value = " ".join(value.split())
            else:
                raise ValidationError(f"unknown queue setting {name!r}")
            values[name] = value
        with self._write(center_id) as conn:
            conn.execute(
                update(queue_settings)
                .where(queue_settings.c.center_id == center_id)
                .values(**values, updated_at=self.db.now())
            )
        return self.settings(center_id)

    def set_service(
        self, center_id: str, code: str, prefix: str, name_vi: str, name_en: str = "", position: int = 0
    ) -> Service:
        service = Service(code, prefix, name_vi, name_en or name_vi, position)
        with self._write(center_id) as conn:
            upsert = self.db.insert(queue_services).values(center_id=center_id, **service.__dict__)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[queue_services.c.center_id, queue_services.c.code],
                    set_={
                        "prefix": prefix,
                        "name_vi": name_vi,
                        "name_en": service.name_en,
                        "position": position,
                    },
                )
            )
        return service

    def set_counter(
        self, center_id: str, code: str, name: str, services: Sequence[str], position: int = 0
    ) -> Counter:
        counter = Counter(code, name, tuple(services), position)
        with self._write(center_id) as conn:
            upsert = self.db.insert(queue_counters).values(
                center_id=center_id, code=code, name=name, services=list(services), position=position
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[queue_counters.c.center_id, queue_counters.c.code],
                    set_={"name": name, "services": list(services), "position": position},
                )
            )
        return counter

    def services(self, center_id: str) -> list[Service]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_services)
                .where(queue_services.c.center_id == center_id)
                .order_by(queue_services.c.position, queue_services.c.code)
            )
            return [Service(r.code, r.prefix, r.name_vi, r.name_en, r.position) for r in rows]

    def counters(self, center_id: str) -> list[Counter]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_counters)
                .where(queue_counters.c.center_id == center_id)
                .order_by(queue_counters.c.position, queue_counters.c.code)
            )
            return [Counter(r.code, r.name, tuple(r.services or ()), r.position) for r in rows]

    # -- tickets come in (the ingest's hook; docs/queue.md) ------------------------------------------

    def issue(
        self,
        center_id: str,
        *,
        number: str,
        service: str,
        priority: bool = False,
        day: str | None = None,
        issued_at: datetime | None = None,
        kiosk_id: str | None = None,
        source: str | None = None,
        appointment_at: datetime | None = None,
    ) -> tuple[Ticket, bool]:
        """A printed ticket enters the queue: (ticket, new). Idempotent on (center, day, number): a
        duplicate event, or the same offline number reported twice, changes nothing.

        ``appointment_at`` (aware): the booked time of an appointment this ticket checks in. Printed
        later than that + the center's ``appointment_late_min``, it enters as a walk-in (the issued
        step keeps ``appointment_late`` for the statistics)."""
        printed = Printed(number, service, priority, day, issued_at, kiosk_id, source, appointment_at)
        return self.issue_many(center_id, [printed])[0]

    def issue_many(self, center_id: str, printed: Sequence[Printed]) -> list[tuple[Ticket, bool]]:
        """Printed tickets of one center enter the queue in order, in one write (``issue_centers``)."""
        return self.issue_centers({center_id: printed})[center_id]

    def issue_centers(self, printed: Mapping[str, Sequence[Printed]]) -> dict[str, list[tuple[Ticket, bool]]]:
        """Printed tickets of several centers (an ingest batch's) enter their queues, each center's in
        order, in **one** write: what ``issue`` does for each ticket, with a fixed number of statements
        for the whole write (the centers locked and their settings read by one; the tickets and
        services they name read by one each; the new tickets, their ``issued`` steps and the centers'
        step counters written by one each), where a write per center cost ~8 round trips per center.
        An error undoes them all (the caller may then issue them center by center, or one by one)."""
        wanted = {center_id: list(tickets) for center_id, tickets in printed.items() if tickets}
        done: dict[str, list[tuple[Ticket, bool]]] = {center_id: [] for center_id in printed}
        if not wanted:
            return done
        now = self.db.now()
        with self._write_centers(list(wanted)) as (conn, settings):
            plan = _IssuePlan(self, conn, settings, now)
            every = [(center_id, one) for center_id, tickets in wanted.items() for one in tickets]
            plan.named([(center_id, *plan.day_of(one)) for center_id, one in every])
            plan.known_services({(center_id, one.service) for center_id, one in every})
            keys = {center: [plan.add(center, one) for one in ones] for center, ones in wanted.items()}
            plan.write()
            for center_id, center_keys in keys.items():
                done[center_id] = [(plan.tickets[key], new) for key, new in center_keys]
        return done

    def settings_in(self, conn: Connection, center_id: str) -> dict[str, Any]:
        row = conn.execute(select(queue_settings).where(queue_settings.c.center_id == center_id)).first()
        assert row is not None
        return dict(row._mapping)

    def _open_sessions(self, conn: Connection, center_id: str) -> list[Any]:
        return list(
            conn.execute(
                select(queue_sessions).where(
                    queue_sessions.c.center_id == center_id,
                    queue_sessions.c.state == "open",
                    # implied by the one above, but said so that the partial index of the sessions
                    # not closed serves (SQLite does not infer it) instead of a scan of every session
                    queue_sessions.c.state != "closed",
                )
            )
        )

    # -- officers at counters --------------------------------------------------------------------------

    def _center_of(self, user: User) -> str:
        if user.center_id is None:
            raise PermissionDeniedError("the counter app is for a center's officers")
        return user.center_id

    def _session_row(self, conn: Connection, user: User) -> Any:
        return conn.execute(
            select(queue_sessions).where(
                queue_sessions.c.user_id == user.id, queue_sessions.c.state != "closed"
            )
        ).first()

    def _session(self, conn: Connection, row: Any, user: User | None = None) -> CounterSession:
        m = row._mapping
        ticket = self._load_ticket(conn, m["ticket_id"]) if m["ticket_id"] is not None else None
        if user is None or user.id != m["user_id"]:
            person = conn.execute(
                select(users.c.username, users.c.display_name).where(users.c.id == m["user_id"])
            ).one()
            username, display = person.username, person.display_name
        else:
            username, display = user.username, user.display_name
        return CounterSession(
            m["id"],
            m["center_id"],
            m["counter"],
            m["user_id"],
            username,
            display,
            tuple(m["services"] or ()),
            m["state"],
            m["opened_at"],
            m["break_since"],
            ticket,
            int(m["since_priority"]),
        )

    def session_of(self, user: User) -> CounterSession | None:
        with self.db.read() as conn:
            row = self._session_row(conn, user)
            return self._session(conn, row, user) if row is not None else None

    def sessions(self, center_id: str) -> list[CounterSession]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_sessions)
                .where(queue_sessions.c.center_id == center_id, queue_sessions.c.state != "closed")
                .order_by(queue_sessions.c.counter)
            )
            return [self._session(conn, r) for r in rows.all()]

    def open_session(self, user: User, counter: str, services: Sequence[str]) -> CounterSession:
        center_id = self._center_of(user)
        known_counters = {c.code: c for c in self.counters(center_id)}
        if counter not in known_counters:
            raise ValidationError(f"counter {counter!r} is not one of the center's counters")
        known_services = {s.code for s in self.services(center_id)}
        chosen = [s for s in dict.fromkeys(services) if s in known_services]
        if not chosen:
            raise QueueError("queue.error.no_services", "pick at least one service area")
        now = self.db.now()
        with self._write(center_id) as conn:
            if self._session_row(conn, user) is not None:
                raise QueueError("queue.error.already_open", f"{user.username} is at a counter already")
            taken = conn.execute(
                select(queue_sessions.c.user_id).where(
                    queue_sessions.c.center_id == center_id,
                    queue_sessions.c.counter == counter,
                    queue_sessions.c.state != "closed",
                )
            ).first()
            if taken is not None:
                raise QueueError("queue.error.counter_taken", f"counter {counter} has an officer already")
            conn.execute(
                insert(queue_sessions).values(
                    center_id=center_id,
                    counter=counter,
                    user_id=user.id,
                    services=chosen,
                    state="open",
                    opened_at=now,
                )
            )
            self._add_step(
                conn,
                center_id,
                "counter_opened",
                now,
                counter=counter,
                user=user,
                detail={"services": chosen},
            )
            return self._session(conn, self._session_row(conn, user), user)

    def _current(self, conn: Connection, user: User) -> tuple[Any, CounterSession]:
        row = self._session_row(conn, user)
        if row is None:
            raise QueueError("queue.error.no_session", f"{user.username} is not at a counter")
        return row, self._session(conn, row, user)

    def _finish(self, conn: Connection, session: CounterSession, user: User, now: datetime) -> None:
        """Done with the ticket at the counter (what "next" does to the one before)."""
        ticket = session.ticket
        if ticket is None:
            return
        served = _seconds(now, ticket.serving_at or ticket.called_at)
        ticket = self._set_ticket(conn, ticket, state="done", finished_at=now)
        conn.execute(update(queue_sessions).where(queue_sessions.c.id == session.id).values(ticket_id=None))
        self._add_step(
            conn,
            session.center_id,
            "done",
            now,
            ticket=ticket,
            counter=session.counter,
            user=user,
            detail={"served_s": served},
        )

    def _callable(self, session: CounterSession, day: str) -> list[Any]:
        """Waiting tickets this counter may call: its services (or sent to it), not dealt elsewhere."""
        t = queue_tickets.c
        return [
            t.center_id == session.center_id,
            t.day == day,
            t.state == "waiting",
            # a ticket transferred to this very counter may be of a service it does not call
            or_(t.service.in_(session.services), t.target_counter == session.counter),
            or_(t.target_counter.is_(None), t.target_counter == session.counter),
            or_(t.assigned_counter.is_(None), t.assigned_counter == session.counter),
        ]

    @staticmethod
    def _due_from(settings: dict[str, Any], now: datetime) -> datetime:
        """A booked ticket whose time is at or before this is due."""
        return now + timedelta(minutes=int(settings["appointment_ahead_min"]))

    def _candidates(
        self,
        conn: Connection,
        session: CounterSession,
        day: str,
        kind: str,
        settings: dict[str, Any],
        now: datetime,
        *,
        limit: int = 1,
        lock: bool = True,
    ) -> list[Ticket]:
        """``kind``: ``due`` (booked tickets whose time has come, earliest booked time first),
        ``priority`` or ``ordinary`` (walk-ins by issue time; in ``hold`` mode without the booked
        tickets that are not due yet), ``held`` (those, by booked time: the end of the counter's list)."""
        t = queue_tickets.c
        conditions = self._callable(session, day)
        booked = and_(t.appointment_at.is_not(None), t.service == t.first_service)
        due_from = self._due_from(settings, now)
        order: list[Any] = [t.issued_at, t.id]
        if kind == "due":
            conditions += [booked, t.appointment_at <= due_from]
            order = [t.appointment_at, t.issued_at, t.id]
        elif kind == "held":
            conditions += [booked, t.appointment_at > due_from]
            order = [t.appointment_at, t.issued_at, t.id]
        else:
            conditions.append(t.priority.is_(kind == "priority"))
            if settings["appointment_early"] == "hold":
                conditions.append(or_(~booked, t.appointment_at <= due_from))
        query = select(queue_tickets).where(and_(*conditions)).order_by(*order).limit(limit)
        if lock and self.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        return [_ticket(r) for r in conn.execute(query)]

    def call_next(self, user: User) -> Ticket | None:
        """Finish the ticket at the counter (if any) and call the next one of the counter's services:
        a booked ticket whose time has come first (earliest booked time); then priority tickets first,
        or one in every ``priority_every`` calls (interleave); within a class the longest-waiting ticket
        across the counter's services. None when nobody waits."""
        center_id = self._center_of(user)
        now = self.db.now()
        day = self.today(now)
        with self._write(center_id) as conn:
            _row, session = self._current(conn, user)
            if session.state != "open":
                raise QueueError("queue.error.on_break", "the counter is on a break")
            self._finish(conn, session, user, now)
            settings = self.settings_in(conn, center_id)
            pick = self._candidates(conn, session, day, "due", settings, now)
            if not pick:
                urgent = self._candidates(conn, session, day, "priority", settings, now)
                ordinary = self._candidates(conn, session, day, "ordinary", settings, now)
                if settings["priority_mode"] == "first":
                    pick = urgent or ordinary
                else:
                    turn = session.since_priority >= max(1, int(settings["priority_every"])) - 1
                    pick = (urgent if turn else ordinary) or ordinary or urgent
            if not pick:
                return None
            ticket = pick[0]
            waited = _seconds(now, self._wait_start(ticket))
            ticket = self._set_ticket(
                conn,
                ticket,
                state="called",
                counter=session.counter,
                user_id=user.id,
                calls=1,
                called_at=now,
                serving_at=None,
            )
            conn.execute(
                update(queue_sessions)
                .where(queue_sessions.c.id == session.id)
                .values(
                    ticket_id=ticket.id, since_priority=0 if ticket.priority else session.since_priority + 1
                )
            )
            self._add_step(
                conn,
                center_id,
                "called",
                now,
                ticket=ticket,
                counter=session.counter,
                user=user,
                detail={
                    "calls": 1,
                    "waited_s": waited,
                    "priority": ticket.priority,
                    "issued_at": ticket.issued_at.isoformat(),
                    **({"appointment_at": ticket.appointment_at.isoformat()} if ticket.booked and
                       ticket.appointment_at else {}),
                },
            )
            return ticket

    @staticmethod
    def _wait_start(ticket: Ticket) -> datetime:
        """An appointment's wait runs from its booked time when the citizen came early, from the
        arrival otherwise; anyone else's from the entry into this service's queue."""
        if ticket.booked and ticket.appointment_at is not None:
            return max(ticket.queued_at, ticket.appointment_at)
        return ticket.queued_at

    def _at_counter(
        self, conn: Connection, user: User, states: tuple[str, ...]
    ) -> tuple[CounterSession, Ticket]:
        _, session = self._current(conn, user)
        ticket = session.ticket
        if ticket is None:
            raise QueueError("queue.error.no_ticket", "no ticket at the counter")
        if ticket.state not in states:
            raise QueueError("queue.error.wrong_state", f"ticket {ticket.number} is {ticket.state}")
        return session, ticket

    def recall(self, user: User) -> Ticket:
        center_id = self._center_of(user)
        now = self.db.now()
        with self._write(center_id) as conn:
            session, ticket = self._at_counter(conn, user, ("called",))
            ticket = self._set_ticket(conn, ticket, calls=ticket.calls + 1)
            self._add_step(
                conn,
                center_id,
                "recalled",
                now,
                ticket=ticket,
                counter=session.counter,
                user=user,
                detail={"calls": ticket.calls},
            )
            return ticket

    def no_show(self, user: User) -> Ticket:
        center_id = self._center_of(user)
        now = self.db.now()
        with self._write(center_id) as conn:
            session, ticket = self._at_counter(conn, user, ("called",))
            needed = int(self.settings_in(conn, center_id)["max_recalls"])
            if ticket.calls - 1 < needed:
                raise QueueError(
                    "queue.error.recall_first",
                    f"recall {needed - ticket.calls + 1} more time(s) before a no-show",
                )
            ticket = self._set_ticket(conn, ticket, state="no_show", finished_at=now)
            conn.execute(
                update(queue_sessions).where(queue_sessions.c.id == session.id).values(ticket_id=None)
            )
            self._add_step(
                conn,
                center_id,
                "no_show",
                now,
                ticket=ticket,
                counter=session.counter,
                user=user,
                detail={"calls": ticket.calls},
            )
            return ticket

    def start(self, user: User) -> Ticket:
        center_id = self._center_of(user)
        now = self.db.now()
        with self._write(center_id) as conn:
            session, ticket = self._at_counter(conn, user, ("called",))
            ticket = self._set_ticket(conn, ticket, state="serving", serving_at=now)
            self._add_step(conn, center_id, "serving", now, ticket=ticket, counter=session.counter, user=user)
            return ticket

    def done(self, user: User) -> Ticket:
        center_id = self._center_of(user)
        now = self.db.now()
        with self._write(center_id) as conn:
            session, ticket = self._at_counter(conn, user, ("called", "serving"))
            self._finish(conn, session, user, now)
            return self._load_ticket(conn, ticket.id)

    def transfer(self, user: User, *, to_service: str | None = None, to_counter: str | None = None) -> Ticket:
        """Send the ticket at the counter to another service's queue or to one counter; it keeps its
        issue time, so it is called before those who came after it."""
        center_id = self._center_of(user)
        if not to_service and not to_counter:
            raise QueueError("queue.error.transfer_where", "transfer to a service or a counter")
        if to_service and to_service not in {s.code for s in self.services(center_id)}:
            raise ValidationError(f"service {to_service!r} is not one of the center's")
        if to_counter and to_counter not in {c.code for c in self.counters(center_id)}:
            raise ValidationError(f"counter {to_counter!r} is not one of the center's")
        now = self.db.now()
        with self._write(center_id) as conn:
            session, ticket = self._at_counter(conn, user, ("called", "serving"))
            if to_counter == session.counter:
                raise QueueError("queue.error.transfer_self", "that is this counter")
            served = _seconds(now, ticket.serving_at or ticket.called_at)
            ticket = self._set_ticket(
                conn,
                ticket,
                state="waiting",
                service=to_service or ticket.service,
                target_counter=to_counter,
                assigned_counter=None,
                counter=None,
                user_id=None,
                calls=0,
                called_at=None,
                serving_at=None,
                queued_at=now,
            )
            conn.execute(
                update(queue_sessions).where(queue_sessions.c.id == session.id).values(ticket_id=None)
            )
            self._add_step(
                conn,
                center_id,
                "transferred",
                now,
                ticket=ticket,
                service=session.ticket.service if session.ticket else None,
                counter=session.counter,
                user=user,
                detail={"served_s": served, "to_service": to_service, "to_counter": to_counter},
            )
            return ticket

    def _release(self, conn: Connection, session: CounterSession, day: str) -> None:
        """Strict pulling: tickets dealt to a counter that stops go back to every counter of the service."""
        conn.execute(
            update(queue_tickets)
            .where(
                queue_tickets.c.center_id == session.center_id,
                queue_tickets.c.day == day,
                queue_tickets.c.state == "waiting",
                queue_tickets.c.assigned_counter == session.counter,
            )
            .values(assigned_counter=None)
        )

    def pause(self, user: User) -> CounterSession:
        return self._counter_state(user, "break")

    def resume(self, user: User) -> CounterSession:
        return self._counter_state(user, "open")

    def close(self, user: User) -> None:
        self._counter_state(user, "closed")

    def _counter_state(self, user: User, state: str) -> CounterSession:
        center_id = self._center_of(user)
        now = self.db.now()
        with self._write(center_id) as conn:
            row, session = self._current(conn, user)
            if session.ticket is not None:
                raise QueueError(
                    "queue.error.finish_first",
                    f"finish ticket {session.ticket.number} before leaving the counter",
                )
            if state == session.state:
                return session
            kind = {"break": "counter_break", "open": "counter_resumed", "closed": "counter_closed"}[state]
            values: dict[str, Any] = {"state": state}
            if state == "break":
                values["break_since"] = now
            elif state == "open":
                values["break_since"] = None
            else:
                values["closed_at"] = now
            conn.execute(update(queue_sessions).where(queue_sessions.c.id == session.id).values(**values))
            if state != "open":
                self._release(conn, session, self.today(now))
            detail = {"break_s": _seconds(now, session.break_since)} if state == "open" else {}
            self._add_step(conn, center_id, kind, now, counter=session.counter, user=user, detail=detail)
            return (
                self._session(conn, row, user)
                if state == "closed"
                else self._session(conn, self._session_row(conn, user), user)
            )

    def mark_left(self, center_id: str, ticket_id: int, user: User | None = None) -> Ticket:
        """The citizen is gone before being served (seen by an officer, or said on the phone page)."""
        now = self.db.now()
        with self._write(center_id) as conn:
            ticket = self._load_ticket(conn, ticket_id)
            if ticket.center_id != center_id:
                raise NotFoundError(f"ticket {ticket_id} not found")
            if ticket.state != "waiting":
                raise QueueError("queue.error.wrong_state", f"ticket {ticket.number} is {ticket.state}")
            ticket = self._set_ticket(conn, ticket, state="left", finished_at=now)
            self._add_step(
                conn,
                center_id,
                "left",
                now,
                ticket=ticket,
                user=user,
                detail={"waited_s": _seconds(now, ticket.queued_at)},
            )
            return ticket

    # -- reading the queue -----------------------------------------------------------------------------

    def ticket(self, center_id: str, ticket_id: int) -> Ticket:
        with self.db.read() as conn:
            ticket = self._load_ticket(conn, ticket_id)
        if ticket.center_id != center_id:
            raise NotFoundError(f"ticket {ticket_id} not found")
        return ticket

    def find(self, center_id: str, day: str, number: str) -> Ticket | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(queue_tickets).where(
                    queue_tickets.c.center_id == center_id,
                    queue_tickets.c.day == day,
                    queue_tickets.c.number == number,
                )
            ).first()
            return _ticket(row) if row is not None else None

    def by_token(self, token: str) -> Ticket | None:
        if not token or len(token) > 32:
            return None
        with self.db.read() as conn:
            row = conn.execute(select(queue_tickets).where(queue_tickets.c.token == token.lower())).first()
            return _ticket(row) if row is not None else None

    def tickets(self, center_id: str, day: str) -> list[Ticket]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_tickets)
                .where(queue_tickets.c.center_id == center_id, queue_tickets.c.day == day)
                .order_by(queue_tickets.c.issued_at, queue_tickets.c.id)
            )
            return [_ticket(r) for r in rows]

    def waiting_for(self, session: CounterSession, limit: int = 50) -> list[Ticket]:
        """The waiting list a counter sees: its services (and tickets sent to it), in call order: booked
        tickets that are due, priority, the rest; in ``hold`` mode the booked ones not due yet last."""
        now = self.db.now()
        day = self.today(now)
        with self.db.read() as conn:
            settings = self.settings_in(conn, session.center_id)  # a session's center has its row
            kinds = ["due", "priority", "ordinary"]
            if settings["appointment_early"] == "hold":
                kinds.append("held")
            found: list[Ticket] = []
            for kind in kinds:
                for ticket in self._candidates(
                    conn, session, day, kind, settings, now, limit=limit, lock=False
                ):
                    if ticket not in found:
                        found.append(ticket)
        return found[:limit]

    def latest_step_id(self, center_id: str) -> int:
        with self.db.read() as conn:
            found = conn.execute(
                select(func.max(queue_steps.c.id)).where(queue_steps.c.center_id == center_id)
            ).scalar()
            return int(found or 0)

    def steps_since(self, center_id: str, after_id: int, limit: int = 500) -> list[Step]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_steps)
                .where(queue_steps.c.center_id == center_id, queue_steps.c.id > after_id)
                .order_by(queue_steps.c.id)
                .limit(limit)
            )
            return [_step(r) for r in rows]

    def step(self, center_id: str, step_id: int) -> Step:
        with self.db.read() as conn:
            row = conn.execute(
                select(queue_steps).where(queue_steps.c.id == step_id, queue_steps.c.center_id == center_id)
            ).first()
        if row is None:
            raise NotFoundError(f"step {step_id} not found")
        return _step(row)

    def steps_of_ticket(self, ticket_id: int) -> list[Step]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_steps).where(queue_steps.c.ticket_id == ticket_id).order_by(queue_steps.c.id)
            )
            return [_step(r) for r in rows]

    def board(self, center_id: str) -> Board:
        """What the hall display shows: each counter's latest call today, the latest calls, the people
        waiting per service, the notice."""
        settings = self.settings(center_id)
        now = self.db.now()
        day = self.today(now)
        start = now - timedelta(hours=20)
        counters = self.counters(center_id)
        open_states = {s.counter: s.state for s in self.sessions(center_id)}
        with self.db.read() as conn:
            calls = [
                _step(r)
                for r in conn.execute(
                    select(queue_steps)
                    .where(
                        queue_steps.c.center_id == center_id,
                        queue_steps.c.kind.in_(CALL_KINDS),
                        queue_steps.c.at >= start,
                        queue_steps.c.day == day,
                    )
                    # the day's steps newest first (center, day, id): on a quiet day the walk ends
                    # with the day's first step, not the center's oldest
                    .order_by(queue_steps.c.id.desc())
                    .limit(300)
                )
            ]
            waiting = _waiting_per_service(conn, center_id, day)
            last = conn.execute(
                select(func.max(queue_steps.c.id)).where(queue_steps.c.center_id == center_id)
            ).scalar()
        latest: dict[str, Step] = {}
        for one in calls:
            if one.counter and one.counter not in latest:
                latest[one.counter] = one
        states = []
        for counter in counters:
            call = latest.get(counter.code)
            states.append(
                CounterState(
                    counter.code,
                    counter.name,
                    open_states.get(counter.code, "closed"),
                    call.number if call else None,
                    call.service if call else None,
                    call.id if call else None,
                    call.at if call else None,
                )
            )
        return Board(
            center_id,
            day,
            tuple(states),
            tuple(calls[: settings.recent_calls]),
            waiting,
            tuple(self.services(center_id)),
            settings.notice_vi,
            settings.notice_en,
            int(last or 0),
        )

    # -- how fast the queue moves, and what a ticket should expect ----------------------------------

    def paces(self, center_id: str) -> dict[str, Pace]:
        now = self.db.now()
        day = self.today(now)
        with self.db.read() as conn:
            open_sessions = self._open_sessions(conn, center_id)
            waiting = _waiting_per_service(conn, center_id, day)
            services = [s.code for s in self.services(center_id)]
            out: dict[str, Pace] = {}
            for service in services:
                # The latest PACE_SAMPLES finished services of the service within the week, newest
                # first, read per kind from (center, service, kind, at) backwards, each read stopping
                # at PACE_SAMPLES: a busy service's are the last minutes', a quiet one's end with the
                # week. (By id, the read walked the center's steps back to its oldest when the week
                # had fewer; a read of the week's ids to sort them cost a busy center 2,200 rows a
                # service.) The two kinds' newest merged by time here.
                recent: list[Any] = []
                for kind in ("done", "transferred"):
                    recent.extend(
                        conn.execute(
                            select(queue_steps.c.at, queue_steps.c.id, queue_steps.c.detail)
                            .where(
                                queue_steps.c.center_id == center_id,
                                queue_steps.c.service == service,
                                queue_steps.c.kind == kind,
                                queue_steps.c.at >= now - PACE_WINDOW,
                            )
                            .order_by(queue_steps.c.at.desc())  # the index's own order: no sort
                            .limit(PACE_SAMPLES)
                        ).all()
                    )
                recent.sort(key=lambda row: (row.at, row.id), reverse=True)
                rows = [row.detail for row in recent[:PACE_SAMPLES]]
                samples = [float(d["served_s"]) for d in rows if d and d.get("served_s") is not None]
                service_s = sum(samples) / len(samples) if len(samples) >= MIN_HISTORY else None
                sharing = [s for s in open_sessions if service in (s.services or ())]
                capacity = sum(1.0 / max(1, len(s.services or ())) for s in sharing)
                per_person = service_s / capacity if service_s is not None and capacity > 0 else None
                out[service] = Pace(
                    service,
                    waiting.get(service, 0),
                    len(sharing),
                    round(service_s, 1) if service_s is not None else None,
                    round(per_person, 1) if per_person is not None else None,
                )
            return out

    def position(self, ticket: Ticket) -> Position:
        """People ahead of a waiting ticket in its service, in call order: booked tickets that are due
        come first (among them, earlier booked times); then priority tickets (an ordinary ticket has
        every waiting priority one ahead, a priority one only earlier priority ones); in ``hold`` mode
        booked tickets not due yet are ahead of nobody. The expected wait follows from the pace;
        unknown when there is no history or no counter open."""
        pace = self.paces(ticket.center_id).get(ticket.service)
        if ticket.state != "waiting":
            return Position(ticket, None, None, pace)
        t = queue_tickets.c
        now = self.db.now()
        with self.db.read() as conn:
            settings = self.settings_in(conn, ticket.center_id)
            due_from = self._due_from(settings, now)
            booked = and_(t.appointment_at.is_not(None), t.service == t.first_service)
            due = and_(booked, t.appointment_at <= due_from)
            earlier = or_(
                t.issued_at < ticket.issued_at, and_(t.issued_at == ticket.issued_at, t.id < ticket.id)
            )
            if ticket.booked and ticket.appointment_at is not None and ticket.appointment_at <= due_from:
                mine = ticket.appointment_at
                sooner = or_(t.appointment_at < mine, and_(t.appointment_at == mine, earlier))
                ahead_condition = and_(due, sooner)
            else:
                urgent = t.priority.is_(True)
                by_class = and_(urgent, earlier) if ticket.priority else or_(urgent, earlier)
                if settings["appointment_early"] == "hold":
                    by_class = and_(by_class, or_(~booked, t.appointment_at <= due_from))
                ahead_condition = or_(due, by_class)
            ahead = int(
                conn.execute(
                    select(func.count()).where(
                        t.center_id == ticket.center_id,
                        t.day == ticket.day,
                        t.state == "waiting",
                        t.service == ticket.service,
                        t.id != ticket.id,
                        ahead_condition,
                        or_(t.target_counter.is_(None), t.target_counter == ticket.target_counter),
                    )
                ).scalar_one()
            )
        return Position(ticket, ahead, expected_wait_min(ahead, pace.per_person_s if pace else None), pace)

    # -- ratings (the phone page, and the kiosk's rating event) ---------------------------------------

    def served_by(self, conn: Connection, ticket: Ticket) -> tuple[str | None, int | None]:
        """The counter and officer of the ticket's last finished service."""
        row = conn.execute(
            select(queue_steps.c.counter, queue_steps.c.user_id)
            .where(queue_steps.c.ticket_id == ticket.id, queue_steps.c.kind.in_(("done", "transferred")))
            .order_by(queue_steps.c.id.desc())
            .limit(1)
        ).first()
        return (row.counter, row.user_id) if row is not None else (None, None)

    def rate(
        self,
        ticket: Ticket,
        level: int,
        scale: int,
        via: str,
        *,
        reasons: Sequence[str] = (),
        event_id: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """One rating tied to the ticket, the counter and the officer who served it; False when this
        ticket was already rated this way (one tap per ticket and channel)."""
        if scale not in (3, 4, 5) or not 1 <= level <= scale:
            raise ValidationError(f"level {level} on a scale of {scale}")
        now = self.db.now()
        with self._write(ticket.center_id) as conn:
            counter, officer = self.served_by(conn, ticket)
            if ticket.state != "done" or counter is None:
                raise QueueError("queue.error.not_served", f"ticket {ticket.number} has not been served")
            exists = conn.execute(
                select(queue_ratings.c.id).where(
                    or_(
                        and_(queue_ratings.c.ticket_id == ticket.id, queue_ratings.c.via == via),
                        queue_ratings.c.event_id == (event_id or "-"),
                    )
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(queue_ratings).values(
                    center_id=ticket.center_id,
                    ticket_id=ticket.id,
                    counter=counter,
                    user_id=officer,
                    level=level,
                    scale=scale,
                    via=via,
                    reasons=list(reasons)[:32],
                    event_id=event_id,
                    at=at or now,
                )
            )
            officer_user = None
            if officer is not None:
                found = conn.execute(select(users).where(users.c.id == officer)).first()
                officer_user = user_from(found) if found is not None else None
            self._add_step(
                conn,
                ticket.center_id,
                "rated",
                now,
                ticket=ticket,
                counter=counter,
                user=officer_user,
                detail={"level": level, "scale": scale, "via": via},
            )
        return True

    def rated(self, ticket_id: int, via: str) -> bool:
        with self.db.read() as conn:
            found = conn.execute(
                select(queue_ratings.c.id).where(
                    queue_ratings.c.ticket_id == ticket_id, queue_ratings.c.via == via
                )
            ).first()
            return found is not None

    # -- hall displays ---------------------------------------------------------------------------------

    def create_display(self, center_id: str, label: str, user: User | None) -> str:
        """A new display token (shown once; the store keeps its SHA-256)."""
        import hashlib

        token = secrets.token_urlsafe(32)
        with self._write(center_id) as conn:
            conn.execute(
                insert(queue_displays).values(
                    center_id=center_id,
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    label=label[:120],
                    created_by=user.id if user else None,
                    created_at=self.db.now(),
                )
            )
        return token

    def display_center(self, token: str) -> str | None:
        """The center of a valid display token (None: unknown or revoked)."""
        import hashlib

        if not token or len(token) > 100:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.db.read() as conn:
            row = conn.execute(
                select(queue_displays.c.id, queue_displays.c.center_id, queue_displays.c.last_seen_at).where(
                    queue_displays.c.token_hash == digest, queue_displays.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        now = self.db.now()
        if row.last_seen_at is None or now - row.last_seen_at > timedelta(minutes=1):
            with self.db.write() as conn:
                conn.execute(
                    update(queue_displays).where(queue_displays.c.id == row.id).values(last_seen_at=now)
                )
        return str(row.center_id)

    def displays(self, center_id: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_displays)
                .where(queue_displays.c.center_id == center_id)
                .order_by(queue_displays.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def revoke_display(self, center_id: str, display_id: int) -> None:
        with self._write(center_id) as conn:
            done = conn.execute(
                update(queue_displays)
                .where(queue_displays.c.id == display_id, queue_displays.c.center_id == center_id)
                .values(revoked_at=self.db.now())
            )
            if done.rowcount == 0:
                raise NotFoundError(f"display {display_id} not found")

    # -- the outbox of queue-event/1 (fleet.queue.publisher) -----------------------------------------

    def unpublished(self, limit: int = 200, center_id: str | None = None) -> list[tuple[Step, Ticket | None]]:
        conditions: list[Any] = [queue_steps.c.published_at.is_(None)]
        if center_id is not None:
            conditions.append(queue_steps.c.center_id == center_id)
        with self.db.read() as conn:
            rows = conn.execute(
                select(queue_steps).where(*conditions).order_by(queue_steps.c.id).limit(limit)
            ).all()
            out = []
            for row in rows:
                step = _step(row)
                out.append((step, self._load_ticket(conn, step.ticket_id) if step.ticket_id else None))
            return out

    def mark_published(self, step_ids: Sequence[int]) -> None:
        if not step_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                update(queue_steps)
                .where(queue_steps.c.id.in_(list(step_ids)))
                .values(published_at=self.db.now())
            )

    def center_ids(self) -> list[str]:
        with self.db.read() as conn:
            return [
                r[0]
                for r in conn.execute(select(queue_settings.c.center_id).order_by(queue_settings.c.center_id))
            ]

    def center_in_scope(self, scope: Scope, center_id: str) -> bool:
        with self.db.read() as conn:
            return (
                conn.execute(
                    select(centers.c.id).where(centers.c.id == center_id, scope.centers_filter(centers.c.id))
                ).first()
                is not None
            )


TicketKey = tuple[str, str, str]  # (center, day, number): a ticket's identity


# PostgreSQL: an issue write's reads and writes over one JSON parameter each (fleet/store/recordsets.py)
_KEY_COLUMNS = (("center_id", TEXT), ("day", TEXT), ("number", TEXT))
_KEYS = recordset("keys", _KEY_COLUMNS)
_TICKET_COLUMNS = (
    ("center_id", TEXT), ("day", TEXT), ("number", TEXT), ("service", TEXT), ("first_service", TEXT),
    ("priority", BOOLEAN), ("source", TEXT), ("kiosk_id", TEXT), ("token", TEXT),
    ("issued_at", TIMESTAMPTZ), ("queued_at", TIMESTAMPTZ), ("state", TEXT), ("assigned_counter", TEXT),
    ("appointment_at", TIMESTAMPTZ), ("updated_at", TIMESTAMPTZ),
)
_TICKETS = recordset("tickets", _TICKET_COLUMNS)
_INSERT_TICKETS_PG = (
    insert(queue_tickets)
    .from_select([name for name, _ in _TICKET_COLUMNS], select(*(_TICKETS.c[n] for n, _ in _TICKET_COLUMNS)))
    .returning(*queue_tickets.c)
)
_STEP_COLUMNS = (
    ("center_id", TEXT), ("seq", BIGINT), ("event_id", TEXT), ("at", TIMESTAMPTZ), ("kind", TEXT),
    ("ticket_id", BIGINT), ("day", TEXT), ("number", TEXT), ("service", TEXT), ("counter", TEXT),
    ("user_id", BIGINT), ("officer", TEXT), ("detail", JSONB_VALUE),
)
_STEPS = recordset("steps", _STEP_COLUMNS)
_INSERT_STEPS_PG = insert(queue_steps).from_select(
    [name for name, _ in _STEP_COLUMNS], select(*(_STEPS.c[n] for n, _ in _STEP_COLUMNS))
)
_SEQ_COLUMNS = (("center_id", TEXT), ("last_seq", BIGINT))
_SEQS = recordset("seqs", _SEQ_COLUMNS)
_UPDATE_SEQS_PG = (
    update(queue_settings)
    .where(queue_settings.c.center_id == _SEQS.c.center_id)
    .values(last_seq=_SEQS.c.last_seq)
)


class _IssuePlan:
    """One ``Queue.issue_centers`` write: what its tickets need read once, what they change written once.
    Per ticket the rules of ``Queue.issue``: idempotent on (center, day, number), the first print wins,
    a service the center has not described yet is known by its code, strict pulling deals it to a
    counter, a late check-in of an appointment enters as a walk-in."""

    def __init__(
        self, queue: Queue, conn: Connection, settings: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        self.queue = queue
        self.conn = conn
        self.settings = settings  # per center, read under its lock
        self.now = now
        #: the tickets this write names, stored before or new in it
        self.tickets: dict[TicketKey, Ticket] = {}
        self._services: set[tuple[str, str]] = set()
        self._new_services: list[dict[str, Any]] = []
        self._new: list[tuple[TicketKey, dict[str, Any], dict[str, Any]]] = []  # key, row, step detail
        self._planned: set[TicketKey] = set()
        self._sessions: dict[str, list[Any]] = {}
        self._loads: dict[tuple[str, str], dict[Any, int]] = {}

    def day_of(self, printed: Printed) -> tuple[str, str]:
        return printed.day or self.queue.today(printed.issued_at or self.now), printed.number

    def named(self, keys: Sequence[TicketKey]) -> None:
        """The stored tickets of these keys, in one read (500 at a time): a replayed or redelivered ticket
        costs no statement of its own."""
        t = queue_tickets.c
        wanted = sorted(set(keys))
        if self.queue.db.is_postgres and wanted:
            w = _KEYS.c
            on = and_(t.center_id == w.center_id, t.day == w.day, t.number == w.number)
            rows = [dict(zip(("center_id", "day", "number"), key, strict=True)) for key in wanted]
            found = self.conn.execute(
                select(queue_tickets).join(_KEYS, on), {"keys": rows_json(rows, _KEY_COLUMNS)}
            )
            for row in found:
                ticket = _ticket(row)
                self.tickets[(ticket.center_id, ticket.day, ticket.number)] = ticket
            return
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for row in self.conn.execute(
                select(queue_tickets).where(tuple_(t.center_id, t.day, t.number).in_(chunk))
            ):
                ticket = _ticket(row)
                self.tickets[(ticket.center_id, ticket.day, ticket.number)] = ticket

    def known_services(self, pairs: set[tuple[str, str]]) -> None:
        c = queue_services.c
        wanted = sorted(pairs)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            pairs_in = tuple_(c.center_id, c.code).in_(chunk)
            rows = self.conn.execute(select(c.center_id, c.code).where(pairs_in))
            self._services.update((row.center_id, row.code) for row in rows)

    def add(self, center_id: str, printed: Printed) -> tuple[TicketKey, bool]:
        """A printed ticket planned (key, new); a ticket already stored or planned is not new."""
        day, number = self.day_of(printed)
        key = (center_id, day, number)
        if key in self.tickets or key in self._planned:
            return key, False
        service = printed.service
        if (center_id, service) not in self._services:
            self._services.add((center_id, service))
            self._new_services.append(
                {
                    "center_id": center_id,
                    "code": service,
                    "prefix": number[0],
                    "name_vi": service,
                    "name_en": service,
                    "position": 100,
                }
            )
        settings = self.settings[center_id]
        issued = printed.issued_at or self.now
        assigned = self._deal(center_id, day, service) if settings["pulling"] == "strict" else None
        appointment_at = printed.appointment_at
        late = appointment_at is not None and issued > appointment_at + timedelta(
            minutes=int(settings["appointment_late_min"])
        )
        row = {
            "center_id": center_id,
            "day": day,
            "number": number,
            "service": service,
            "first_service": service,
            "priority": printed.priority,
            "source": printed.source,
            "kiosk_id": printed.kiosk_id,
            "token": phone_token(bytes.fromhex(settings["phone_key"]), center_id, day, number),
            "issued_at": issued,
            "queued_at": issued,
            "state": "waiting",
            "assigned_counter": assigned,
            "appointment_at": None if late else appointment_at,
            "updated_at": self.now,
        }
        detail: dict[str, Any] = {
            "priority": printed.priority, "issued_at": issued.isoformat(), "source": printed.source
        }
        if assigned:
            detail["assigned_counter"] = assigned
        if appointment_at is not None:
            detail["appointment_late" if late else "appointment_at"] = appointment_at.isoformat()
        self._new.append((key, row, detail))
        self._planned.add(key)
        return key, True

    def _deal(self, center_id: str, day: str, service: str) -> str | None:
        """Strict pulling: the open counter of this service with the fewest waiting tickets dealt to it,
        this write's own included."""
        sessions = self._sessions.get(center_id)
        if sessions is None:
            sessions = self._sessions[center_id] = self.queue._open_sessions(self.conn, center_id)
        serving = [s.counter for s in sessions if service in (s.services or ())]
        if not serving:
            return None
        loads = self._loads.get((center_id, day))
        if loads is None:
            t = queue_tickets.c
            loads = self._loads[(center_id, day)] = dict(
                self.conn.execute(
                    select(t.assigned_counter, func.count())
                    .where(
                        t.center_id == center_id,
                        t.day == day,
                        t.state == "waiting",
                        t.assigned_counter.is_not(None),
                    )
                    .group_by(t.assigned_counter)
                ).all()
            )
        chosen = min(sorted(serving), key=lambda counter: loads.get(counter, 0))
        loads[chosen] = loads.get(chosen, 0) + 1
        return chosen

    def write(self) -> None:
        """The planned services, tickets (their rows read back in order), steps and step counters."""
        if self._new_services:
            self.conn.execute(insert(queue_services), self._new_services)
        if not self._new:
            return
        # the rows read back by their key, in whatever order they come (asking for the parameters'
        # order made SQLAlchemy insert them one by one on SQLite)
        rows = [row for _, row, _ in self._new]
        postgres = self.queue.db.is_postgres
        if postgres:  # one JSON parameter each (fleet/store/recordsets.py says why)
            inserted = self.conn.execute(_INSERT_TICKETS_PG, {"tickets": rows_json(rows, _TICKET_COLUMNS)})
        else:
            inserted = self.conn.execute(insert(queue_tickets).returning(*queue_tickets.c), rows)
        for row in inserted:
            ticket = _ticket(row)
            self.tickets[(ticket.center_id, ticket.day, ticket.number)] = ticket
        steps = []
        last: dict[str, int] = {}
        for key, _, detail in self._new:
            ticket = self.tickets[key]
            center_id = key[0]
            seq = last[center_id] = last.get(center_id, int(self.settings[center_id]["last_seq"])) + 1
            steps.append(_step_values(center_id, seq, "issued", self.now, ticket=ticket, detail=detail))
        if postgres:
            self.conn.execute(_INSERT_STEPS_PG, {"steps": rows_json(steps, _STEP_COLUMNS)})
            counters = [{"center_id": center_id, "last_seq": seq} for center_id, seq in last.items()]
            self.conn.execute(_UPDATE_SEQS_PG, {"seqs": rows_json(counters, _SEQ_COLUMNS)})
            return
        self.conn.execute(insert(queue_steps), steps)
        self.conn.execute(
            update(queue_settings)
            .where(queue_settings.c.center_id == bindparam("b_center"))
            .values(last_seq=bindparam("b_seq")),
            [{"b_center": center_id, "b_seq": seq} for center_id, seq in last.items()],
        )
