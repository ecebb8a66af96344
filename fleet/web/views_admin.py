"""Accounts (province administrators only) and the audit log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.auth import MIN_PASSWORD, hash_password
from fleet.store.accounts import USERNAME, check_home
from fleet.store.models import AuditEntry, User
from fleet.store.schema import ROLES
from fleet.web.core import Ctx, endpoint, query_int
from fleet.web.format import Column, csv_response, json_response
from fleet.web.views_fleet import fmt_of

USER_COLUMNS = [
    Column("id", "common.id", lambda u: u.id),
    Column("username", "users.username", lambda u: u.username),
    Column("display_name", "users.display_name", lambda u: u.display_name),
    Column("role", "users.role", lambda u: u.role, lambda u, tr: tr(f"role.{u.role}")),
    Column("center_id", "alarms.center", lambda u: u.center_id),
    Column("province_id", "centers.province", lambda u: u.province_id),
    Column("active", "users.active", lambda u: u.active),
    Column("last_login_at", "users.last_login", lambda u: u.last_login_at),
    Column("created_at", "users.created_at", lambda u: u.created_at),
]


def user_audit(user: User) -> dict[str, Any]:
    """What the audit log keeps of a user (never the hash)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "center_id": user.center_id,
        "province_id": user.province_id,
        "active": user.active,
    }


def _users_page(
    ctx: Ctx,
    status: int = 200,
    *,
    message: str | None = None,
    error: str | None = None,
    draft: dict[str, str] | None = None,
) -> Response:
    store, scope = ctx.web.store, ctx.scope
    users = store.accounts.users(scope)
    centers = store.registry.centers(scope)
    provinces = store.registry.provinces(scope)
    return ctx.web.render(
        ctx,
        "users.html",
        status=status,
        users=users,
        centers=centers,
        provinces=provinces,
        roles=ROLES,
        message=message,
        error=error,
        draft=draft or {},
    )


@endpoint("user.manage")
def users(request: Request, ctx: Ctx) -> Response:
    form = fmt_of(request)
    if form in ("csv", "json"):
        listed = ctx.web.store.accounts.users(ctx.scope)
        if form == "csv":
            return csv_response("nguoi-dung", USER_COLUMNS, listed, ctx.web.zone)
        return json_response(USER_COLUMNS, listed)
    done, name = request.query_params.get("done"), request.query_params.get("username", "")
    messages = {"created": "users.created", "updated": "users.updated", "password": "users.password_reset_ok"}
    message = ctx.t(messages[done], username=name) if done in messages else None
    return _users_page(ctx, message=message)


def _home(ctx: Ctx, value: str) -> tuple[str | None, str | None]:
    """The form's 'home' field: ``center:ID`` or ``province:ID``, checked against the scope."""
    kind, _, ident = value.partition(":")
    if kind == "center" and ident in {c.id for c in ctx.web.store.registry.centers(ctx.scope)}:
        return ident, None
    if kind == "province" and ctx.scope.sees_province(ident):
        return None, ident
    raise NotFoundError(f"home {value!r} is not in the scope")


@endpoint("user.manage")
def create_user(request: Request, ctx: Ctx) -> Response:
    store, admin = ctx.web.store, ctx.user
    assert admin is not None
    draft = {k: ctx.field(k) for k in ("username", "display_name", "role", "home")}
    username, role, password = draft["username"].strip().lower(), draft["role"], ctx.field("password")
    if not USERNAME.fullmatch(username):
        return _users_page(ctx, 400, error=ctx.t("users.bad_username"), draft=draft)
    center_id, province_id = _home(ctx, draft["home"])
    try:
        check_home(role, center_id, province_id)
    except ValidationError:
        return _users_page(ctx, 400, error=ctx.t("users.bad_home"), draft=draft)
    try:
        hashed = hash_password(password)
    except ValidationError:
        return _users_page(ctx, 400, error=ctx.t("account.too_short", count=MIN_PASSWORD), draft=draft)
    try:
        user = store.accounts.add_user(
            username,
            hashed,
            role,
            center_id=center_id,
            province_id=province_id,
            display_name=draft["display_name"].strip()[:200],
        )
    except ConflictError:
        return _users_page(ctx, 409, error=ctx.t("users.exists"), draft=draft)
    store.audit.record(
        "user.create",
        user_id=admin.id,
        username=admin.username,
        object_type="user",
        object_id=str(user.id),
        center_id=user.center_id,
        province_id=user.province_id,
        after=user_audit(user),
        address=ctx.address,
    )
    return RedirectResponse(f"/users?done=created&username={user.username}", status_code=303)


