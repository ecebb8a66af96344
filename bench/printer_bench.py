"""Printer benchmark: bytes per ticket, print time at 115200 baud, render/print latency.

    python -m bench.printer_bench [--runs 50] [--no-serial]

Compares this package's raster layout (bands, feeds for blank rows, native QR, centred windows) with
python-escpos ``image()`` of the same ticket as one full-width raster, and with native-text mode.
Prints a table and writes bench/results/printer_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.printer import PrinterConfig, TicketContent, VirtualPrinter, open_printer
from drivers.printer.layout import RasterLayout, preview, ticket_elements
from drivers.printer.transport import escpos_printer

RESULTS = Path(__file__).resolve().parent / "results"
BAUD = 115200

STANDARD = TicketContent(
    center_name="Trung tâm Phục vụ hành chính công Phường Bến Thành",
    service_name="Hộ tịch",
    number="B023",
    counters=["3", "4"],
    issued_at=datetime(2026, 11, 23, 2, 41, tzinfo=UTC),
    waiting_ahead=12,
    qr_data="https://motcua.example.vn/t/79-0001/B023",
    footer="Xin cảm ơn quý khách!",
)
FULL = replace(
    STANDARD,
    citizen_name="Trần Thị Bích Ngọc",
    priority_label="Ưu tiên: người cao tuổi",
    footer="Xin cảm ơn quý khách! Vui lòng giữ phiếu đến khi được gọi.",
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def escpos_full_raster(content: TicketContent, width: int) -> bytes:
    """What python-escpos sends for the same ticket drawn as one image (QR as pixels), then cut."""
    image = preview(RasterLayout(width).blocks(ticket_elements(content)), width)
    dummy = escpos_printer().Dummy()
    dummy.hw("INIT")
    with contextlib.redirect_stdout(io.StringIO()):  # escpos prints a profile warning on every image()
        dummy.image(image, impl="bitImageRaster")
    dummy.cut()
    return bytes(dummy.output)


def timed_print(config: PrinterConfig, program: bytes) -> float:
    with open_printer(config) as p:
        t0 = time.perf_counter()
        p.print_raw(program)
        return time.perf_counter() - t0


def latency(config: PrinterConfig, content: TicketContent, runs: int) -> dict[str, float]:
    """print_ticket wall time: layout + encode + status before + send + status after."""
    samples = []
    with open_printer(config) as p:
        p.print_ticket(content)  # warm fonts and imports
        for _ in range(runs):
            t0 = time.perf_counter()
            p.print_ticket(content)
            samples.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": statistics.median(samples), "p99_ms": pct(samples, 0.99), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-serial", action="store_true", help="skip the (slow) modelled serial prints")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"baud": BAUD, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        sim = PrinterConfig(output_dir=tmp)
        for name, content in (("standard", STANDARD), ("full", FULL)):
            for width in (576, 384):
                variants = {
                    "raster (this package)": open_printer(replace(sim, width_dots=width)).render(content),
                    "raster, no centring": open_printer(
                        replace(sim, width_dots=width, raster_centering=False)
                    ).render(content),
                    "native CP1258": open_printer(
                        replace(sim, width_dots=width, mode="native", native_verified=True)
                    ).render(content),
                    "python-escpos image()": escpos_full_raster(content, width),
                }
                for variant, program in variants.items():
                    row = {
                        "ticket": name,
                        "width": width,
                        "variant": variant,
                        "bytes": len(program),
                        "wire_s": len(program) * 10 / BAUD,
                    }
                    if not args.no_serial and width == 576:
                        row["print_s"] = timed_print(replace(sim, line_baud=BAUD), program)
                    out["rows"].append(row)
        out["latency_inprocess"] = latency(sim, STANDARD, args.runs)
        vp = VirtualPrinter(Path(tmp) / "tcp")
        _, port = vp.serve_tcp()
        try:
            net = PrinterConfig(backend="network", host="127.0.0.1", port=port)
            out["latency_tcp9100"] = latency(net, STANDARD, args.runs)
        finally:
            vp.close()
        with open_printer(sim) as p:
            t0 = time.perf_counter()
            for _ in range(args.runs):
                p.render(STANDARD)
            out["render_ms"] = (time.perf_counter() - t0) * 1000 / args.runs

    print(f"{'ticket':9} {'width':>5}  {'variant':24} {'bytes':>7} {'wire s':>7} {'print s':>8}")
    for row in out["rows"]:
        printed = f"{row['print_s']:.3f}" if "print_s" in row else "-"
        print(
            f"{row['ticket']:9} {row['width']:>5}  {row['variant']:24} {row['bytes']:>7} "
            f"{row['wire_s']:>7.3f} {printed:>8}"
        )
    for key in ("latency_inprocess", "latency_tcp9100"):
        lat = out[key]
        print(f"{key}: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms over {lat['runs']} tickets")
    print(f"render (layout + encode) of the standard ticket: {out['render_ms']:.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "printer_bench.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
