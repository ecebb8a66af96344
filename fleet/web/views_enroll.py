"""Enrollment on the dashboard (docs/provisioning.md): one-time codes with their QR code, kiosks waiting
for approval, the allowlist of machine serials, and a kiosk's identity (certificates, replacements, the
last self-test), with revoke and decommission.

Reading needs ``fleet.view``; every change needs ``command.send`` (technicians, province admins) and is
audited. A code is shown once, on the page that made it: the store keeps only its hash. The fleet web
holds no CA key: an approval is a row the provisioning service turns into a certificate at the kiosk's
next poll; a revocation is a row it applies within a second (ACL, CRL, the connection closed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import ConflictError, NotFoundError, ValidationError
from contract.enrollment import EnrollmentCode
from fleet.web.core import Ctx, endpoint, query_int

#: changes on these pages (technicians and province admins: the roles that run commands on kiosks)
ENROLL_PERMISSION = "enroll.manage"


def _center_of(ctx: Ctx, wanted: str | None) -> str:
    centers = ctx.web.store.registry.centers(ctx.scope)
    if wanted:
        if wanted not in {c.id for c in centers}:
            raise NotFoundError(f"center {wanted!r} not in scope")
        return wanted
    if ctx.user is not None and ctx.user.center_id:
        return ctx.user.center_id
    if not centers:
        raise NotFoundError("no center in scope")
    return centers[0].id


def _page(ctx: Ctx, center_id: str, status: int = 200, **values: Any) -> Response:
    store, scope = ctx.web.store, ctx.scope
    center = store.registry.center(scope, center_id)
    try:
        settings = store.enrollment.center(center_id)
    except NotFoundError:
        settings = None
    values.setdefault("message", None)
    values.setdefault("error", None)
    values.setdefault("issued", None)
    return ctx.web.render(
        ctx,
        "enroll.html",
        status=status,
        center=center,
        centers=store.registry.centers(scope),
        settings=settings,
        tokens=store.enrollment.tokens(scope, center_id, limit=20),
        pending=store.enrollment.pending(scope, center_id),
        allowlist=store.enrollment.allowlist(scope, center_id),
        identities=store.enrollment.identities(scope, center_id),
        now=store.db.now(),
        can_change=ctx.can(ENROLL_PERMISSION),
        **values,
    )


@endpoint("fleet.view")
def enroll_page(request: Request, ctx: Ctx) -> Response:
    center_id = _center_of(ctx, request.query_params.get("center"))
    done = request.query_params.get("done")
    messages = {
        "approved": "enroll.approved",
        "rejected": "enroll.rejected",
        "allowlist": "enroll.allowlist_saved",
        "cancelled": "enroll.cancel_done",
        "revoked": "enroll.revoked",
    }
    message = ctx.t(messages[done]) if done in messages else None
    return _page(ctx, center_id, message=message)


def _audit(
    ctx: Ctx, action: str, center_id: str, object_type: str, object_id: str, after: dict[str, Any]
) -> None:
    user = ctx.user
    assert user is not None
    ctx.web.store.audit.record(
        action,
        user_id=user.id,
        username=user.username,
        object_type=object_type,
        object_id=object_id,
        center_id=center_id,
        after=after,
        address=ctx.address,
    )


@endpoint(ENROLL_PERMISSION)
def create_token(request: Request, ctx: Ctx) -> Response:
    store, user = ctx.web.store, ctx.user
    assert user is not None
    center_id = _center_of(ctx, ctx.field("center"))
    kiosk_id = ctx.field("kiosk_id").strip().lower()
    slot_text = ctx.field("slot").strip()
    purpose = "replace" if ctx.field("purpose") == "replace" else "new"
    hours = query_int({"h": ctx.field("hours", "24")}, "h", 24, 1, 168)
    try:
        slot = int(slot_text) if slot_text else None
        text, token = store.enrollment.create_token(
            ctx.scope,
            center_id,
            kiosk_id,
            slot=slot,
            purpose=purpose,
            user_id=user.id,
            username=user.username,
            lifetime=timedelta(hours=hours),
        )
        settings = store.enrollment.center(center_id)
    except (ValidationError, ConflictError, ValueError) as exc:
        message = exc.message if isinstance(exc, ValidationError | ConflictError) else str(exc)
        return _page(ctx, center_id, 400, error=ctx.t("enroll.token_failed", reason=message))
    except NotFoundError as exc:
        return _page(ctx, center_id, 400, error=ctx.t("enroll.token_failed", reason=exc.message))
    code = EnrollmentCode(
        settings.enroll_host, settings.enroll_port, center_id, settings.ca_fingerprint, text
    )
    _audit(
        ctx,
        "enroll.token_create",
        center_id,
        "kiosk",
        kiosk_id,
        {"slot": token.slot, "purpose": token.purpose, "expires_at": token.expires_at.isoformat()},
    )
    import segno

    qr = segno.make(code.to_text(), error="m")
    issued = {
        "token": token,
        "text": text,
        "code": code.to_text(),
        "qr": qr.svg_data_uri(scale=5, border=3),
        "fingerprint": settings.ca_fingerprint,
    }
    return _page(ctx, center_id, issued=issued)


@endpoint(ENROLL_PERMISSION)
def cancel_token(request: Request, ctx: Ctx) -> Response:
    token_id = query_int(request.path_params, "token_id", 0, 0, 2**62)
    token = ctx.web.store.enrollment.cancel_token(ctx.scope, token_id)
    _audit(ctx, "enroll.token_cancel", token.center_id, "kiosk", token.kiosk_id, {"token_id": token.id})
    return RedirectResponse(f"/enroll?center={token.center_id}&done=cancelled", status_code=303)


@endpoint(ENROLL_PERMISSION)
def decide(request: Request, ctx: Ctx) -> Response:
    """Approve (as a new kiosk or the replacement of one) or reject a pending kiosk."""
    store, user = ctx.web.store, ctx.user
    assert user is not None
    request_id = request.path_params["request_id"]
    action = request.path_params["action"]
    if action == "approve":
        slot_text = ctx.field("slot").strip()
        purpose = "replace" if ctx.field("purpose") == "replace" else "new"
        try:
            row = store.enrollment.approve(
                ctx.scope,
                request_id,
                kiosk_id=ctx.field("kiosk_id").strip().lower(),
                slot=int(slot_text) if slot_text else None,
                purpose=purpose,
                username=user.username,
            )
        except (ValidationError, ConflictError) as exc:
            found = store.enrollment.request(request_id)
            _center_of(ctx, found.center_id)  # 404 outside the scope
            return _page(ctx, found.center_id, 400, error=ctx.t("enroll.approve_failed", reason=exc.message))
        except ValueError:
            raise ValidationError("slot: expected a number") from None
        _audit(
            ctx,
            "enroll.approve",
            row.center_id,
            "enroll_request",
            row.id,
            {"kiosk_id": row.kiosk_id, "slot": row.slot, "purpose": row.purpose},
        )
        return RedirectResponse(f"/enroll?center={row.center_id}&done=approved", status_code=303)
    if action == "reject":
        row = store.enrollment.reject(
            ctx.scope, request_id, username=user.username, reason=ctx.field("reason")
        )
        _audit(ctx, "enroll.reject", row.center_id, "enroll_request", row.id, {"reason": row.reason})
        return RedirectResponse(f"/enroll?center={row.center_id}&done=rejected", status_code=303)
    raise NotFoundError(f"no action {action!r}")


@endpoint(ENROLL_PERMISSION)
def allowlist(request: Request, ctx: Ctx) -> Response:
    store, user = ctx.web.store, ctx.user
    assert user is not None
    center_id = _center_of(ctx, ctx.field("center"))
    action = ctx.field("action")
    serial = ctx.field("serial").strip()
    if action == "add":
        store.enrollment.allow(ctx.scope, center_id, serial, note=ctx.field("note"), username=user.username)
    elif action == "remove":
        store.enrollment.disallow(ctx.scope, center_id, serial)
    elif action in ("require", "release"):
        store.enrollment.set_allowlist_required(ctx.scope, center_id, action == "require")
    else:
        raise ValidationError(f"unknown action {action!r}")
    _audit(ctx, f"enroll.allowlist_{action}", center_id, "center", center_id, {"serial": serial})
    return RedirectResponse(f"/enroll?center={center_id}&done=allowlist", status_code=303)


@endpoint("fleet.view")
def kiosk_identity(request: Request, ctx: Ctx) -> Response:
    store, scope = ctx.web.store, ctx.scope
    kiosk_id = request.path_params["kiosk_id"]
    kiosk = store.registry.kiosk(scope, kiosk_id)  # 404 outside the scope
    certificates = store.enrollment.certificates(scope, kiosk_id)
    identity = store.enrollment.identity(scope, kiosk_id)
    replacements = store.enrollment.replacements(scope, kiosk_id)
    selftest = store.enrollment.last_selftest(scope, kiosk_id)
    if request.query_params.get("format") == "json":
        from starlette.responses import JSONResponse

        return JSONResponse(
            {
                "kiosk_id": kiosk_id,
                "center_id": kiosk.center_id,
                "state": identity.state if identity else None,
                "certificates": [
                    {
                        "serial": c.serial,
                        "state": c.state,
                        "not_after": c.not_after.isoformat(),
                        "source": c.source,
                        "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
                        "applied": c.applied_at is not None,
                    }
                    for c in certificates
                ],
                "replacements": [
                    {
                        "at": r.at.isoformat(),
                        "old_serials": r.old_serials,
                        "new_serial": r.new_serial,
                        "old_machine": r.old_machine,
                        "new_machine": r.new_machine,
                    }
                    for r in replacements
                ],
                "events": store.enrollment.event_count(scope, kiosk_id),
                "self_test": None
                if selftest is None
                else {
                    "at": selftest.at.isoformat(),
                    "result": selftest.result,
                    "source": selftest.source,
                    "report": selftest.report,
                },
            }
        )
    return ctx.web.render(
        ctx,
        "enroll_kiosk.html",
        k=kiosk,
        identity=identity,
        certificates=certificates,
        replacements=replacements,
        selftest=selftest,
        events=store.enrollment.event_count(scope, kiosk_id),
        now=store.db.now(),
        can_change=ctx.can(ENROLL_PERMISSION),
        message=ctx.t("enroll.revoked") if request.query_params.get("done") else None,
    )


@endpoint(ENROLL_PERMISSION)
def revoke(request: Request, ctx: Ctx) -> Response:
    store = ctx.web.store
    kiosk_id = request.path_params["kiosk_id"]
    kiosk = store.registry.kiosk(ctx.scope, kiosk_id)
    action = ctx.field("action")
    if action not in ("revoke", "decommission"):
        raise ValidationError(f"unknown action {action!r}")
    serials = store.enrollment.request_revocation(
        ctx.scope,
        kiosk_id,
        reason="key_compromise" if action == "revoke" else "cessation_of_operation",
        decommission=action == "decommission",
    )
    _audit(ctx, f"kiosk.{action}", kiosk.center_id, "kiosk", kiosk_id, {"serials": serials})
    return RedirectResponse(f"/enroll/kiosks/{kiosk_id}?done={action}", status_code=303)
