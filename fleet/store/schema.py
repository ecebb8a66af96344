"""The fleet's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

The migrations in ``migrations/versions`` create exactly this (a test compares them on both backends).
Two tables differ physically on PostgreSQL (``fleet.store.partitions``): ``events`` is partitioned by
month of ``occurred_at``, and ``health_samples`` (since migration 0007) by day of ``received_at``.
PostgreSQL cannot enforce a key on a partitioned table that leaves out the partition column: the
idempotency key ``event_id`` lives in ``event_keys``, and health_samples' primary key there is
(id, received_at) while this metadata says (id) (SQLite's autoincrement needs a one-column key; ids
come from one sequence either way, so they stay unique).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from fleet.store.types import BigId, Json, UtcDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ROLES = ("province_admin", "center_manager", "technician", "officer", "viewer")
KIOSK_STATES = ("unknown", "online", "offline")
SEVERITIES = ("critical", "major", "minor", "warning")
ID = String(64)  # center and kiosk ids: [a-z0-9][a-z0-9-]{1,62} (docs/mqtt.md)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --- places and devices --------------------------------------------------------------------------

provinces = Table(
    "provinces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

centers = Table(
    "centers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("province_id", ID, ForeignKey("provinces.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

kiosks = Table(
    "kiosks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("slot", Integer),
    Column("label", String(200), nullable=False, server_default=""),
    Column("state", String(16), nullable=False, server_default="unknown"),
    Column("state_reason", String(32)),
    Column("state_since", UtcDateTime),
    Column("last_seen", UtcDateTime),
    # last_seen + 3 x heartbeat_s: an online kiosk silent past this is offline (indexed sweep)
    Column("offline_after", UtcDateTime),
    Column("heartbeat_s", Integer, nullable=False, server_default="30"),
    Column("bdseq", BigInteger),
    Column("boot", BigInteger),
    Column("agent_version", String(64)),
    Column("app_version", String(64)),
    Column("config_center_version", Integer),
    Column("config_kiosk_version", Integer),
    Column("hardware", Json),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint(_in("state", KIOSK_STATES), name="state"),
    UniqueConstraint("center_id", "slot"),
    Index(None, "center_id", "id"),
    Index(None, "center_id", "state"),
    Index(None, "state", "offline_after"),
)

kiosk_status = Table(
    "kiosk_status",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("bdseq", BigInteger),
    Column("boot", BigInteger),
    Column("at", UtcDateTime),  # the kiosk's clock (None for the center's own 'silent' verdict)
    Column("received_at", UtcDateTime, nullable=False),
    # False: a late Will or a repeat that lost against the stored bdseq (kept for the technician)
    Column("applied", Boolean, nullable=False),
    Index(None, "kiosk_id", "id"),
    Index(None, "received_at"),
)

device_health = Table(
    "device_health",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("device", String(32), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("detail", Json),  # model, firmware...: whatever the kiosk reports beside the state
    Column("since", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

kiosk_health = Table(
    "kiosk_health",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("at", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
    Column("bdseq", BigInteger),
    Column("payload", Json, nullable=False),  # the latest health/1 as received
)

# on PostgreSQL partitioned by day of received_at, primary key (id, received_at): see the module doc
health_samples = Table(
    "health_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("cpu_percent", Float),
    Column("memory_used_percent", Float),
    Column("disk_used_percent", Float),
    Column("temperature_c", Float),
    Column("outbox_pending", Integer),
    Column("app_up", Boolean),
    Index(None, "kiosk_id", "at"),
    Index(None, "received_at"),
)

health_hourly = Table(
    "health_hourly",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("samples", Integer, nullable=False),
    # sums and counts (not averages) so that a late batch merges exactly
    Column("cpu_n", Integer, nullable=False),
    Column("cpu_sum", Float, nullable=False),
    Column("cpu_max", Float),
    Column("memory_n", Integer, nullable=False),
    Column("memory_sum", Float, nullable=False),
    Column("memory_max", Float),
    Column("disk_max", Float),
    Column("temperature_n", Integer, nullable=False),
    Column("temperature_sum", Float, nullable=False),
    Column("temperature_max", Float),
    Column("outbox_pending_max", Integer),
    Column("app_down_samples", Integer, nullable=False),
    Index(None, "hour"),
)

# --- events --------------------------------------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("occurred_at", UtcDateTime, primary_key=True),
    Column("center_id", ID, nullable=False),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("journal_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("replay", Boolean, nullable=False, server_default=text("false")),
    Column("payload", Json, nullable=False),
    Index(None, "kiosk_id", "occurred_at"),
    Index(None, "center_id", "kind", "occurred_at"),
    # since 0005: the usage pages' live stream asks "anything new for this center?" (fleet.store.usage)
    Index(None, "center_id", "received_at"),
    postgresql_partition_by="RANGE (occurred_at)",
)

event_keys = Table(
    "event_keys",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kiosk_id", ID, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Index(None, "occurred_at"),
)

event_journals = Table(
    "event_journals",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("journal_id", String(64), primary_key=True),
    Column("max_seq", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
)

event_gaps = Table(
    "event_gaps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("journal_id", String(64), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Column("closed_reason", String(16)),  # filled | dropped (announced by outbox_dropped)
    CheckConstraint("first_seq <= last_seq", name="range"),
    Index(None, "kiosk_id", "journal_id", "closed_at"),
)

# --- alarms, commands, configuration -------------------------------------------------------------

alarms = Table(
    "alarms",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    # None: an alarm of the center itself (its allocator), not of one kiosk
    Column("kiosk_id", ID, ForeignKey("kiosks.id")),
    Column("type", String(64), nullable=False),
    Column("device", String(32)),
    Column("severity", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("detail", Json),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("acknowledged_by", BigInteger, ForeignKey("users.id")),
    Column("acknowledged_at", UtcDateTime),
    Column("last_reminded_at", UtcDateTime),
    Column("reminders", Integer, nullable=False, server_default="0"),
    CheckConstraint(_in("severity", SEVERITIES), name="severity"),
    # ThingsBoard's rule: at most one active alarm per (kiosk, type); cleared ones stay as history
    Index(
        "uq_alarms_active_kiosk_type",
        "kiosk_id",
        "type",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
    # the same for alarms of a center (kiosk_id NULL: NULLs are distinct in the index above)
    Index(
        "uq_alarms_active_center_type",
        "center_id",
        "type",
        unique=True,
        sqlite_where=text("active AND kiosk_id IS NULL"),
        postgresql_where=text("active AND kiosk_id IS NULL"),
    ),
    Index(None, "center_id", "active", "started_at"),
    Index(None, "kiosk_id", "started_at"),
)

commands = Table(
    "commands",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("command", String(64), nullable=False),
    Column("args", Json, nullable=False),
    Column("requested_by", BigInteger, ForeignKey("users.id")),  # None: a result we never asked for
    Column("requested_at", UtcDateTime),
    Column("expires_at", UtcDateTime),
    Column("sent_at", UtcDateTime),
    Column("status", String(16), nullable=False),  # pending | sent | ok | error
    Column("result_reason", Text),
    # (0009) why an error result failed, as the kiosk's agent coded it (``CommandResult.code``); None
    # from agents before it, for ok results and for the fleet's own reasons
    Column("result_code", String(40)),
    Column("result", Json),
    Column("result_at", UtcDateTime),
    Column("received_at", UtcDateTime),
    # (0008) a result of a command another fleet sent this kiosk (the province's, the center's: its
    # request is not here): shown as theirs, never published, expired, matched to a blob or retried
    Column("sent_elsewhere", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("kiosk_id", "request_id"),
    Index(None, "kiosk_id", "id"),
    Index(None, "status", "requested_at"),
)

config_pushes = Table(
    "config_pushes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False),
    Column("target", ID, nullable=False),  # "_center" (every kiosk of the center) or a kiosk id
    Column("version", Integer, nullable=False),
    Column("body", Json, nullable=False),
    Column("pushed_by", BigInteger, ForeignKey("users.id")),
    Column("pushed_at", UtcDateTime, nullable=False),
    UniqueConstraint("center_id", "target", "version"),
)

config_states = Table(
    "config_states",
    metadata,
    Column("kiosk_id", ID, ForeignKey("kiosks.id"), primary_key=True),
    Column("center_version", Integer),
    Column("kiosk_version", Integer),
    Column("app_pending", Boolean, nullable=False),
    Column("last_refused", Json),
    Column("at", UtcDateTime),
    Column("received_at", UtcDateTime, nullable=False),
)

notification_routes = Table(
    "notification_routes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", ID, ForeignKey("centers.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("target", String(500), nullable=False),
    Column("min_severity", String(16), nullable=False, server_default="major"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", BigInteger, ForeignKey("users.id")),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('email', 'webhook')", name="kind"),
    CheckConstraint(_in("min_severity", SEVERITIES), name="min_severity"),
    UniqueConstraint("center_id", "kind", "target"),
)

# --- people --------------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("province_id", ID, ForeignKey("provinces.id")),
    Column("center_id", ID, ForeignKey("centers.id")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
    Column("last_login_at", UtcDateTime),
    CheckConstraint(_in("role", ROLES), name="role"),
    # exactly one home: a center, or (province admins, province-wide viewers) a province
    CheckConstraint("(center_id IS NULL) <> (province_id IS NULL)", name="home"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's token, never the token
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("address", String(64)),
    Column("user_agent", String(300)),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("success", Boolean, nullable=False),
    Index(None, "username", "at"),
    Index(None, "address", "at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("user_id", BigInteger, ForeignKey("users.id")),
    Column("username", String(64)),  # as typed for a failed login; kept if the user is renamed
    Column("action", String(64), nullable=False),
    Column("object_type", String(32)),
    Column("object_id", String(64)),
    Column("province_id", ID),
    Column("center_id", ID),
    Column("before", Json),
    Column("after", Json),
    Column("address", String(64)),
    Index(None, "center_id", "id"),
    Index(None, "province_id", "id"),
)

# --- plumbing ------------------------------------------------------------------------------------

changes = Table(
    "changes",
    metadata,
    # A log of what the pages show changed, so every web process can follow the store (SSE) by
    # polling newest ids: no in-process pub/sub. Pruned after a day.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("center_id", ID, nullable=False),
    Column("kiosk_id", ID),
    Column("topic", String(16), nullable=False),  # kiosk | alarm | center
)

store_settings = Table(
    "store_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# --- ingest, notifications, command blobs (migration 0002) ---------------------------------------

ingest_workers = Table(
    "ingest_workers",
    metadata,
    # every ingest worker (process) writes its counters here every few seconds: the status page and
    # `fleet ingest status` read them, whichever machine the worker runs on
    Column("id", String(128), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime),
    Column("stats", Json, nullable=False),
)

ingest_refusals = Table(
    "ingest_refusals",
    metadata,
    # what the ingest refused, counted per (center, kiosk) as the topic named them and per reason:
    # unknown kiosk, wrong center, a payload that does not parse, a blob nobody asked for
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("center_id", String(64), nullable=False),
    Column("kiosk_id", String(64), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_at", UtcDateTime, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
    Column("detail", Text),
    UniqueConstraint("center_id", "kiosk_id", "reason"),
    Index(None, "last_at"),
)

leases = Table(
    "leases",
    metadata,
    # one holder at a time for work only one process may do (publishing commands, sending mail)
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

command_blobs = Table(
    "command_blobs",
    metadata,
    # the bytes of a screenshot or log archive ({kiosk}/blob/{request_id}), at most 4 MiB; kept in the
    # store so that whichever worker received it, every web process serves it. Pruned after 30 days.
    Column("kiosk_id", ID, primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("center_id", ID, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False, index=True),
)

config_publications = Table(
    "config_publications",
    metadata,
    # a push is published (retained) once the broker acknowledged it
    Column("push_id", BigInteger, ForeignKey("config_pushes.id", ondelete="CASCADE"), primary_key=True),
    Column("published_at", UtcDateTime, nullable=False),
)

alarm_notices = Table(
    "alarm_notices",
    metadata,
    # what was announced about an alarm: raised, each reminder (number = the reminder's count), cleared
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alarm_id", BigInteger, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("number", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("event IN ('raised', 'reminder', 'cleared')", name="event"),
    UniqueConstraint("alarm_id", "event", "number"),
)

notifications = Table(
    "notifications",
    metadata,
    # one delivery of a notice to one route (e-mail or webhook), retried with backoff until sent or
    # given up: the sender works from this table, so a slow SMTP server never holds up the ingest
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("notice_id", BigInteger, ForeignKey("alarm_notices.id", ondelete="CASCADE"), nullable=False),
    Column("route_id", BigInteger, ForeignKey("notification_routes.id"), nullable=False),
    Column("center_id", ID, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    UniqueConstraint("notice_id", "route_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "center_id", "id"),
)
import fleet.store.queue_tables  # noqa: E402,F401  (the queue's tables, migration 0003: docs/queue.md)
