"""Reports in the browser (``/reports``): a form (center or whole province, a month or a range of
days, XLSX or CSV) and the download (``/reports/download``), the same file ``main.py fleet report``
writes (``fleet.reports``). The download is scoped like every export: another center's or another
province's report is a 404, whatever the URL says; the ratings sheet is left out for roles without
``rating.view``. Bad input (a month that is not one, a range backwards or too long) is a 400 page in
Vietnamese, never a file."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response

from common.errors import ValidationError
from fleet.reports.build import Target, build_report
from fleet.reports.write import FORMATS, MEDIA_TYPES, render
from fleet.store.usage import MAX_DAYS, Period
from fleet.web.core import Ctx, endpoint

log = logging.getLogger(__name__)


def _last_month(today: date) -> str:
    previous = today.replace(day=1) - timedelta(days=1)
    return previous.strftime("%Y-%m")


@endpoint("fleet.view")
def reports_page(request: Request, ctx: Ctx) -> Response:
    store, params = ctx.web.store, request.query_params
    centers = store.registry.centers(ctx.scope)
    today = store.db.now().astimezone(ctx.web.zone).date()
    province = None
    if ctx.scope.kind == "province" and centers:
        province = (centers[0].province_id, centers[0].province_name)
    chosen = params.get("center") or (ctx.user.center_id if ctx.user and ctx.user.center_id else "")
    if chosen and chosen != "province":
        store.registry.center(ctx.scope, chosen)  # another center's: 404
    return ctx.web.render(
        ctx,
        "reports.html",
        centers=centers,
        province=province,
        chosen=chosen,
        month=params.get("month") or _last_month(today),
        first=params.get("from", ""),
        last=params.get("to", ""),
        span="range" if params.get("from") or params.get("to") else "month",
        formats=FORMATS,
    )


def _period(ctx: Ctx, params: dict[str, str]) -> Period:
    zone = ctx.web.zone
    month, first, last = params.get("month", "").strip(), params.get("from", ""), params.get("to", "")
    span = params.get("span") or ("range" if first or last else "month")
    if span == "range":
        try:
            first_day = date.fromisoformat(first or last)
            last_day = date.fromisoformat(last or first)
        except ValueError:
            raise ValidationError(ctx.t("usage.error.date")) from None
        if last_day < first_day:
            raise ValidationError(ctx.t("usage.error.order"))
        if (last_day - first_day).days + 1 > MAX_DAYS:
            raise ValidationError(ctx.t("usage.error.too_long"))
        return Period.days(first_day, last_day, zone)
    try:
        return Period.month(month, zone)
    except ValidationError:
        raise ValidationError(ctx.t("usage.error.month")) from None


def _refused(ctx: Ctx, message: str) -> Response:
    """A 400 page (the download is a link: the person sees a page, in their language, not JSON)."""
    return ctx.web.render(ctx, "error.html", status=400, message=ctx.t("error.bad_request", message=message))


@endpoint("fleet.view")
def download(request: Request, ctx: Ctx) -> Response:
    params = dict(request.query_params)
    form = params.get("format", "xlsx")
    if form not in FORMATS:
        return _refused(ctx, ctx.t("report.error.format"))
    center_id, province_id = params.get("center", ""), params.get("province", "")
    if center_id == "province":  # the form's "whole province" choice
        center_id, province_id = "", params.get("province_id", "")
    if bool(center_id) == bool(province_id):
        return _refused(ctx, ctx.t("report.error.target"))
    try:
        period = _period(ctx, params)
    except ValidationError as exc:
        return _refused(ctx, exc.message)
    target = Target("center", center_id) if center_id else Target("province", province_id)
    report = build_report(
        ctx.web.store, ctx.scope, target, period, ctx.web.zone, ratings=ctx.can("rating.view")
    )
    data = render(report, form)
    log.info(
        "report %s %s %s..%s (%s, %d bytes) for %s",
        target.kind,
        target.id,
        period.first_day,
        period.last_day,
        form,
        len(data),
        ctx.user.username if ctx.user else "-",
    )
    return Response(
        data,
        media_type=MEDIA_TYPES[form],
        headers={
            "Content-Disposition": f'attachment; filename="{report.filename(form)}"',
            "Cache-Control": "no-store",
        },
    )
