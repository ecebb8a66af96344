"""Where a center's alarms are sent (``/centers/{id}/notifications``): e-mail addresses and webhook URLs
with a minimum severity, added and switched on or off by the center's manager or the province admin
(audited), and the latest deliveries with their state (sent, waiting for a retry, given up)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store.models import NotificationRoute
from fleet.store.schema import SEVERITIES
from fleet.web.core import Ctx, endpoint
from fleet.web.format import Column, csv_response, json_response

DELIVERY_COLUMNS = [
    Column("id", "common.id", lambda d: d.id),
    Column("created_at", "routes.created_at", lambda d: d.created_at),
    Column("kind", "routes.kind", lambda d: d.kind, lambda d, tr: tr(f"routes.kind_{d.kind}")),
    Column("target", "routes.target", lambda d: d.target),
    Column("event", "routes.event", lambda d: d.event, lambda d, tr: tr(f"routes.event_{d.event}")),
    Column("alarm_id", "routes.alarm", lambda d: d.alarm_id),
    Column("alarm_type", "alarms.type", lambda d: d.alarm_type),
    Column("kiosk_id", "alarms.kiosk", lambda d: d.kiosk_id),
    Column("status", "routes.status", lambda d: d.status, lambda d, tr: tr(f"routes.status_{d.status}")),
    Column("attempts", "routes.attempts", lambda d: d.attempts),
    Column("sent_at", "routes.sent_at", lambda d: d.sent_at),
    Column("last_error", "routes.last_error", lambda d: d.last_error),
]


def _route_audit(route: NotificationRoute) -> dict[str, object]:
    return {
        "kind": route.kind,
        "target": route.target,
        "min_severity": route.min_severity,
        "active": route.active,
    }


def _page(
    ctx: Ctx,
    center_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    draft: dict[str, str] | None = None,
) -> Response:
    store, scope = ctx.web.store, ctx.scope
    center = store.registry.center(scope, center_id)
    done = ctx.request.query_params.get("done")
    messages = {"added": "routes.added", "updated": "routes.updated"}
    return ctx.web.render(
        ctx,
        "notifications.html",
        status=status,
        center=center,
        routes=store.routes.of_center(scope, center_id),
        deliveries=store.notices.deliveries(scope, center_id, limit=50),
        severities=SEVERITIES,
        message=ctx.t(messages[done]) if done in messages and error is None else None,
        error=error,
        draft=draft or {},
    )


@endpoint("fleet.view")
def routes_page(request: Request, ctx: Ctx) -> Response:
    center_id = request.path_params["center_id"]
    form = request.query_params.get("format")
    if form in ("csv", "json"):
        ctx.web.store.registry.center(ctx.scope, center_id)
        rows = ctx.web.store.notices.deliveries(ctx.scope, center_id, limit=1000)
        if form == "csv":
            return csv_response(f"thong-bao-{center_id}", DELIVERY_COLUMNS, rows, ctx.web.zone)
        return json_response(DELIVERY_COLUMNS, rows, center=center_id)
    return _page(ctx, center_id)


@endpoint("routes.manage")
def add_route(request: Request, ctx: Ctx) -> Response:
    store, scope, user = ctx.web.store, ctx.scope, ctx.user
    assert user is not None
    center_id = request.path_params["center_id"]
    store.registry.center(scope, center_id)
    kind, target, severity = (
        ctx.field("kind"),
        ctx.field("target").strip(),
        ctx.field("min_severity", "major"),
    )
    draft = {"kind": kind, "target": target, "min_severity": severity}
    if kind not in ("email", "webhook"):
        return _page(ctx, center_id, status=400, error=ctx.t("routes.bad_kind"), draft=draft)
    if severity not in SEVERITIES:
        return _page(ctx, center_id, status=400, error=ctx.t("routes.bad_severity"), draft=draft)
    try:
        route = store.routes.add(scope, center_id, kind, target, min_severity=severity, created_by=user.id)
    except ValidationError:
        key = "routes.bad_email" if kind == "email" else "routes.bad_webhook"
        return _page(ctx, center_id, status=400, error=ctx.t(key), draft=draft)
    except ConflictError:
        return _page(ctx, center_id, status=400, error=ctx.t("routes.exists"), draft=draft)
    store.audit.record(
        "route.create",
        user_id=user.id,
        username=user.username,
        object_type="route",
        object_id=str(route.id),
        center_id=center_id,
        after=_route_audit(route),
        address=ctx.address,
    )
    return RedirectResponse(f"/centers/{center_id}/notifications?done=added", status_code=303)


@endpoint("routes.manage")
def update_route(request: Request, ctx: Ctx) -> Response:
    store, scope, user = ctx.web.store, ctx.scope, ctx.user
    assert user is not None
    try:
        route_id = int(request.path_params["route_id"])
    except ValueError:
        raise NotFoundError("route id is not a number") from None
    before = store.routes.get(scope, route_id)
    active = ctx.field("action") == "activate"
    if active != before.active:
        store.routes.set_active(scope, route_id, active)
        after = store.routes.get(scope, route_id)
        store.audit.record(
            "route.update",
            user_id=user.id,
            username=user.username,
            object_type="route",
            object_id=str(route_id),
            center_id=before.center_id,
            before=_route_audit(before),
            after=_route_audit(after),
            address=ctx.address,
        )
    return RedirectResponse(f"/centers/{before.center_id}/notifications?done=updated", status_code=303)
