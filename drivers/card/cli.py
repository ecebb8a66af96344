"""``python main.py card read|self-test``: read a CCCD through PC/SC and print one JSON object.

Exit status 0 with the identity, or non-zero with ``{"error": {...}}``; personal fields are masked
unless ``--show-personal-data`` (the technician decides to show them, on this screen only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.card.keys import AccessKey

HELP = "read a chip ID card (CCCD) through PC/SC"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="card_command", required=True, metavar="ACTION")
    read = sub.add_parser("read", help="read and verify the card in the reader")
    read.add_argument("--reader", help="part of the PC/SC reader name (default: the first reader)")
    keys = read.add_mutually_exclusive_group(required=True)
    keys.add_argument("--doc-number", help="document number from the MRZ (9 digits on a CCCD)")
    keys.add_argument("--can", help="card access number (PACE; last 6 digits of the ID number on CCCD)")
    keys.add_argument("--cccd-qr", help="text of the QR on the card's front")
    read.add_argument("--birth", help="birth date YYMMDD (with --doc-number)")
    read.add_argument("--expiry", help="expiry date YYMMDD (with --doc-number)")
    read.add_argument("--photo", type=Path, help="also read DG2 and write the face image here")
    read.add_argument("--trust", type=Path, help="folder of CSCA certificates / master lists")
    read.add_argument("--show-personal-data", action="store_true", help="print fields unmasked")
    read.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole read")
    read.add_argument("--extended", action="store_true", help="use extended-length READ BINARY")
    read.add_argument("--no-active-auth", action="store_true", help="skip DG15 active authentication")
    read.add_argument("--json", action="store_true", help="print JSON (the only output format)")
    read.set_defaults(func=run_read)
    test = sub.add_parser("self-test", help="reader found? card answering? (no key, no personal data)")
    test.add_argument("--reader", help="part of the PC/SC reader name")
    test.add_argument("--timeout", type=float, default=5.0)
    test.set_defaults(func=run_self_test)


def _keys(args: argparse.Namespace) -> list[AccessKey]:
    from drivers.card.keys import AccessKey, access_keys_from_cccd_qr

    if args.cccd_qr:
        return access_keys_from_cccd_qr(args.cccd_qr)
    if args.can:
        return [AccessKey.from_can(args.can)]
    if not (args.birth and args.expiry):
        raise ValueError("--doc-number needs --birth and --expiry (YYMMDD)")
    return [AccessKey.from_mrz(args.doc_number, args.birth, args.expiry)]


def _print(obj: dict[str, Any]) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def run_read(args: argparse.Namespace) -> int:
    from common.entry import exit_code_for
    from drivers.card.errors import CardError
    from drivers.card.service import CardReaderService

    service = CardReaderService(
        args.reader,
        args.trust,
        args.timeout,
        active_auth=not args.no_active_auth,
        extended_block=65511 if args.extended else None,
    )
    try:
        keys = _keys(args)
        record = service.read_identity(keys, with_photo=args.photo is not None)
    except ValueError as exc:
        _print({"error": {"type": "UsageError", "code": "usage", "message": str(exc)}})
        return 64
    except CardError as exc:
        report = service.last_report
        out: dict[str, Any] = {"error": exc.to_dict()}
        if report is not None:
            out["timings"], out["apdu_count"] = report.timings_ms, report.apdu_count
        _print(out)
        return exit_code_for(exc)
    try:
        out = record.to_json(show_personal_data=args.show_personal_data)
        if args.photo is not None and record.photo:
            args.photo.write_bytes(record.photo)
            out["photo_file"] = str(args.photo)
        report = service.last_report
        assert report is not None
        out["timings"], out["apdu_count"], out["key"] = report.timings_ms, report.apdu_count, report.key_label
        out["access_control"] = report.access_control
        _print(out)
    finally:
        record.wipe()
    return 0


def run_self_test(args: argparse.Namespace) -> int:
    from drivers.card.service import CardReaderService

    result = CardReaderService(args.reader, None, args.timeout).self_test()
    _print(result)
    return 0 if result["reader_found"] and result["error"] is None else 69
