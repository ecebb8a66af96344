"""The web's core: settings, the per-request context, and ``endpoint``, the one guard every route
goes through: session from the signed cookie, login required, CSRF on every state-changing request,
the role's permission, the user's scope, store errors turned into pages, and the server time.

Views never see a user without a scope: ``ctx.scope`` is what every store query takes.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from fleet.auth import Authenticator, LoginPolicy, can, scope_for
from fleet.store import Scope, Store
from fleet.store.models import Session, User
from fleet.web import contract_text
from fleet.web import format as fmt
from fleet.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "fleet_session"
PRE_COOKIE = "fleet_pre"  # the CSRF token of forms shown before login (login, language)
LANG_COOKIE = "fleet_lang"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECRET_KEY = "cookie_secret"


@dataclass(frozen=True)
class WebSettings:
    timezone: str = "Asia/Ho_Chi_Minh"
    page_size: int = 100
    live_poll_s: float = 0.5  # how often a live page's stream looks at the store's change log
    live_max_s: float = 300.0  # then the stream ends and the browser reconnects (Last-Event-ID)
    live_session_check_s: float = 10.0  # a logout or a locked account ends an open stream this fast
    login: LoginPolicy = field(default_factory=LoginPolicy)
    secure_cookies: bool | None = None  # None: Secure exactly when the request came over https


class Web:
    """What the views share: the store, the authenticator, templates, the cookie signer."""

    def __init__(self, store: Store, settings: WebSettings) -> None:
        self.store = store
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.auth = Authenticator(store, settings.login)
        # one key for every web process: kept in the store, made by the first process that starts
        secret = store.settings.get_or_create(SECRET_KEY, secrets.token_urlsafe(48))
        self.signer = URLSafeSerializer(secret, salt="fleet-cookie")
        self.jinja = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.jinja.filters["t_time"] = lambda when: fmt.page_time(when, self.zone)
        self.jinja.filters["t_day"] = fmt.page_day
        self.jinja.filters["device_class"] = device_class
        # an alarm's duration: until it ended, or until now while it is active
        self.jinja.filters["duration"] = lambda alarm: fmt.duration(
            alarm.started_at, alarm.ended_at or store.db.now()
        )
        # codes kiosks send, said in the page's language (fleet.web.contract_text): {{ card_result(t, code) }}
        self.jinja.globals["card_result"] = contract_text.card_result
        self.jinja.globals["lookup_outcome"] = contract_text.lookup_outcome
        self.jinja.globals["event_text"] = contract_text.event_text
        self.jinja.globals["kind_label"] = contract_text.kind_label
        self.jinja.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
        self.started = time.time()

    # --- cookies ---

    def unsign(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            loaded = self.signer.loads(value)
        except BadSignature:
            return None
        return loaded if isinstance(loaded, str) else None

    def secure(self, request: Request) -> bool:
        if self.settings.secure_cookies is not None:
            return self.settings.secure_cookies
        return request.url.scheme == "https"

    def set_cookie(
        self,
        response: Response,
        request: Request,
        name: str,
        value: str,
        max_age: int | None = None,
        *,
        http_only: bool = True,
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=http_only,
            samesite="lax",
            secure=self.secure(request),
        )

    # --- per request ---

    def context(self, request: Request) -> Ctx:
        token = self.unsign(request.cookies.get(SESSION_COOKIE))
        session = self.auth.session(token) if token else None
        lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        return Ctx(
            self, request, session, lang, Translator(lang), self.unsign(request.cookies.get(PRE_COOKIE))
        )

    def render(self, ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        page = self.jinja.get_template(template).render(
            ctx=ctx, t=ctx.t, user=ctx.user, csrf=ctx.csrf, lang=ctx.lang, **values
        )
        response = HTMLResponse(page, status_code=status)
        if ctx.new_pre_token:
            self.set_cookie(response, ctx.request, PRE_COOKIE, self.signer.dumps(ctx.new_pre_token))
        return response

    def fragment(self, ctx: Ctx, template: str, macro: str, *args: Any) -> str:
        """One macro of a template, for the live stream (the same markup the page drew)."""
        module = self.jinja.get_template(template).make_module(
            {"ctx": ctx, "t": ctx.t, "user": ctx.user, "csrf": ctx.csrf, "lang": ctx.lang}
        )
        return str(getattr(module, macro)(*args))

    def error(self, ctx: Ctx, status: int, key: str, **values: Any) -> Response:
        if wants_html(ctx.request):
            return self.render(ctx, "error.html", status=status, message=ctx.t(key, **values))
        return JSONResponse({"error": key, "message": Translator("en")(key, **values)}, status_code=status)


@dataclass
class Ctx:
    web: Web
    request: Request
    session: Session | None
    lang: str
    t: Translator
    pre_token: str | None  # from the pre-login cookie, when valid
    form: FormData | None = None
    new_pre_token: str | None = None

    @property
    def user(self) -> User | None:
        return self.session.user if self.session else None

    @property
    def scope(self) -> Scope:
        if self.user is None:
            raise PermissionDeniedError("not logged in")
        return scope_for(self.user)

    @property
    def csrf(self) -> str:
        """The token forms of this page carry: the session's, or before login the pre-login cookie's."""
        if self.session is not None:
            return self.session.csrf_token
        if self.pre_token is None and self.new_pre_token is None:
            self.new_pre_token = secrets.token_urlsafe(32)
        return self.pre_token or self.new_pre_token or ""

    @property
    def address(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    def can(self, permission: str) -> bool:
        return self.user is not None and can(self.user, permission)

    @property
    def here(self) -> str:
        """This page's path and query: where a form on it returns to."""
        url = self.request.url
        return url.path + (f"?{url.query}" if url.query else "")

    @property
    def section(self) -> str:
        first = self.request.url.path.strip("/").split("/")[0]
        return {"kiosks": "centers"}.get(first, first)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default


