"""``main.py fleet report``: a report file from the command line (cron, a monthly mail), the same
report the web's ``/reports`` page downloads. The CLI sees every center (``Scope.everything``)."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.errors import ConfigError, ValidationError


def configure(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_db: str) -> None:
    report = sub.add_parser(
        "report",
        help="write a report (tickets, ratings, availability, alarms) of a center or a province as XLSX/CSV",
    )
    report.add_argument("--db", default=default_db, help="store URL (as for serve)")
    whom = report.add_mutually_exclusive_group(required=True)
    whom.add_argument("--center", help="center id")
    whom.add_argument("--province", help="province id: every center of it")
    report.add_argument("--month", help="YYYY-MM: that calendar month")
    report.add_argument("--from", dest="first", help="YYYY-MM-DD: first day (with --to)")
    report.add_argument("--to", dest="last", help="YYYY-MM-DD: last day, included")
    report.add_argument("--xlsx", type=Path, help="write the XLSX workbook here")
    report.add_argument("--csv", type=Path, help="write the CSV file here")
    report.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="the center's zone (its days)")
    report.set_defaults(func=run_report)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: expected YYYY-MM-DD, got {text[:20]!r}") from None


def run_report(args: argparse.Namespace) -> int:
    from fleet.reports.build import Target, build_report
    from fleet.reports.write import render
    from fleet.store import Scope, open_store
    from fleet.store.usage import Period

    if not args.xlsx and not args.csv:
        raise ConfigError("report: give --xlsx FILE and/or --csv FILE")
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--timezone: unknown time zone {args.timezone!r}") from exc
    if args.month and (args.first or args.last):
        raise ConfigError("report: --month or --from/--to, not both")
    try:
        if args.month:
            period = Period.month(args.month, zone)
        elif args.first and args.last:
            period = Period.days(_day(args.first, "--from"), _day(args.last, "--to"), zone)
        else:
            raise ConfigError("report: give --month YYYY-MM, or --from and --to")
    except ValidationError as exc:
        raise ConfigError(f"report: {exc.message}") from exc
    target = Target("center", args.center) if args.center else Target("province", args.province)
    store = open_store(args.db)
    try:
        report = build_report(store, Scope.everything(), target, period, zone)
    finally:
        store.close()
    for form, path in (("xlsx", args.xlsx), ("csv", args.csv)):
        if path is None:
            continue
        data = render(report, form)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, path)  # never a half-written report under the final name
        print(f"{path}: {len(data)} bytes")
    t = report.totals
    satisfied = "-" if t["satisfied_percent"] is None else f"{t['satisfied_percent']:.1f} %"
    print(
        f"{report.title}, {period.first_day} to {period.last_day}: {t['issued']} numbers, "
        f"{t['ratings']} ratings, satisfied {satisfied}, {t['alarms']} alarms"
    )
    return 0
