"""The command console on a kiosk's page: a form per command of the contract, results live (the
kiosk page's stream re-draws the list when a result or a blob arrives), screenshots shown in the page
and log archives downloadable, only within the user's scope.

A command is checked by the contract (``contract.commands.Command``) before it is stored: a notice of
301 characters is refused on the form, in Vietnamese, not by the kiosk. It is stored ``pending`` with
its ``expires_at`` and published by the ingest's lease holder; the kiosk executes it at most once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.errors import NotFoundError
from contract.commands import BLOB_COMMANDS, COMMANDS, BlobInfo, Command
from contract.errors import ContractError
from contract.schema import parse_dataclass, to_data
from fleet.store import Scope, Store
from fleet.store.models import Alarm, Blob, KioskRow
from fleet.store.models import Command as StoredCommand
from fleet.web.contract_text import Outcome, ShownArg, command_args, command_outcome, field_error
from fleet.web.core import Ctx, endpoint
from fleet.web.i18n import Translator

#: the console's commands, in the order the page shows them
CONSOLE = (
    "print_test_ticket",
    "set_notice",
    "set_service_mode",
    "screenshot",
    "upload_logs",
    "reload_config",
    "restart_app",
)
LIFETIMES = {
    "900": timedelta(minutes=15),
    "3600": timedelta(hours=1),
    "86400": timedelta(days=1),
    "604800": timedelta(days=7),
}
DEFAULT_LIFETIME = "3600"
assert set(CONSOLE) == set(COMMANDS), "the console must offer every command of the contract"


@dataclass(frozen=True)
class ConsoleEntry:
    """A command as the console lists it, with its blob (when one was announced) and whether the blob
    is what the result said (size and SHA-256)."""

    command: StoredCommand
    blob: Blob | None
    announced: dict[str, Any] | None

    @property
    def blob_ok(self) -> bool:
        return (
            self.blob is not None
            and self.announced is not None
            and self.blob.size == self.announced.get("bytes")
            and self.blob.sha256 == self.announced.get("sha256")
        )

    @property
    def blob_state(self) -> str:
        """none | elsewhere (another fleet's command: its blob is kept there) | waiting (announced, not
        here yet) | ok | mismatch."""
        if self.announced is None:
            return "none"
        if self.command.sent_elsewhere:
            return "elsewhere"
        if self.blob is None:
            return "waiting"
        return "ok" if self.blob_ok else "mismatch"

    @property
    def content_type(self) -> str | None:
        return self.announced.get("content_type") if self.announced else None

    def outcome(self, tr: Translator) -> Outcome | None:
        return command_outcome(tr, self.command)

    def shown_args(self, tr: Translator) -> list[ShownArg]:
        return command_args(tr, self.command.command, self.command.args)


def announced_blob(command: StoredCommand) -> dict[str, Any] | None:
    if command.status != "ok" or command.command not in BLOB_COMMANDS or not command.result:
        return None
    try:
        info: dict[str, Any] = to_data(parse_dataclass(BlobInfo, command.result, "result", lenient=True))
        return info
    except ContractError:
        return None


def entries(store: Store, scope: Scope, kiosk_id: str, *, limit: int = 20) -> list[ConsoleEntry]:
    listed = store.commands.for_kiosk(scope, kiosk_id, limit=limit)
    blobs = store.blobs.infos(scope, kiosk_id, [c.request_id for c in listed if c.command in BLOB_COMMANDS])
    return [ConsoleEntry(c, blobs.get(c.request_id), announced_blob(c)) for c in listed]


def live_parts(ctx: Ctx, row: KioskRow) -> list[tuple[str, str]]:
    """What the kiosk page's stream re-draws besides the state and the devices: (target, html)."""
    store, scope, kiosk_id = ctx.web.store, ctx.scope, row.kiosk.id
    commands = entries(store, scope, kiosk_id)
    alarms: list[Alarm] = list(store.alarms.page(scope, active=None, kiosk_id=kiosk_id, limit=20).items)
    return [
        (
            f"kiosk-commands:{kiosk_id}",
            ctx.web.fragment(ctx, "console.html", "command_list", row.kiosk, commands),
        ),
        (f"kiosk-alarms:{kiosk_id}", ctx.web.fragment(ctx, "console.html", "alarm_list", row.kiosk, alarms)),
    ]


