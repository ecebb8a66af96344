"""Configuration push: a form per pushable section, center-wide (``/centers/{id}/config``) or for one
kiosk (``/kiosks/{id}/config``), checked by the contract before anything is stored, versioned by the
store, published retained by the ingest's lease holder, and compared with what each kiosk reports it
applied (``config-state/1``). Every push is audited with the body before and after. A store whose
centers push their own configuration (``Configs.owner(center_id) == 'centers'``: a province, docs/province.md)
shows the states and refuses every push (409), its forms saying where configuration is pushed from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from contract.config import merge_scopes
from fleet.store import Scope, Store
from fleet.store.commands import CENTER_TARGET
from fleet.store.models import Change, ConfigState, Kiosk, KioskRow
from fleet.web import config_forms as forms
from fleet.web.core import Ctx, endpoint
from fleet.web.format import Column, json_response, json_value


@dataclass(frozen=True)
class KioskConfigRow:
    """One kiosk against what was pushed: applied, waiting, refused, or never reported."""

    kiosk: Kiosk
    state: ConfigState | None
    center_pushed: int | None
    kiosk_pushed: int | None
    status: str  # applied | waiting | app_pending | refused | unknown | none
    missing: list[forms.Difference]

    @property
    def applied_center(self) -> int | None:
        return self.state.center_version if self.state else None

    @property
    def applied_kiosk(self) -> int | None:
        return self.state.kiosk_version if self.state else None


def _status(state: ConfigState | None, center_pushed: int | None, kiosk_pushed: int | None) -> str:
    if center_pushed is None and kiosk_pushed is None:
        return "none"
    if state is None:
        return "unknown"
    refused = state.last_refused or {}
    wanted = {"center": center_pushed, "kiosk": kiosk_pushed}
    applied = {"center": state.center_version or 0, "kiosk": state.kiosk_version or 0}
    behind = [scope for scope, version in wanted.items() if version is not None and applied[scope] < version]
    if behind:
        if any(refused.get("scope") == s and refused.get("version") == wanted[s] for s in behind):
            return "refused"
        return "waiting"
    return "app_pending" if state.app_pending else "applied"


def kiosk_rows(store: Store, scope: Scope, center_id: str, kiosks: list[Kiosk]) -> list[KioskConfigRow]:
    latest = store.outgoing.latest_per_target(scope, center_id)
    states = store.outgoing.states(scope, center_id)
    center_push = latest.get(CENTER_TARGET)
    wanted: set[tuple[str, int]] = set()
    for kiosk in kiosks:
        state = states.get(kiosk.id)
        if state is not None:
            if state.center_version:
                wanted.add((CENTER_TARGET, state.center_version))
            if state.kiosk_version:
                wanted.add((kiosk.id, state.kiosk_version))
    bodies = store.outgoing.bodies(center_id, wanted)
    rows = []
    for kiosk in kiosks:
        state = states.get(kiosk.id)
        own = latest.get(kiosk.id)
        center_v = center_push.version if center_push else None
        kiosk_v = own.version if own else None
        applied = merge_scopes(
            bodies.get((CENTER_TARGET, (state.center_version or 0) if state else 0), {}),
            bodies.get((kiosk.id, (state.kiosk_version or 0) if state else 0), {}),
        )
        target = merge_scopes(center_push.body if center_push else {}, own.body if own else {})
        status = _status(state, center_v, kiosk_v)
        missing = forms.diff(applied, target) if status not in ("applied", "app_pending", "none") else []
        rows.append(KioskConfigRow(kiosk, state, center_v, kiosk_v, status, missing))
    return rows


def live_rows(
    ctx: Ctx, center_id: str, kiosk_id: str | None, changes: Sequence[Change]
) -> list[dict[str, str]]:
    """The configuration page's rows that changed, re-rendered: a kiosk that reported a state, or every
    row after a push was published (a change of the whole center)."""
    store, scope = ctx.web.store, ctx.scope
    whole_center = any(c.kiosk_id is None for c in changes)
    if kiosk_id is None and whole_center:
        rows: Sequence[KioskRow] = store.registry.kiosk_rows(scope, center_id, limit=1000).items  # the page's
    else:
        if kiosk_id is not None:
            wanted = [kiosk_id] if whole_center or any(c.kiosk_id == kiosk_id for c in changes) else []
        else:
            wanted = sorted({c.kiosk_id for c in changes if c.kiosk_id})
        rows = store.registry.kiosk_rows_by_id(scope, wanted)
    found = [r.kiosk for r in rows if r.kiosk.center_id == center_id]

    def html(row: KioskConfigRow) -> str:
        return ctx.web.fragment(ctx, "fragments.html", "config_row", row)

    fresh = kiosk_rows(store, scope, center_id, found)
    return [{"target": f"config-row:{r.kiosk.id}", "html": html(r)} for r in fresh]


STATE_COLUMNS = [
    Column("kiosk_id", "center.kiosk", lambda r: r.kiosk.id),
    Column("status", "config.status", lambda r: r.status),
    Column("center_pushed", "config.center_pushed", lambda r: r.center_pushed),
    Column("center_applied", "config.center_applied", lambda r: r.applied_center),
    Column("kiosk_pushed", "config.kiosk_pushed", lambda r: r.kiosk_pushed),
    Column("kiosk_applied", "config.kiosk_applied", lambda r: r.applied_kiosk),
    Column("app_pending", "config.app_pending", lambda r: r.state.app_pending if r.state else None),
    Column("last_refused", "config.last_refused", lambda r: r.state.last_refused if r.state else None),
    Column("reported_at", "config.reported_at", lambda r: r.state.received_at if r.state else None),
    Column("not_applied", "config.not_applied", lambda r: [d.key for d in r.missing]),
]


def _page(
    ctx: Ctx,
    center_id: str,
    target: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    section: str | None = None,
    draft: dict[str, Any] | None = None,
    message: str | None = None,
) -> Response:
    store, scope = ctx.web.store, ctx.scope
    change_id = store.changes.stream_start()  # before the rows: fleet.web.live
    center = store.registry.center(scope, center_id)
    kiosk = store.registry.kiosk(scope, target) if target != CENTER_TARGET else None
    latest = store.outgoing.latest(scope, center_id, target)
    body = latest.body if latest else {}
    center_push = store.outgoing.latest(scope, center_id, CENTER_TARGET) if kiosk is not None else latest
    if kiosk is not None:
        kiosks = [kiosk]
    else:
        kiosks = [r.kiosk for r in store.registry.kiosk_rows(scope, center_id, limit=1000).items]
    rows = kiosk_rows(store, scope, center_id, kiosks)
    history = store.outgoing.history(scope, center_id, target=target, limit=20)
    values = forms.form_values(body)
    if draft is not None and section is not None:
        values = forms.draft_values(section, draft, values)
    effective = merge_scopes(center_push.body if center_push else {}, body) if kiosk is not None else body
    return ctx.web.render(
        ctx,
        "config.html",
        status=status,
        center=center,
        kiosk=kiosk,
        target=target,
        latest=latest,
        center_push=center_push,
        values=values,
        errors=errors or {},
        section=section,
        rows=rows,
        history=history,
        effective=forms.diff({}, effective),
        sections=forms.SECTIONS,
        message=message,
        change_id=change_id,
        pushed_elsewhere=store.configs.owner(center_id) == "centers",
    )


def _json(ctx: Ctx, center_id: str, target: str) -> Response:
    store, scope = ctx.web.store, ctx.scope
    store.registry.center(scope, center_id)
    latest = store.outgoing.latest(scope, center_id, target)
    if target == CENTER_TARGET:
        kiosks = [r.kiosk for r in store.registry.kiosk_rows(scope, center_id, limit=1000).items]
    else:
        kiosks = [store.registry.kiosk(scope, target)]
    rows = kiosk_rows(store, scope, center_id, kiosks)
    return json_response(
        STATE_COLUMNS,
        rows,
        center=center_id,
        target=target,
        version=latest.version if latest else None,
        body=latest.body if latest else None,
        pushed_at=json_value(latest.pushed_at) if latest else None,
    )


def _get(request: Request, ctx: Ctx, center_id: str, target: str) -> Response:
    if request.query_params.get("format") == "json":
        return _json(ctx, center_id, target)
    done = request.query_params.get("done")
    message = None
    if done == "pushed":
        message = ctx.t("config.pushed", version=request.query_params.get("version", "?"))
    elif done == "unchanged":
        message = ctx.t("config.unchanged")
    return _page(ctx, center_id, target, message=message)


@endpoint("fleet.view")
def center_config(request: Request, ctx: Ctx) -> Response:
    center_id = request.path_params["center_id"]
    ctx.web.store.registry.center(ctx.scope, center_id)
    return _get(request, ctx, center_id, CENTER_TARGET)


@endpoint("fleet.view")
def kiosk_config(request: Request, ctx: Ctx) -> Response:
    kiosk = ctx.web.store.registry.kiosk(ctx.scope, request.path_params["kiosk_id"])
    return _get(request, ctx, kiosk.center_id, kiosk.id)


def _push(ctx: Ctx, center_id: str, target: str, path: str) -> Response:
    store, scope, user = ctx.web.store, ctx.scope, ctx.user
    assert user is not None and ctx.form is not None
    if store.configs.owner(center_id) == "centers":  # the center pushes its own, from its own fleet
        return _page(ctx, center_id, target, status=409, errors={"": ctx.t("config.owner_refused")})
    form = {k: v for k, v in ctx.form.items() if isinstance(v, str)}
    section = form.get("section", "")
    if section not in forms.SECTIONS:
        return _page(
            ctx, center_id, target, status=400, message=None, errors={"": ctx.t("config.bad_section")}
        )
    latest = store.outgoing.latest(scope, center_id, target)
    body = latest.body if latest else {}
    if form.get("action") == "clear":
        parsed = forms.Parsed()
        new_body = forms.apply_section(body, section, None)
    else:
        parsed = forms.read_section(section, form)
        if parsed.errors:
            return _page(
                ctx, center_id, target, status=400, errors=parsed.errors, section=section, draft=form
            )
        new_body = forms.apply_section(body, section, parsed.part)
    errors = forms.check(new_body, parsed)
    if errors:
        return _page(ctx, center_id, target, status=400, errors=errors, section=section, draft=form)
    if latest is not None and new_body == body:
        return RedirectResponse(f"{path}?done=unchanged#{section}", status_code=303)
    push = store.configs.record_push(scope, center_id, target, new_body, user.id)
    store.audit.record(
        "config.push",
        user_id=user.id,
        username=user.username,
        object_type="config",
        object_id=f"{target}@{push.version}",
        center_id=center_id,
        before={"version": latest.version if latest else None, "config": body},
        after={"version": push.version, "section": section, "config": new_body},
        address=ctx.address,
    )
    return RedirectResponse(f"{path}?done=pushed&version={push.version}#{section}", status_code=303)


@endpoint("config.push")
def push_center_config(request: Request, ctx: Ctx) -> Response:
    center_id = request.path_params["center_id"]
    ctx.web.store.registry.center(ctx.scope, center_id)
    return _push(ctx, center_id, CENTER_TARGET, f"/centers/{center_id}/config")


@endpoint("config.push")
def push_kiosk_config(request: Request, ctx: Ctx) -> Response:
    kiosk = ctx.web.store.registry.kiosk(ctx.scope, request.path_params["kiosk_id"])
    return _push(ctx, kiosk.center_id, kiosk.id, f"/kiosks/{kiosk.id}/config")
