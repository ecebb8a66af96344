"""The fleet monitor's ASGI application (Starlette): ``create_app(store)``; ``fleet serve`` runs it
under uvicorn. Every route but login, the language toggle, static files and the health check goes
through ``fleet.web.core.endpoint`` (a test walks the routes to make sure)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.store import Store
from fleet.web import (
    live,
    views_admin,
    views_auth,
    views_config,
    views_console,
    views_enroll,
    views_fleet,
    views_ingest,
    views_notify,
    views_queue,
    views_queue_public,
    views_reports,
    views_usage,
)
from fleet.web.core import HERE, Web, WebSettings
from fleet.web.queue_web import QueueWeb, QueueWebSettings

#: no inline script or style anywhere: the pages work under this policy (browser tests check)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI (so streaming responses pass untouched): adds the headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def healthz(request: Request) -> Response:
    request.app.state.web.store.changes.latest_id()  # the store answers
    return PlainTextResponse("ok\n")


def routes() -> list[Route | Mount]:
    return [
        Route("/", views_auth.home, name="home"),
        Route("/login", views_auth.login_page, methods=["GET"], name="login"),
        Route("/login", views_auth.login_submit, methods=["POST"]),
        Route("/logout", views_auth.logout, methods=["POST"], name="logout"),
        Route("/language", views_auth.language, methods=["POST"], name="language"),
        Route("/account", views_auth.account, methods=["GET"], name="account"),
        Route("/account/password", views_auth.change_password, methods=["POST"], name="password"),
        Route("/centers", views_fleet.centers, name="centers"),
        Route("/centers/{center_id}", views_fleet.center, name="center"),
        Route("/kiosks/{kiosk_id}", views_fleet.kiosk, name="kiosk"),
        # the MQTT phase: console, blobs, configuration push, notification routes, ingest status
        Route("/kiosks/{kiosk_id}/commands", views_console.send, methods=["POST"], name="command"),
        Route("/kiosks/{kiosk_id}/blobs/{request_id}", views_console.blob, name="blob"),
        Route("/kiosks/{kiosk_id}/config", views_config.kiosk_config, methods=["GET"], name="kiosk_config"),
        Route("/kiosks/{kiosk_id}/config", views_config.push_kiosk_config, methods=["POST"]),
        Route(
            "/centers/{center_id}/config", views_config.center_config, methods=["GET"], name="center_config"
        ),
        Route("/centers/{center_id}/config", views_config.push_center_config, methods=["POST"]),
        Route("/centers/{center_id}/notifications", views_notify.routes_page, methods=["GET"], name="routes"),
        Route("/centers/{center_id}/notifications", views_notify.add_route, methods=["POST"]),
        Route("/notifications/{route_id}", views_notify.update_route, methods=["POST"], name="route"),
        Route("/ingest", views_ingest.ingest_status, name="ingest"),
        Route("/kiosks/{kiosk_id}/{list}", views_fleet.kiosk_list, name="kiosk_list"),
        Route("/alarms", views_fleet.alarms, name="alarms"),
        Route("/alarms/{alarm_id}/ack", views_fleet.acknowledge, methods=["POST"], name="ack"),
        Route("/users", views_admin.users, methods=["GET"], name="users"),
        Route("/users", views_admin.create_user, methods=["POST"]),
        Route("/users/{user_id}", views_admin.update_user, methods=["POST"], name="user"),
        Route("/audit", views_admin.audit, name="audit"),
        # kiosk enrollment (provisioning, docs/provisioning.md)
        Route("/enroll", views_enroll.enroll_page, name="enroll"),
        Route("/enroll/tokens", views_enroll.create_token, methods=["POST"]),
        Route("/enroll/tokens/{token_id}/cancel", views_enroll.cancel_token, methods=["POST"]),
        Route("/enroll/requests/{request_id}/{action}", views_enroll.decide, methods=["POST"]),
        Route("/enroll/allowlist", views_enroll.allowlist, methods=["POST"]),
        Route("/enroll/kiosks/{kiosk_id}", views_enroll.kiosk_identity, name="enroll_kiosk"),
        Route("/enroll/kiosks/{kiosk_id}/revoke", views_enroll.revoke, methods=["POST"]),
        # usage and reports (docs/reports.md)
        Route("/usage", views_usage.usage_page, name="usage"),
        Route("/usage/live", views_usage.usage_live, name="usage_live"),
        Route("/reports", views_reports.reports_page, name="reports"),
        Route("/reports/download", views_reports.download, name="report_download"),
        Route("/live", live.live, name="live"),
        *queue_routes(),
        Route("/healthz", healthz, name="healthz"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def queue_routes() -> list[Route]:
    """The queue at the counters (docs/queue.md): counter app, manager's page, hall display, phone page."""
    q, public = views_queue, views_queue_public
    return [
        Route("/counter", q.counter, name="counter"),
        Route("/counter/open", q.counter_open, methods=["POST"], name="counter_open"),
        Route("/counter/live", q.counter_live, name="counter_live"),
        Route("/counter/left/{ticket_id}", q.counter_left, methods=["POST"], name="counter_left"),
        Route("/counter/{action}", q.counter_action, methods=["POST"], name="counter_action"),
        Route("/queue/{center_id}", q.center_queue, name="center_queue"),
        Route(
            "/queue/{center_id}/settings", q.center_queue_settings, methods=["POST"], name="queue_settings"
        ),
        Route("/display/{token}", public.display, name="display"),
        Route("/display/{token}/live", public.display_live, name="display_live"),
        Route("/display/{token}/audio/{step_id}", public.display_audio, name="display_audio"),
        Route("/q/{token}", public.phone, name="phone"),
        Route("/q/{token}/live", public.phone_live, name="phone_live"),
        Route("/q/{token}/rate", public.phone_rate, methods=["POST"], name="phone_rate"),
        Route("/q/{token}/leave", public.phone_leave, methods=["POST"], name="phone_leave"),
    ]


def create_app(
    store: Store, settings: WebSettings | None = None, queue: QueueWebSettings | None = None
) -> ASGIApp:
    app = Starlette(routes=routes())
    app.state.web = Web(store, settings or WebSettings())
    app.state.queue = QueueWeb(store, queue or QueueWebSettings(), app.state.web.settings.timezone)
    return SecurityHeaders(app)
