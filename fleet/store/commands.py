"""Commands to kiosks (``command/1``) and their results, and configuration pushes and the states
kiosks report. A result is stored once per (kiosk, request_id): the agent may publish it twice."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, insert, select, update

from common.errors import ConflictError, NotFoundError, ValidationError
from contract.commands import RESULT_CODE_PATTERN
from fleet.store.base import Part, log_changes
from fleet.store.changes import Settings
from fleet.store.db import Database
from fleet.store.models import Command, ConfigPush, ConfigState
from fleet.store.schema import centers, commands, config_pushes, config_states, kiosks, users
from fleet.store.scope import Scope

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
RESULT_CODE = re.compile(RESULT_CODE_PATTERN)
CENTER_TARGET = "_center"
#: what became of a command result (``Commands.record_result``)
ResultOutcome = Literal["stored", "duplicate", "elsewhere", "unknown", "elsewhere_limit"]
#: results of other fleets' commands kept per kiosk in ``ELSEWHERE_WINDOW`` at most
ELSEWHERE_PER_DAY = 200
ELSEWHERE_WINDOW = timedelta(days=1)
#: the reasons this fleet writes on its own commands that never reached a kiosk (English, like a
#: kiosk's; the console says them in Vietnamese: ``fleet.web.contract_text``)
REASON_UNSENT_EXPIRED = "expired before it could be sent (the broker was not reachable)"
#: the start of a reason: a stored command the contract refused when it was to be published
REASON_NOT_SENT = "not sent: "


def _command_from(row: Any) -> Command:
    m = row._mapping
    return Command(
        id=m["id"],
        center_id=m["center_id"],
        kiosk_id=m["kiosk_id"],
        request_id=m["request_id"],
        command=m["command"],
        args=m["args"],
        requested_by=m["requested_by"],
        requested_by_name=m["requested_by_name"],
        requested_at=m["requested_at"],
        expires_at=m["expires_at"],
        sent_at=m["sent_at"],
        status=m["status"],
        result_reason=m["result_reason"],
        result=m["result"],
        result_at=m["result_at"],
        sent_elsewhere=bool(m["sent_elsewhere"]),
        result_code=m["result_code"],
    )


def _command_select() -> Any:
    return select(*commands.c, users.c.username.label("requested_by_name")).select_from(
        commands.outerjoin(users, users.c.id == commands.c.requested_by)
    )


class Commands(Part):
    def create(
        self,
        scope: Scope,
        kiosk_id: str,
        command: str,
        args: dict[str, Any],
        user_id: int | None,
        *,
        expires_at: datetime | None = None,
        request_id: str | None = None,
    ) -> Command:
        """A command a person asked for (status 'pending' until the ingest publishes it)."""
        request_id = request_id or f"fleet-{secrets.token_hex(10)}"
        if not REQUEST_ID.fullmatch(request_id):
            raise ValidationError(f"request_id {request_id!r}: 1-64 of A-Z a-z 0-9 . _ : -")
        now = self.db.now()
        with self.db.write() as conn:
            center_id = conn.execute(
                select(kiosks.c.center_id).where(
                    kiosks.c.id == kiosk_id, scope.centers_filter(kiosks.c.center_id)
                )
            ).scalar()
            if center_id is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} not found")
            insert_row = self.db.insert(commands).values(
                center_id=center_id,
                kiosk_id=kiosk_id,
                request_id=request_id,
                command=command,
                args=args,
                requested_by=user_id,
                requested_at=now,
                expires_at=expires_at,
                status="pending",
            )
            new_id = conn.execute(
                insert_row.on_conflict_do_nothing(
                    index_elements=[commands.c.kiosk_id, commands.c.request_id]
                ).returning(commands.c.id)
            ).scalar()
            if new_id is None:
                raise ConflictError(f"request_id {request_id!r} was used for {kiosk_id} already")
            log_changes(conn, now, [(center_id, kiosk_id, "kiosk")])
            return _command_from(conn.execute(_command_select().where(commands.c.id == new_id)).one())

    def mark_sent(self, kiosk_id: str, request_id: str, *, at: datetime | None = None) -> None:
        """The broker took the command (its PUBACK): 'Đã gửi' on the kiosk page, live (a kiosk offline
        answers much later, and its page said 'Chờ gửi' until reloaded). One change row per command."""
        now = at or self.db.now()
        with self.db.write() as conn:
            center_id = conn.execute(
                update(commands)
                .where(
                    commands.c.kiosk_id == kiosk_id,
                    commands.c.request_id == request_id,
                    commands.c.status == "pending",
                )
                .values(status="sent", sent_at=now)
                .returning(commands.c.center_id)
            ).scalar()
            if center_id is not None:  # not when its result was stored first (no longer pending)
                log_changes(conn, now, [(center_id, kiosk_id, "kiosk")])

    def pending(self, *, limit: int = 100) -> list[Command]:
        """Commands asked for but not yet published (what the ingest's publisher picks up)."""
        with self.db.read() as conn:
            return [
                _command_from(r)
                for r in conn.execute(
                    _command_select()
                    .where(commands.c.status == "pending")
                    .order_by(commands.c.id)
                    .limit(limit)
                )
            ]

    def record_result(
        self,
        center_id: str,
        kiosk_id: str,
        request_id: str,
        *,
        command: str,
        status: str,
        reason: str,
        result: dict[str, Any],
        at: datetime | None,
        received_at: datetime | None = None,
        args: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> ResultOutcome:
        """Store a ``command-result/1`` once: 'stored' (the result of one of ours), 'duplicate' (a repeat:
        the agent publishes a result again until acknowledged), 'elsewhere' (no request of that id was
        made here: another fleet's command, kept as theirs), 'unknown' (the id of a request here that
        names another command: not stored) or 'elsewhere_limit' (another fleet's, but this kiosk has
        had ``ELSEWHERE_PER_DAY`` of them in the last day: not stored).

        A kiosk answers every fleet that can reach it on the same ``cmd/res`` (a center's fleet and the
        province's, docs/province.md). Another fleet's result is kept as a row marked ``sent_elsewhere``
        with no requester, no request time and no expiry, its ``args`` as the kiosk echoed them (or
        ``{}``): it is never pending, so it is never published, expired or retried, and no blob is
        accepted for it (``Blobs.accept``). A result naming another ``command`` than the request of
        that id here is not ours (an id two fleets both used: the kiosk runs only the first and answers
        both with its result); ``command`` empty (a request the kiosk could not read) matches any.
        ``code``: the result's ``code`` as the contract read it (any code of its pattern, known here or
        not: a newer agent's is kept, the console falls back to the reason for it)."""
        if status not in ("ok", "error"):
            raise ValidationError(f"command result status {status!r}: expected ok or error")
        if code is not None and not RESULT_CODE.fullmatch(code):
            raise ValidationError(f"command result code {code[:60]!r}: expected {RESULT_CODE_PATTERN}")
        received = received_at or self.db.now()
        with self.db.write() as conn:
            owner = conn.execute(select(kiosks.c.center_id).where(kiosks.c.id == kiosk_id)).scalar()
            if owner is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
            if owner != center_id:
                raise ConflictError(f"kiosk {kiosk_id!r} belongs to center {owner!r}, not {center_id!r}")
            row = conn.execute(
                select(commands.c.id, commands.c.received_at, commands.c.command).where(
                    commands.c.kiosk_id == kiosk_id, commands.c.request_id == request_id
                )
            ).first()
            if row is None:
                return self._elsewhere(
                    conn, center_id, kiosk_id, request_id, command, status, reason, result, at, received,
                    args, code,
                )
            if command and row.command != command:
                return "unknown"  # the id of a request here, answered for another command: not ours
            if row.received_at is not None:
                return "duplicate"
            values = {
                "status": status,
                "result_reason": reason,
                "result_code": code,
                "result": result,
                "result_at": at,
                "received_at": received,
            }
            conn.execute(update(commands).where(commands.c.id == row.id).values(**values))
            log_changes(conn, received, [(center_id, kiosk_id, "kiosk")])
            return "stored"

    def _elsewhere(
        self,
        conn: Any,
        center_id: str,
        kiosk_id: str,
        request_id: str,
        command: str,
        status: str,
        reason: str,
        result: dict[str, Any],
        at: datetime | None,
        received: datetime,
        args: dict[str, Any] | None,
        code: str | None,
    ) -> ResultOutcome:
        """Another fleet's result, kept as theirs: at most ``ELSEWHERE_PER_DAY`` per kiosk (a kiosk
        that makes up request ids cannot fill the store; two workers at once may each store one more)."""
        recent = conn.execute(
            select(func.count())
            .select_from(commands)
            .where(
                commands.c.kiosk_id == kiosk_id,
                commands.c.sent_elsewhere.is_(True),
                commands.c.received_at >= received - ELSEWHERE_WINDOW,
            )
        ).scalar_one()
        if recent >= ELSEWHERE_PER_DAY:
            return "elsewhere_limit"
        new_id = conn.execute(
            self.db.insert(commands)
            .values(
                center_id=center_id,
                kiosk_id=kiosk_id,
                request_id=request_id,
                command=command,
                args=args or {},
                requested_by=None,
                status=status,
                result_reason=reason,
                result_code=code,
                result=result,
                result_at=at,
                received_at=received,
                sent_elsewhere=True,
            )
            .on_conflict_do_nothing(index_elements=[commands.c.kiosk_id, commands.c.request_id])
            .returning(commands.c.id)
        ).scalar()
        if new_id is None:
            return "duplicate"  # another worker stored the same result a moment ago
        log_changes(conn, received, [(center_id, kiosk_id, "kiosk")])
        return "elsewhere"

    def for_kiosk(self, scope: Scope, kiosk_id: str, *, limit: int | None = 50) -> list[Command]:
        query = (
            _command_select()
            .where(commands.c.kiosk_id == kiosk_id, scope.centers_filter(commands.c.center_id))
            .order_by(commands.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            return [_command_from(r) for r in conn.execute(query)]


def _push_from(row: Any) -> ConfigPush:
    m = row._mapping
    return ConfigPush(
        m["id"], m["center_id"], m["target"], m["version"], m["body"], m["pushed_by"], m["pushed_at"]
    )


def _state_from(row: Any) -> ConfigState:
    m = row._mapping
    return ConfigState(
        m["kiosk_id"],
        m["center_version"],
        m["kiosk_version"],
        m["app_pending"],
        m["last_refused"],
        m["at"],
        m["received_at"],
    )


#: who pushes the configuration of this store's centers (``store_settings``; docs/province.md): the
#: store's rule, and a center's own where it differs (``CONFIG_OWNER_KEY:<center id>``)
CONFIG_OWNER_KEY = "config_owner"
ConfigOwner = Literal["here", "centers"]
CONFIG_OWNERS: tuple[ConfigOwner, ...] = ("here", "centers")


def _as_owner(stored: str | None) -> ConfigOwner:
    """A stored rule read back: anything but 'centers' (none set, an unknown word) is 'here'."""
    return "centers" if stored == "centers" else "here"


class Configs(Part):
    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db)
        self.settings = settings  # where the config owner is kept, with the store's other shared values

    def owner(self, center_id: str | None = None) -> ConfigOwner:
        """'here': this store's fleet pushes the configuration (a center's fleet, the default);
        'centers': the center pushes its own from its own fleet (a province whose centers are bridged
        to it): this store records no push for it and its lease holder publishes none. The store's
        rule, or ``center_id``'s own where one is set (a province that also hosts a center without a
        fleet of its own, its kiosks on the province's broker). Kept in the store, so every web and
        ingest process of it follows the same rule."""
        if center_id is not None:
            own = self.settings.get(f"{CONFIG_OWNER_KEY}:{center_id}")
            if own in CONFIG_OWNERS:
                return _as_owner(own)
        return _as_owner(self.settings.get(CONFIG_OWNER_KEY))

    def center_owners(self) -> dict[str, ConfigOwner]:
        """The centers whose rule is their own (center id -> owner)."""
        found = self.settings.with_prefix(f"{CONFIG_OWNER_KEY}:")
        return {center: _as_owner(found[center]) for center in sorted(found)}

    def set_owner(self, owner: ConfigOwner | None, center_id: str | None = None) -> None:
        """The store's rule, or with ``center_id`` that center's own (None: it follows the store's)."""
        if (center_id is None or owner is not None) and owner not in CONFIG_OWNERS:
            raise ValidationError(f"config owner {owner!r}: expected one of {', '.join(CONFIG_OWNERS)}")
        if center_id is None:
            assert owner is not None
            self.settings.set(CONFIG_OWNER_KEY, owner)
            return
        with self.db.read() as conn:
            if conn.execute(select(centers.c.id).where(centers.c.id == center_id)).first() is None:
                raise NotFoundError(f"center {center_id!r} not found")
        key = f"{CONFIG_OWNER_KEY}:{center_id}"
        if owner is None:
            self.settings.delete(key)
        else:
            self.settings.set(key, owner)

    def record_push(
        self,
        scope: Scope,
        center_id: str,
        target: str,
        body: dict[str, Any],
        user_id: int | None,
        *,
        version: int | None = None,
    ) -> ConfigPush:
        """A configuration for the whole center (``target="_center"``) or one kiosk. Versions grow per
        target (the kiosk refuses a lower one); ``version=None`` takes the next. ConflictError when this
        center pushes its own configuration (``owner(center_id) == 'centers'``)."""
        now = self.db.now()
        if self.owner(center_id) == "centers":
            raise ConflictError(
                f"configuration of center {center_id!r} is pushed from the center's own fleet, not here"
            )
        with self.db.write() as conn:
            if (
                target != CENTER_TARGET
                and conn.execute(
                    select(kiosks.c.id).where(kiosks.c.id == target, kiosks.c.center_id == center_id)
                ).first()
                is None
            ):
                raise NotFoundError(f"kiosk {target!r} of center {center_id!r} not found")
            if (
                conn.execute(
                    select(centers.c.id).where(centers.c.id == center_id, scope.centers_filter(centers.c.id))
                ).first()
                is None
            ):
                raise NotFoundError(f"center {center_id!r} not found")
            highest = (
                conn.execute(
                    select(func.max(config_pushes.c.version)).where(
                        config_pushes.c.center_id == center_id, config_pushes.c.target == target
                    )
                ).scalar()
                or 0
            )
            version = highest + 1 if version is None else version
            if version <= highest:
                raise ConflictError(f"config version {version} for {target}: the last one is {highest}")
            new_id = conn.execute(
                insert(config_pushes)
                .values(
                    center_id=center_id,
                    target=target,
                    version=version,
                    body=body,
                    pushed_by=user_id,
                    pushed_at=now,
                )
                .returning(config_pushes.c.id)
            ).scalar_one()
            return _push_from(conn.execute(select(config_pushes).where(config_pushes.c.id == new_id)).one())

    def pushes(self, scope: Scope, center_id: str, *, target: str | None = None) -> list[ConfigPush]:
        query = select(config_pushes).where(
            config_pushes.c.center_id == center_id, scope.centers_filter(config_pushes.c.center_id)
        )
        if target is not None:
            query = query.where(config_pushes.c.target == target)
        with self.db.read() as conn:
            return [_push_from(r) for r in conn.execute(query.order_by(config_pushes.c.id.desc()))]

    def record_state(
        self,
        center_id: str,
        kiosk_id: str,
        *,
        center_version: int | None,
        kiosk_version: int | None,
        app_pending: bool,
        last_refused: dict[str, Any] | None,
        at: datetime | None,
        received_at: datetime | None = None,
    ) -> None:
        """A ``config-state/1`` (retained: the latest one is the truth)."""
        received = received_at or self.db.now()
        values = {
            "center_version": center_version,
            "kiosk_version": kiosk_version,
            "app_pending": app_pending,
            "last_refused": last_refused,
            "at": at,
            "received_at": received,
        }
        with self.db.write() as conn:
            owner = conn.execute(select(kiosks.c.center_id).where(kiosks.c.id == kiosk_id)).scalar()
            if owner is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
            if owner != center_id:
                raise ConflictError(f"kiosk {kiosk_id!r} belongs to center {owner!r}, not {center_id!r}")
            upsert = self.db.insert(config_states).values(kiosk_id=kiosk_id, **values)
            conn.execute(upsert.on_conflict_do_update(index_elements=[config_states.c.kiosk_id], set_=values))
            conn.execute(
                update(kiosks)
                .where(kiosks.c.id == kiosk_id)
                .values(config_center_version=center_version, config_kiosk_version=kiosk_version)
            )
            log_changes(conn, received, [(center_id, kiosk_id, "kiosk")])

    def state(self, scope: Scope, kiosk_id: str) -> ConfigState | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(config_states)
                .join(kiosks, kiosks.c.id == config_states.c.kiosk_id)
                .where(config_states.c.kiosk_id == kiosk_id, scope.centers_filter(kiosks.c.center_id))
            ).first()
            return _state_from(row) if row else None