def _args(command: str, form: dict[str, str]) -> dict[str, Any]:
    if command == "set_notice":
        return {
            "text_vi": form.get("text_vi", "").replace("\r\n", "\n").strip(),
            "text_en": form.get("text_en", "").replace("\r\n", "\n").strip(),
        }
    if command == "set_service_mode":
        return {
            "out_of_service": form.get("out_of_service") == "on",
            "reason": form.get("reason", "").strip(),
        }
    if command == "upload_logs":
        raw = form.get("max_kb", "").strip()
        if not raw:
            return {}
        try:
            return {"max_kb": int(raw)}
        except ValueError:
            return {"max_kb": raw}  # the contract says what is wrong with it
    return {}


@endpoint("command.send")
def send(request: Request, ctx: Ctx) -> Response:
    from fleet.web.views_fleet import render_kiosk

    store, scope, user = ctx.web.store, ctx.scope, ctx.user
    assert user is not None and ctx.form is not None
    kiosk = store.registry.kiosk(scope, request.path_params["kiosk_id"])
    form = {k: v for k, v in ctx.form.items() if isinstance(v, str)}
    command = form.get("command", "")
    if command not in COMMANDS:
        raise NotFoundError(f"no command {command!r}")
    if command == "restart_app" and form.get("confirm") != "on":
        return render_kiosk(
            ctx,
            kiosk.id,
            status=400,
            console_error=(command, ctx.t("console.confirm_needed")),
            console_draft=form,
        )
    lifetime = LIFETIMES.get(form.get("lifetime", DEFAULT_LIFETIME), LIFETIMES[DEFAULT_LIFETIME])
    request_id = f"fleet-{secrets.token_hex(10)}"
    try:
        message = Command.build(
            request_id, command, _args(command, form), lifetime=lifetime, now=store.db.now()
        )
    except ContractError as exc:
        return render_kiosk(
            ctx,
            kiosk.id,
            status=400,
            console_error=(command, field_error(exc.message).text),
            console_draft=form,
        )
    args = to_data(message.args)
    created = store.commands.create(
        scope, kiosk.id, command, args, user.id, expires_at=message.expires, request_id=request_id
    )
    store.audit.record(
        "command.create",
        user_id=user.id,
        username=user.username,
        object_type="kiosk",
        object_id=kiosk.id,
        center_id=kiosk.center_id,
        after={
            "request_id": created.request_id,
            "command": command,
            "args": args,
            "expires_at": message.expires_at,
        },
        address=ctx.address,
    )
    return RedirectResponse(f"/kiosks/{kiosk.id}?done=command&request={request_id}#console", status_code=303)


@endpoint("fleet.view")
def blob(request: Request, ctx: Ctx) -> Response:
    """The bytes of a screenshot (shown inline) or a log archive (downloaded), in scope only, and only
    when they are exactly what the command's result announced."""
    store, scope = ctx.web.store, ctx.scope
    kiosk_id, request_id = request.path_params["kiosk_id"], request.path_params["request_id"]
    store.registry.kiosk(scope, kiosk_id)
    found = store.outgoing.command(scope, kiosk_id, request_id)
    announced = announced_blob(found)
    data = store.blobs.get(scope, kiosk_id, request_id)
    if announced is None or data.size != announced.get("bytes") or data.sha256 != announced.get("sha256"):
        raise NotFoundError(f"blob {request_id} of {kiosk_id} does not match its command's result")
    if announced.get("content_type") == "image/png":
        headers = {
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": f'inline; filename="man-hinh-{kiosk_id}-{request_id}.png"',
        }
        return Response(data.data, media_type="image/png", headers=headers)
    headers = {
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'attachment; filename="nhat-ky-{kiosk_id}-{request_id}.log.gz"',
    }
    return Response(data.data, media_type="application/gzip", headers=headers)
