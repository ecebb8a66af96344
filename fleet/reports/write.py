"""A report as a file: XLSX (openpyxl, one worksheet per sheet) or CSV (one file, one section per
sheet: its title, its header row, its rows, a blank line). Both with Vietnamese headers; times in the
center's zone (XLSX: real date-times; CSV: ``2026-11-23 10:02:03``); CSV in UTF-8 with a BOM so that
Excel shows the letters, cells a spreadsheet would run as a formula defused (``spreadsheet_safe``)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from fleet.reports.build import Cell, Report
from fleet.web.format import spreadsheet_safe
from fleet.web.i18n import Translator

FORMATS = ("xlsx", "csv")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
_NUMBER_FORMATS = {"percent": "0.0", "hours": "0.00", "ms": "0.0", "int": "0"}
_MAX_WIDTH = 60


def to_xlsx(report: Report) -> bytes:
    tr = Translator("vi")
    book = Workbook()
    for empty in list(book.worksheets):  # the default sheet: ours are made below
        book.remove(empty)
    bold = Font(bold=True)
    for sheet in report.sheets:
        ws = book.create_sheet(_sheet_title(tr(f"report.sheet.{sheet.key}")))
        headers = [tr(key) for key in sheet.columns]
        ws.append(headers)
        for cell in ws[1]:
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        widths = [len(h) for h in headers]
        for row in sheet.rows:
            ws.append([_xlsx_value(v) for v in row])
            for i, value in enumerate(row):
                widths[i] = max(widths[i], len(_text(value)))
        for index, name in sheet.formats.items():
            for (cell,) in ws.iter_rows(min_row=2, min_col=index + 1, max_col=index + 1):
                cell.number_format = _NUMBER_FORMATS.get(name, "General")
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(_MAX_WIDTH, width + 2)
        ws.freeze_panes = "A2"
        for row_cells in ws.iter_rows(min_row=2):
            for cell in row_cells:
                if isinstance(cell.value, datetime):
                    cell.number_format = "dd/mm/yyyy hh:mm:ss"
    book.properties.title = f"{tr('report.title')}: {report.title}"
    book.properties.creator = tr("app.name")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_csv(report: Report) -> bytes:
    tr = Translator("vi")
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([tr("report.title"), report.title])
    for sheet in report.sheets:
        writer.writerow([])
        writer.writerow([f"# {tr(f'report.sheet.{sheet.key}')}"])
        writer.writerow([tr(key) for key in sheet.columns])
        for row in sheet.rows:
            writer.writerow([_csv_value(v) for v in row])
    return out.getvalue().encode("utf-8")


def render(report: Report, form: str) -> bytes:
    if form == "xlsx":
        return to_xlsx(report)
    if form == "csv":
        return to_csv(report)
    raise ValueError(f"report format {form!r}: expected one of {FORMATS}")


def _sheet_title(text: str) -> str:
    """Excel's limits: 31 characters, none of []:*?/\\."""
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in text)
    return cleaned[:31]


def _xlsx_value(value: Cell) -> Cell:
    # openpyxl writes strings as shared strings, never as formulas, except those starting with "="
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def _csv_value(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return format(value, "f").rstrip("0").rstrip(".") or "0"
    if isinstance(value, int):
        return str(value)
    return spreadsheet_safe(value)


def _text(value: Cell) -> str:
    if isinstance(value, datetime):
        return "00/00/0000 00:00:00"
    return "" if value is None else str(value)