@endpoint("user.manage")
def update_user(request: Request, ctx: Ctx) -> Response:
    """Lock / unlock, change role and scope, or reset the password of a user in the admin's scope."""
    store, admin = ctx.web.store, ctx.user
    assert admin is not None
    user_id = query_int(request.path_params, "user_id", 0, 0, 2**62)
    target = store.accounts.user(ctx.scope, user_id)  # 404 outside the scope
    action = ctx.field("action")
    if action == "password":
        try:
            hashed = hash_password(ctx.field("password"))
        except ValidationError:
            return _users_page(ctx, 400, error=ctx.t("account.too_short", count=MIN_PASSWORD))
        store.accounts.set_password(target.id, hashed)
        store.audit.record(
            "user.password_reset",
            user_id=admin.id,
            username=admin.username,
            object_type="user",
            object_id=str(target.id),
            center_id=target.center_id,
            province_id=target.province_id,
            address=ctx.address,
        )
        return RedirectResponse(f"/users?done=password&username={target.username}", status_code=303)
    if action in ("deactivate", "activate"):
        if target.id == admin.id:
            return _users_page(ctx, 400, error=ctx.t("users.yourself"))
        before, after = store.accounts.update_user(ctx.scope, target.id, active=action == "activate")
    elif action == "edit":
        center_id, province_id = _home(ctx, ctx.field("home"))
        role = ctx.field("role")
        try:
            before, after = store.accounts.update_user(
                ctx.scope,
                target.id,
                role=role,
                center_id=center_id,
                province_id=province_id,
                home=True,
                display_name=ctx.field("display_name").strip()[:200],
            )
        except ValidationError:
            return _users_page(ctx, 400, error=ctx.t("users.bad_home"))
    else:
        raise ValidationError(f"unknown action {action!r}")
    store.audit.record(
        "user.update",
        user_id=admin.id,
        username=admin.username,
        object_type="user",
        object_id=str(target.id),
        center_id=after.center_id,
        province_id=after.province_id,
        before=user_audit(before),
        after=user_audit(after),
        address=ctx.address,
    )
    return RedirectResponse(f"/users?done=updated&username={target.username}", status_code=303)


AUDIT_COLUMNS = [
    Column("id", "common.id", lambda e: e.id),
    Column("at", "audit.at", lambda e: e.at),
    Column("username", "audit.user", lambda e: e.username),
    Column(
        "action",
        "audit.action",
        lambda e: e.action,
        lambda e, tr: tr.optional(f"action.{e.action}", e.action),
    ),
    Column("object_type", "audit.object_type", lambda e: e.object_type),
    Column("object_id", "audit.object", lambda e: e.object_id),
    Column("center_id", "alarms.center", lambda e: e.center_id),
    Column("province_id", "centers.province", lambda e: e.province_id),
    Column("address", "audit.address", lambda e: e.address),
    Column("before", "audit.before", lambda e: e.before),
    Column("after", "audit.after", lambda e: e.after),
]


@endpoint("audit.view")
def audit(request: Request, ctx: Ctx) -> Response:
    store, params = ctx.web.store, request.query_params
    action = params.get("action") or None
    form = fmt_of(request)
    if form in ("csv", "json"):
        entries = store.audit.page(ctx.scope, action=action, limit=None)
        if form == "csv":
            return csv_response("nhat-ky", AUDIT_COLUMNS, entries.items, ctx.web.zone)
        return json_response(AUDIT_COLUMNS, entries.items, total=entries.total)
    size = ctx.web.settings.page_size
    number = query_int(params, "page", 1, 1, 10**6)
    page = store.audit.page(ctx.scope, action=action, offset=(number - 1) * size, limit=size)
    shown: tuple[AuditEntry, ...] = page.items
    query = {"action": action} if action else {}
    return ctx.web.render(ctx, "audit.html", page=page, entries=shown, action=action, query=query)
