"""Login, logout, the language toggle, the own account (password change), the start page."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import ValidationError
from fleet.auth import MIN_PASSWORD, LoginRefused, check_password_rules
from fleet.web.core import LANG_COOKIE, SESSION_COOKIE, Ctx, endpoint, local_path
from fleet.web.i18n import LANGUAGES


@endpoint(None)
def home(request: Request, ctx: Ctx) -> Response:
    user = ctx.user
    assert user is not None
    if ctx.can("queue.counter"):
        return RedirectResponse("/counter", status_code=303)
    if not ctx.can("fleet.view"):
        return RedirectResponse("/account", status_code=303)
    if user.center_id is not None:
        return RedirectResponse(f"/centers/{user.center_id}", status_code=303)
    return RedirectResponse("/centers", status_code=303)


@endpoint(None, login=False)
def login_page(request: Request, ctx: Ctx) -> Response:
    if ctx.user is not None:
        return RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    done = request.query_params.get("done") == "logout"
    return ctx.web.render(
        ctx,
        "login.html",
        next=local_path(request.query_params.get("next")),
        message=ctx.t("login.logged_out") if done else None,
        error=None,
        username="",
    )


@endpoint(None, login=False)
def login_submit(request: Request, ctx: Ctx) -> Response:
    web = ctx.web
    username, password = ctx.field("username").strip(), ctx.field("password")
    target = local_path(ctx.field("next"))
    try:
        logged = web.auth.login(username, password, ctx.address, request.headers.get("user-agent"))
    except LoginRefused as refused:
        if refused.reason == "rate_limited" and refused.retry_after is not None:
            minutes = max(1, math.ceil(refused.retry_after.total_seconds() / 60))
            error, status = ctx.t("login.rate_limited", minutes=minutes), 429
        else:
            error, status = ctx.t("login.failed"), 401
        response: Response = web.render(
            ctx, "login.html", status=status, next=target, message=None, error=error, username=username
        )
        if status == 429 and refused.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(refused.retry_after.total_seconds())))
        return response
    response = RedirectResponse(target, status_code=303)
    web.set_cookie(response, request, SESSION_COOKIE, web.signer.dumps(logged.token))
    return response


@endpoint(None)
def logout(request: Request, ctx: Ctx) -> Response:
    assert ctx.session is not None
    ctx.web.auth.logout(ctx.session, ctx.address)
    response = RedirectResponse("/login?done=logout", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@endpoint(None, login=False)
def language(request: Request, ctx: Ctx) -> Response:
    """A POST with the page's CSRF token (logged in or not): the choice is kept in a cookie."""
    chosen = ctx.field("lang")
    response = RedirectResponse(local_path(ctx.field("next")), status_code=303)
    if chosen in LANGUAGES:
        ctx.web.set_cookie(response, request, LANG_COOKIE, chosen, max_age=365 * 24 * 3600, http_only=False)
    return response


def _account(
    ctx: Ctx, status: int = 200, *, message: str | None = None, error: str | None = None
) -> Response:
    user = ctx.user
    assert user is not None
    home_name = user.center_id or user.province_id or ""
    if user.center_id:
        home_name = ctx.web.store.registry.center(ctx.scope, user.center_id).name
    elif user.province_id:
        provinces = ctx.web.store.registry.provinces(ctx.scope)
        home_name = provinces[0].name if provinces else user.province_id
    return ctx.web.render(
        ctx, "account.html", status=status, home_name=home_name, message=message, error=error
    )


@endpoint(None)
def account(request: Request, ctx: Ctx) -> Response:
    done = request.query_params.get("done") == "password"
    return _account(ctx, message=ctx.t("account.changed") if done else None)


@endpoint(None)
def change_password(request: Request, ctx: Ctx) -> Response:
    assert ctx.session is not None
    current, new, repeat = ctx.field("current"), ctx.field("new"), ctx.field("repeat")
    if new != repeat:
        return _account(ctx, 400, error=ctx.t("account.mismatch"))
    try:
        check_password_rules(new)
    except ValidationError:
        return _account(ctx, 400, error=ctx.t("account.too_short", count=MIN_PASSWORD))
    try:
        ctx.web.auth.change_password(ctx.session, current, new, ctx.address)
    except LoginRefused:
        return _account(ctx, 400, error=ctx.t("account.wrong_current"))
    return RedirectResponse("/account?done=password", status_code=303)
