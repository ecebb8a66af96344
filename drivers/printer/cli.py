"""``python main.py printer ...``: technician tools for printers and the virtual printer.

printer serve [--port 9100]          a virtual network printer; PNGs of what it receives
printer status [device options]      DLE EOT status of a printer
printer test-page [device options]   every Vietnamese letter, the QR, the configured width
printer codepage-test --codepage-table N [device options]
                                     the letters in the printer's own font (native mode), then as
                                     raster; set native_verified = true only if both lines match
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

HELP = "printers: status, test page, code page check, virtual network printer"


def _letters() -> str:
    lower = [
        unicodedata.normalize("NFC", b + t)
        for b in "aăâeêioôơuưy"
        for t in ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
    ]
    return "".join(lower) + "".join(c.upper() for c in lower) + "đĐ"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="printer_command", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="run a virtual network printer (raw TCP, like port 9100)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9100)
    serve.add_argument("--output-dir", default="var/printer")
    serve.add_argument("--width", type=int, default=576)
    serve.add_argument("--line-baud", type=int, default=0)
    serve.set_defaults(func=_serve)
    for name, func, text in (
        ("status", _status, "query DLE EOT status"),
        ("test-page", _test_page, "print the technician test page"),
        ("codepage-test", _codepage_test, "compare native Vietnamese text with raster"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--backend", default="simulator", choices=["simulator", "usb", "serial", "network"])
        p.add_argument("--role", default="ticket", choices=["ticket", "receipt"])
        p.add_argument("--width", type=int, default=576)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=9100)
        p.add_argument("--device", default="/dev/ttyUSB0")
        p.add_argument("--baudrate", type=int, default=115200)
        p.add_argument("--vendor-id", type=lambda v: int(v, 16), default=0, help="hex, e.g. 04b8")
        p.add_argument("--product-id", type=lambda v: int(v, 16), default=0, help="hex, e.g. 0e15")
        p.add_argument("--output-dir", default="var/printer")
        p.add_argument("--codepage-table", type=int, default=52, help="ESC t n of CP1258 on this printer")
        p.set_defaults(func=func)


def _config(args: argparse.Namespace) -> object:
    from .model import PrinterConfig

    return PrinterConfig(
        backend=args.backend,
        role=args.role,
        width_dots=args.width,
        host=args.host,
        port=args.port,
        device=args.device,
        baudrate=args.baudrate,
        vendor_id=args.vendor_id,
        product_id=args.product_id,
        output_dir=args.output_dir,
        codepage_table=args.codepage_table,
    )


def _serve(args: argparse.Namespace) -> int:
    from .simulator import VirtualPrinter

    vp = VirtualPrinter(Path(args.output_dir), width_dots=args.width, line_baud=args.line_baud)
    host, port = vp.serve_tcp(args.host, args.port)
    print(f"virtual printer listening on {host}:{port}, tickets to {args.output_dir} (Ctrl-C stops)")
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            for path in [*vp.printed, *vp.torn][seen:]:
                print(path)
            seen = len(vp.printed) + len(vp.torn)
    except KeyboardInterrupt:
        return 0
    finally:
        vp.close()


def _status(args: argparse.Namespace) -> int:
    from .model import PrinterConfig
    from .printer import open_printer

    config = _config(args)
    assert isinstance(config, PrinterConfig)
    with open_printer(config) as printer:
        status = printer.status()
    print(json.dumps({**asdict(status), "problem": status.problem}))
    return 0 if status.problem is None else 1


def _test_page(args: argparse.Namespace) -> int:
    from .model import DocumentContent, PrinterConfig
    from .printer import open_printer

    config = _config(args)
    assert isinstance(config, PrinterConfig)
    letters = _letters()
    doc = DocumentContent(
        title="Trang in thử máy in",
        lines=[
            ("Thiết bị", config.describe()),
            ("Khổ in", f"{config.width_dots} điểm"),
            ("Thời gian", datetime.now(UTC).astimezone().strftime("%H:%M %d/%m/%Y")),
            *((f"{i // 24 + 1}", letters[i : i + 24]) for i in range(0, len(letters), 24)),
        ],
        qr_data="https://motcua.example.vn/kiem-tra-may-in",
        footer="Mọi chữ cái và dấu phải rõ ràng, không có ô vuông hay dấu hỏi.",
    )
    with open_printer(config) as printer:
        report = printer.print_document(doc)
    print(
        f"printed {report.bytes_sent} bytes in {report.seconds:.2f} s"
        + (f": {report.png}" if report.png else "")
    )
    return 0


def _codepage_test(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .encode import native_program, raster_program
    from .layout import Line, RasterLayout, Space
    from .model import PrinterConfig
    from .printer import open_printer

    config = _config(args)
    assert isinstance(config, PrinterConfig)
    letters = _letters()
    elements = [Line(f"CP1258, ESC t {config.codepage_table}:", "bold")] + [
        Line(letters[i : i + 24]) for i in range(0, len(letters), 24)
    ]
    # native_verified is what this page is for, so it is set only for building the native half
    native = native_program([*elements, Space(8)], replace(config, mode="native", native_verified=True))
    raster = raster_program(
        RasterLayout(config.width_dots).blocks([Line("Raster (đúng):", "bold"), *elements[1:], Space(24)]),
        config,
    )
    with open_printer(config) as printer:
        printer.print_raw(native[: -len(b"\x1dVB\x00")] + raster)
        png = printer.simulator.last_png if printer.simulator else None
    print("compare the two blocks letter by letter" + (f": {png}" if png else ""))
    return 0
