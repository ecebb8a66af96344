"""The bytes a command sent back (``{kiosk}/blob/{request_id}``: a screenshot, a log archive).

A blob is kept only for a command this fleet asked for (a request id of that kiosk whose command makes
one; not for another fleet's command whose result is kept here), once, at most ``MAX_BYTES``: a kiosk
cannot fill the store with blobs nobody wanted. It is stored with its SHA-256 and size; whether it is
what the command's result announced is checked when either arrives second (they may reach different
ingest workers in any order) and again before it is served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, select

from common.errors import ConflictError, NotFoundError
from fleet.store.base import Part, log_changes
from fleet.store.models import Blob
from fleet.store.schema import command_blobs, commands, kiosks
from fleet.store.scope import Scope

MAX_BYTES = 4 * 1024 * 1024
BlobOutcome = Literal["stored", "duplicate", "unknown", "unexpected"]


class Blobs(Part):
    def accept(
        self,
        center_id: str,
        kiosk_id: str,
        request_id: str,
        data: bytes,
        *,
        commands_with_blobs: Iterable[str],
        received_at: datetime | None = None,
    ) -> BlobOutcome:
        """Store the blob of (kiosk, request_id): 'stored', 'duplicate' (already have it), 'unknown' (no
        request of that id was made here: another fleet's, docs/province.md; not stored) or 'unexpected'
        (a request of ours whose command makes no blob: refused, not stored). Another fleet's command
        kept here for its result (``sent_elsewhere``, ``Commands.record_result``) counts as unknown: its
        blob belongs in that fleet's store, and a kiosk could name any request id for it. So does a row
        without a requester (kept by versions that stored results of unknown requests)."""
        if len(data) > MAX_BYTES:
            raise ValueError(f"blob of {len(data)} bytes: more than {MAX_BYTES}")
        now = received_at or self.db.now()
        wanted = sorted(set(commands_with_blobs))
        with self.db.write() as conn:
            owner = conn.execute(select(kiosks.c.center_id).where(kiosks.c.id == kiosk_id)).scalar()
            if owner is None:
                raise NotFoundError(f"kiosk {kiosk_id!r} is not in the registry")
            if owner != center_id:
                raise ConflictError(f"kiosk {kiosk_id!r} belongs to center {owner!r}, not {center_id!r}")
            asked = conn.execute(
                select(commands.c.command).where(
                    commands.c.kiosk_id == kiosk_id,
                    commands.c.request_id == request_id,
                    commands.c.requested_by.is_not(None),
                    commands.c.sent_elsewhere.is_(False),
                )
            ).first()
            if asked is None:
                return "unknown"
            if asked.command not in wanted:
                return "unexpected"
            inserted = conn.execute(
                self.db.insert(command_blobs)
                .values(
                    kiosk_id=kiosk_id,
                    request_id=request_id,
                    center_id=center_id,
                    bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    data=data,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=[command_blobs.c.kiosk_id, command_blobs.c.request_id])
                .returning(command_blobs.c.kiosk_id)
            ).scalar()
            if inserted is None:
                return "duplicate"
            log_changes(conn, now, [(center_id, kiosk_id, "kiosk")])
            return "stored"

    def get(self, scope: Scope, kiosk_id: str, request_id: str) -> Blob:
        b = command_blobs.c
        with self.db.read() as conn:
            row = conn.execute(
                select(command_blobs).where(
                    b.kiosk_id == kiosk_id, b.request_id == request_id, scope.centers_filter(b.center_id)
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no blob {request_id!r} of kiosk {kiosk_id!r}")
        return Blob(
            row.kiosk_id, row.request_id, row.center_id, row.bytes, row.sha256, row.received_at, row.data
        )

    def infos(self, scope: Scope, kiosk_id: str, request_ids: Sequence[str]) -> dict[str, Blob]:
        """Size and hash (not the bytes) of the blobs of these requests, for the console's list."""
        if not request_ids:
            return {}
        b = command_blobs.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(b.kiosk_id, b.request_id, b.center_id, b.bytes, b.sha256, b.received_at).where(
                    b.kiosk_id == kiosk_id,
                    b.request_id.in_(list(request_ids)),
                    scope.centers_filter(b.center_id),
                )
            )
            return {
                r.request_id: Blob(r.kiosk_id, r.request_id, r.center_id, r.bytes, r.sha256, r.received_at)
                for r in rows
            }

    def prune(self, older_than: datetime) -> int:
        """Retention: blobs are large; the command row (and its result) stays longer."""
        with self.db.write() as conn:
            return int(
                conn.execute(delete(command_blobs).where(command_blobs.c.received_at < older_than)).rowcount
            )
