"""The queue at the counters (docs/queue.md): tables on the fleet's one schema, migration 0003.

- ``queue_tickets``: one row per printed number of a center day (the ticket's current state).
- ``queue_steps``: every step of a ticket's life and of a counter's day, with time, counter and
  officer. It is at once the history (statistics), the change log the counter app, the hall display
  and the phone page follow, and the outbox of ``queue-event/1`` (``published_at``).
- ``queue_sessions``: an officer at a counter with the service areas picked, open / on a break / closed.
- ``queue_settings``: per center: call order, recalls before a no-show, target wait, the hall's notice,
  the phone key, the appointment rules, and ``last_seq`` (the contract's per-center sequence; its row
  is also the lock that orders every queue write of the center on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from contract.queue import QUEUE_EVENT_KINDS
from fleet.store.schema import ID, _in, metadata
from fleet.store.types import BigId, Json, UtcDateTime

TICKET_STATES = ("waiting", "called", "serving", "done", "no_show", "left")
SESSION_STATES = ("open", "break", "closed")
#: the steps of the log are the contract's queue event kinds (``queue-event/1``): one list
STEP_KINDS = QUEUE_EVENT_KINDS
COUNTER = String(8)
SERVICE = String(16)

queue_settings = Table(
    "queue_settings",
    metadata,
    Column("center_id", ID, ForeignKey("centers.id"), primary_key=True),
    Column("priority_mode", String(16), nullable=False, server_default="first"),
    Column("priority_every", Integer, nullable=False, server_default="3"),
    Column("pulling", String(16), nullable=False, server_default="shared"),
    Column("max_recalls", Integer, nullable=False, server_default="2"),
    Column("target_wait_min", Integer, nullable=False, server_default="30"),
    Column("recent_calls", Integer, nullable=False, server_default="6"),
    Column("notice_vi", Text, nullable=False, server_default=""),
    Column("notice_en", Text, nullable=False, server_default=""),
    # booked appointments (migration 0006): before its time a booked ticket waits like a walk-in
    # ("wait") or is not called ("hold"); it is due this many minutes before its time; printed later
    # than its time + the tolerance, it is a walk-in
    Column("appointment_early", String(8), nullable=False, server_default="wait"),
    Column("appointment_ahead_min", Integer, nullable=False, server_default="5"),
    Column("appointment_late_min", Integer, nullable=False, server_default="15"),
    Column("phone_key", String(64), nullable=False),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("priority_mode IN ('first', 'interleave')", name="priority_mode"),
    CheckConstraint("pulling IN ('shared', 'strict')", name="pulling"),
)

queue_services = Table(
    "queue_services",
    metadata,
    Column("center_id", ID, ForeignKey("centers.id"), primary_key=True),
    Column("code", SERVICE, primary_key=True),
    Column("prefix", String(1), nullable=False),
    Column("name_vi", String(120), nullable=False),
    Column("name_en", String(120), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
)

queue_counters = Table(
    "queue_counters",
    metadata,
    Column("center_id", ID, ForeignKey("centers.id"), primary_key=True),
    Column("code", COUNTER, primary_key=True),
    Column("name", String(120), nullable=False, server_default=""),
    Column("services", Json, nullable=False),  # the service areas it calls by default
    Column("position", Integer, nullable=False, server_default="0"),
)

queue_displays = Table(
    "queue_displays",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token, never the token
    Column("label", String(120), nullable=False, server_default=""),
    Column("created_by", BigInteger, ForeignKey("users.id")),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("last_seen_at", UtcDateTime),
)

queue_tickets = Table(
    "queue_tickets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("day", String(10), nullable=False),
    Column("number", String(8), nullable=False),
    Column("service", SERVICE, nullable=False),  # now (a transfer changes it)
    Column("first_service", SERVICE, nullable=False),
    Column("priority", Boolean, nullable=False),
    Column("source", String(8)),  # online | offline (from the allocator's range or a kiosk's block)
    Column("kiosk_id", ID),
    Column("token", String(32), nullable=False, unique=True),  # the phone page's (contract.queue)
    Column("issued_at", UtcDateTime, nullable=False),  # printed; kept across transfers (call order)
    Column("queued_at", UtcDateTime, nullable=False),  # entered the current queue (waiting time)
    Column("state", String(16), nullable=False),
    Column("target_counter", COUNTER),  # transferred to this counter: only it calls the ticket
    Column("assigned_counter", COUNTER),  # strict pulling: dealt to this counter
    Column("counter", COUNTER),  # called to / served at
    Column("user_id", BigInteger, ForeignKey("users.id")),
    Column("calls", Integer, nullable=False, server_default="0"),
    Column("called_at", UtcDateTime),
    Column("serving_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("appointment_at", UtcDateTime),  # the booked time, when honoured (migration 0006); else NULL
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(_in("state", TICKET_STATES), name="state"),
    UniqueConstraint("center_id", "day", "number"),
    Index(None, "center_id", "day", "state", "service", "issued_at"),
    # a counter's next ticket (migration 0010): the waiting tickets of a class in call order, so the
    # ORDER BY ... LIMIT reads from the front of the index instead of sorting the whole queue; the
    # counter's services (an OR with tickets sent to it) are checked on the way
    Index("ix_queue_tickets_call_order", "center_id", "day", "state", "priority", "issued_at", "id"),
    # ...and its booked tickets by booked time (only the few with one are in it)
    Index(
        "ix_queue_tickets_booked_order",
        "center_id",
        "day",
        "state",
        "appointment_at",
        "issued_at",
        "id",
        sqlite_where=text("appointment_at IS NOT NULL"),
        postgresql_where=text("appointment_at IS NOT NULL"),
    ),
)

queue_sessions = Table(
    "queue_sessions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("counter", COUNTER, nullable=False),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("services", Json, nullable=False),
    Column("state", String(16), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("break_since", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("ticket_id", BigInteger, ForeignKey("queue_tickets.id")),  # called or being served now
    Column("since_priority", Integer, nullable=False, server_default="0"),  # calls since a priority one
    CheckConstraint(_in("state", SESSION_STATES), name="state"),
    # one officer per counter and one counter per officer at a time
    Index(
        "uq_queue_sessions_open_counter",
        "center_id",
        "counter",
        unique=True,
        sqlite_where=text("state <> 'closed'"),
        postgresql_where=text("state <> 'closed'"),
    ),
    Index(
        "uq_queue_sessions_open_user",
        "user_id",
        unique=True,
        sqlite_where=text("state <> 'closed'"),
        postgresql_where=text("state <> 'closed'"),
    ),
)

queue_steps = Table(
    "queue_steps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # per center, the contract's queue-event seq
    Column("event_id", String(32), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("ticket_id", BigInteger, ForeignKey("queue_tickets.id")),
    Column("day", String(10)),
    Column("number", String(8)),
    Column("service", SERVICE),
    Column("counter", COUNTER),
    Column("user_id", BigInteger, ForeignKey("users.id")),
    Column("officer", String(64)),  # the username, as published
    Column("detail", Json, nullable=False),
    Column("published_at", UtcDateTime),
    CheckConstraint(_in("kind", STEP_KINDS), name="kind"),
    UniqueConstraint("center_id", "seq"),
    Index(None, "center_id", "id"),
    Index(None, "center_id", "kind", "at"),
    # the hall display's latest calls: today's steps newest first, not the center's whole history
    Index("ix_queue_steps_day_order", "center_id", "day", "id"),
    # a service's pace: its newest finished services of the week, backwards by time, whatever the history
    Index("ix_queue_steps_service_kind_at", "center_id", "service", "kind", "at"),
    # the statistics of a range of days (the manager's page, the reports), whatever the history
    Index("ix_queue_steps_center_at", "center_id", "at"),
    Index(None, "ticket_id"),
    Index(
        "ix_queue_steps_unpublished",
        "id",
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    ),
)

queue_ratings = Table(
    "queue_ratings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("ticket_id", BigInteger, ForeignKey("queue_tickets.id")),
    Column("counter", COUNTER),
    Column("user_id", BigInteger, ForeignKey("users.id")),  # the officer who served
    Column("level", Integer, nullable=False),
    Column("scale", Integer, nullable=False),
    Column("via", String(8), nullable=False),  # phone | kiosk
    Column("reasons", Json, nullable=False),
    Column("event_id", String(64), unique=True),  # the kiosk's rating event (idempotency)
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("via IN ('phone', 'kiosk')", name="via"),
    CheckConstraint("level >= 1 AND level <= scale", name="level"),
    UniqueConstraint("ticket_id", "via"),
    Index(None, "center_id", "at"),
)