DEVICE_CLASSES = {"ok": "ok", "paper_near_end": "warn", "unknown": "muted", "missing": "muted"}


def device_class(state: str) -> str:
    """How a device state looks: ok, warn, muted (not there / not known) or bad (everything else)."""
    return DEVICE_CLASSES.get(state, "bad")


def wants_html(request: Request) -> bool:
    if request.query_params.get("format") in ("csv", "json"):
        return False
    if request.url.path.startswith("/live"):
        return False
    accept = request.headers.get("accept", "")
    return "application/json" not in accept or "text/html" in accept


def local_path(target: str | None, default: str = "/") -> str:
    """Only redirect inside the fleet (no //host, no scheme): a login link cannot send people away."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


View = Callable[[Request, Ctx], Response | Awaitable[Response]]


def check_csrf(ctx: Ctx, sent: str | None) -> bool:
    expected = ctx.session.csrf_token if ctx.session is not None else ctx.pre_token
    return bool(sent and expected and hmac.compare_digest(sent.encode(), expected.encode()))


def endpoint(permission: str | None = "fleet.view", *, login: bool = True) -> Callable[[View], Any]:
    """Wrap a view (sync: run in the thread pool; async: awaited) in the fleet's rules."""

    def decorate(view: View) -> Callable[[Request], Awaitable[Response]]:
        is_async = inspect.iscoroutinefunction(view)

        @functools.wraps(view)
        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            web: Web = request.app.state.web
            ctx = await run_in_threadpool(web.context, request)
            response = await _guarded(web, ctx, request, view, is_async, permission, login)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        handler.fleet_permission = permission  # type: ignore[attr-defined]
        handler.fleet_login = login  # type: ignore[attr-defined]
        return handler

    return decorate


async def _guarded(
    web: Web, ctx: Ctx, request: Request, view: View, is_async: bool, permission: str | None, login: bool
) -> Response:
    if login and ctx.user is None:
        if wants_html(request) and request.method in SAFE_METHODS:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return JSONResponse({"error": "login required"}, status_code=401)
    if request.method not in SAFE_METHODS:
        ctx.form = await request.form()
        sent = request.headers.get("x-csrf-token") or ctx.field("csrf") or None
        if not check_csrf(ctx, sent):
            log.warning(
                "CSRF token missing or wrong: %s %s from %s", request.method, request.url.path, ctx.address
            )
            return await run_in_threadpool(web.error, ctx, 403, "error.csrf")
    if permission is not None and not ctx.can(permission):
        return await run_in_threadpool(web.error, ctx, 403, "error.forbidden")
    try:
        if is_async:
            return await view(request, ctx)  # type: ignore[misc]
        return await run_in_threadpool(view, request, ctx)  # type: ignore[arg-type]
    except NotFoundError as exc:
        log.info("404 %s for %s: %s", request.url.path, ctx.user.username if ctx.user else "-", exc.message)
        return await run_in_threadpool(web.error, ctx, 404, "error.not_found")
    except PermissionDeniedError:
        return await run_in_threadpool(web.error, ctx, 403, "error.forbidden")
    except (ValidationError, ConflictError) as exc:
        return await run_in_threadpool(web.error, ctx, 400, "error.bad_request", message=exc.message)


def query_int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(params.get(name, default))
    except ValueError:
        return default
    return max(low, min(high, value))
