"""The ingest's status (``/ingest``): each worker as it last reported (messages in and what became of
them, queue, lag, connected, who holds the duties), and what the ingest refused for the user's centers
(unknown kiosk, a kiosk under another center's id, payloads that do not parse, unexpected blobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from fleet.store.models import WorkerStatus
from fleet.web.core import Ctx, endpoint
from fleet.web.format import Column, csv_response, json_response

#: a worker that has not reported for this long is shown as stale (it reports every 2 s)
STALE_S = 15.0
LEASE = "fleet-duties"


@dataclass(frozen=True)
class WorkerView:
    worker: WorkerStatus
    age_s: float
    leader: bool

    @property
    def state(self) -> str:
        if self.worker.stopped_at is not None:
            return "stopped"
        if self.age_s > STALE_S:
            return "stale"
        return "connected" if self.worker.stats.get("connected") else "disconnected"

    def count(self, name: str) -> int:
        return int((self.worker.stats.get("counts") or {}).get(name, 0))


REFUSAL_COLUMNS = [
    Column("center_id", "alarms.center", lambda r: r.center_id),
    Column("kiosk_id", "alarms.kiosk", lambda r: r.kiosk_id),
    Column(
        "reason",
        "ingest.reason",
        lambda r: r.reason,
        lambda r, tr: tr.optional(f"ingest.why_{r.reason}", r.reason),
    ),
    Column("count", "ingest.count", lambda r: r.count),
    Column("first_at", "ingest.first_at", lambda r: r.first_at),
    Column("last_at", "ingest.last_at", lambda r: r.last_at),
    Column("detail", "alarms.detail", lambda r: r.detail),
]


def workers(ctx: Ctx, now: datetime) -> list[WorkerView]:
    store = ctx.web.store
    holder = store.ingest.lease_holder(LEASE)
    leader = holder[0] if holder is not None and holder[1] > now else None
    return [
        WorkerView(w, (now - w.updated_at).total_seconds(), w.id == leader) for w in store.ingest.workers()
    ]


@endpoint("fleet.view")
def ingest_status(request: Request, ctx: Ctx) -> Response:
    store = ctx.web.store
    now = store.db.now()
    found = workers(ctx, now)
    refusals = store.ingest.refusals(ctx.scope)
    form = request.query_params.get("format")
    if form == "csv":
        return csv_response("tu-choi", REFUSAL_COLUMNS, refusals, ctx.web.zone)
    if form == "json":
        return json_response(
            REFUSAL_COLUMNS,
            refusals,
            workers=[
                {
                    "id": w.worker.id,
                    "host": w.worker.host,
                    "pid": w.worker.pid,
                    "state": w.state,
                    "leader": w.leader,
                    "age_s": round(w.age_s, 1),
                    "stats": w.worker.stats,
                }
                for w in found
            ],
        )
    return ctx.web.render(ctx, "ingest.html", workers=found, refusals=refusals, now=now)
