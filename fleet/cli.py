"""``python main.py fleet allocator|tickets ...``: the center's side of queue numbers.

``allocator`` runs the center allocator until SIGTERM/SIGINT; ``tickets`` prints a day's book from the
allocator's database (per service: printed, voided, offline, called, online numbers missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from common.errors import ConfigError

HELP = "center services: the queue-number allocator and its book"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", required=True, metavar="SERVICE")
    alloc = sub.add_parser("allocator", help="run the queue-number allocator of one center")
    alloc.add_argument("--center", required=True, help="center id (topics motcua/v1/{center}/...)")
    alloc.add_argument("--db", type=Path, required=True, help="SQLite file of the allocator's book")
    alloc.add_argument("--broker", default="127.0.0.1:8884", help="HOST:PORT of the center-services listener")
    alloc.add_argument("--ca", type=Path, help="the center's CA certificate (TLS)")
    alloc.add_argument("--cert", type=Path, help="client certificate with CN 'allocator'")
    alloc.add_argument("--key", type=Path, help="its private key")
    alloc.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="the center's time zone (its day)")
    alloc.add_argument("--offline-base", type=int, default=800, help="first number of the offline blocks")
    alloc.add_argument("--offline-block", type=int, default=20, help="offline numbers per kiosk slot")
    alloc.add_argument("--topic-root", default="motcua/v1")
    alloc.set_defaults(func=run_allocator)
    book = sub.add_parser("tickets", help="print one day of the allocator's book")
    book.add_argument("--db", type=Path, required=True)
    book.add_argument("--day", help="YYYY-MM-DD (default: today in the center's time zone)")
    book.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    book.add_argument("--json", action="store_true", help="every ticket as JSON lines")
    book.set_defaults(func=run_tickets)


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--broker: expected HOST:PORT, got {text!r}")
    return host, int(port)


def run_allocator(args: argparse.Namespace) -> int:
    from contract.errors import ContractError
    from contract.tickets import NumberPlan
    from fleet.allocator import Allocator, AllocatorSettings

    host, port = _broker(args.broker)
    try:
        plan = NumberPlan(args.offline_base, args.offline_block)
    except ContractError as exc:
        raise ConfigError(f"--offline-base/--offline-block: {exc.message}") from exc
    if (args.cert is None) != (args.key is None):
        raise ConfigError("--cert and --key go together")
    settings = AllocatorSettings(
        center_id=args.center, db_path=args.db, host=host, port=port, ca_file=args.ca,
        cert_file=args.cert, key_file=args.key, topic_root=args.topic_root, timezone=args.timezone, plan=plan,
    )
    allocator = Allocator(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    allocator.start()
    logging.getLogger(__name__).info("allocator of %s on %s:%d, book %s", args.center, host, port, args.db)
    stop.wait()
    allocator.stop()
    return 0


def run_tickets(args: argparse.Namespace) -> int:
    from contract.tickets import NumberPlan, center_day, center_zone
    from fleet.allocator import AllocatorBook

    if not args.db.exists():
        raise ConfigError(f"--db: {args.db} does not exist")
    zone = center_zone(args.timezone)
    day = args.day or center_day(datetime.now(UTC), zone)
    book = AllocatorBook(args.db, NumberPlan(), zone)
    try:
        if args.json:
            for ticket in book.tickets(day):
                print(json.dumps(ticket, ensure_ascii=False))
            return 0
        summary = book.summary(day)
        print(f"{day}: {'service':<12} {'printed':>7} {'voided':>6} {'open':>5} {'offline':>7} "
              f"{'called':>6} {'last':>5} {'missing':>7}")
        for service, s in sorted(summary.items()):
            print(f"{'':12}{service:<12} {s['printed']:>7} {s['voided']:>6} {s['allocated']:>5} "
                  f"{s['offline']:>7} {s['called']:>6} {s['online_last']:>5} {s['online_missing']:>7}")
        for at, kiosk, request_id, reason in book.conflicts():
            print(f"conflict {at} {kiosk} {request_id}: {reason}")
    finally:
        book.close()
    return 0
