"""How times and values are shown: pages and CSV in the center's time zone, JSON in UTC ISO 8601."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from starlette.responses import JSONResponse, Response

from fleet.web.i18n import Translator


def page_time(when: datetime | None, zone: tzinfo) -> str:
    """23/11/2026 10:02:03 (Vietnamese order, the center's clock)."""
    return "" if when is None else when.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")


def page_day(iso: object) -> str:
    """A date field's value in the pages' order: ``2026-12-04`` -> ``04/12/2026``, a month field's
    ``2026-11`` -> ``11/2026``; anything else as it is. A browser draws ``<input type="date">`` in its
    own locale's order (an English Chrome: 12/04/2026 for 4 December), so the pages say the day beside
    it the way every other date on them is written (fleet.js keeps it in step while it is edited)."""
    text = str(iso or "")
    parts = text.split("-")
    if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
        return "/".join(reversed(parts))
    return text


def csv_time(when: datetime | None, zone: tzinfo) -> str:
    """2026-11-23 10:02:03: unambiguous, and read as a date-time by spreadsheets in any locale."""
    return "" if when is None else when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime, end: datetime) -> str:
    """How long something lasted, the same in every language: ``02:05:10``, ``3 d 02:05:10``."""
    seconds = max(0, int((end - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return value


@dataclass(frozen=True)
class Column:
    """One column of an exportable list: its JSON key, its header (catalog key), its value, and how
    the value reads in a spreadsheet (``text``; default: times formatted, codes as they are). A column
    with ``json`` False is the spreadsheet's only (words for people; JSON keeps machine values)."""

    key: str
    label: str
    value: Callable[[Any], Any]
    text: Callable[[Any, Translator], str] | None = None
    json: bool = True


NUMBER = re.compile(r"-?\d+(\.\d+)?")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @ first: CSV injection) gets a leading
    apostrophe; plain negative numbers stay numbers."""
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not NUMBER.fullmatch(text)):
        return "'" + text
    return text


def _cell(column: Column, row: Any, tr: Translator, zone: tzinfo) -> str:
    if column.text is not None:
        return spreadsheet_safe(column.text(row, tr))
    value = column.value(row)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return csv_time(value, zone)
    if isinstance(value, bool):
        return tr("common.yes") if value else tr("common.no")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return spreadsheet_safe(str(value))


def csv_response(filename: str, columns: Sequence[Column], rows: Iterable[Any], zone: tzinfo) -> Response:
    """CSV with Vietnamese headers and values (the language of reports), UTF-8 with a BOM so that
    Excel opens Vietnamese letters correctly, times in the center's zone."""
    tr = Translator("vi")
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([tr(c.label) for c in columns])
    for row in rows:
        writer.writerow([_cell(c, row, tr, zone) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def json_response(columns: Sequence[Column], rows: Iterable[Any], **meta: Any) -> JSONResponse:
    items = [{c.key: json_value(c.value(row)) for c in columns if c.json} for row in rows]
    return JSONResponse({**meta, "items": items})
