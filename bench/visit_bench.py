"""The visit's back-end numbers: VietQR build time, the printed fee slip read back by both decoders,
and the delivery request's round trip through the HTTP adapter to a local server.

    python -m bench.visit_bench [--rounds 30]

Prints a table and writes bench/results/visit_bench.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from drivers.scanner.decode import ZbarDecoder, ZxingDecoder
from kiosk.dossier import DeliveryRequest, DemoDossierStore, HttpDossierBackend, parse_dossier_code
from kiosk.payments import VietQrPayment, build_vietqr, parse_vietqr
from kiosk.runtime import KioskRuntime, demo_config

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any], rounds: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 3),
            "max_ms": round(samples[-1], 3), "n": rounds}


def bench_build(rounds: int) -> dict[str, float]:
    payment = VietQrPayment("970415", "113366668888", 75_000, "000.31.25.H29-261106-0102")
    return timed(lambda: [build_vietqr(payment) for _ in range(100)], rounds)  # per 100 codes


def bench_printed_slip(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = demo_config(Path(tmp) / "k")
        devices = dataclasses.replace(
            config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
        )
        runtime = KioskRuntime(dataclasses.replace(config, devices=devices), synchronous=True)
        try:
            store = runtime.devices.dossiers
            assert isinstance(store, DemoDossierStore)
            [code] = [c for c in store.codes() if c.sequence == "0102"]
            core = runtime.core
            core.start("lookup")
            core.scanned(code.text)
            core.pump()
            status = core.flow.status  # type: ignore[union-attr]
            printer = runtime.devices.printer
            assert printer is not None and printer.simulator is not None

            def print_slip() -> None:
                core.start("payment", status=status)
                core.act("print")
                core.pump()

            printing = timed(print_slip, rounds)
            png = printer.simulator.last_png
            assert png is not None
            image = Image.open(png).convert("L")
            zbar = ZbarDecoder()
            result: dict[str, Any] = {"print_slip": printing, "png": f"{image.width}x{image.height}"}
            for decoder in (ZxingDecoder(), zbar):
                [found] = decoder.decode(image)
                parse_vietqr(found.text)
                result[f"decode_{decoder.name}"] = timed(lambda d=decoder: d.decode(image), rounds)  # type: ignore[misc]
            zbar.close()
            return result
        finally:
            runtime.stop()


def bench_delivery_http(rounds: int) -> dict[str, float]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"request_number": "BD-1", "fee_vnd": 30000}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api"
        backend = HttpDossierBackend(url, allow_insecure_http=True)
        code = parse_dossier_code("000.20.35.H35-261119-000091")
        request = DeliveryRequest(code, "Số 7 Trần Hưng Đạo, Q1", "0987654321")
        return timed(lambda: backend.request_delivery(request), rounds)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    results = {
        "machine": platform.platform(),
        "vietqr_build_per_100": bench_build(args.rounds),
        "fee_slip": bench_printed_slip(args.rounds),
        "delivery_http_roundtrip": bench_delivery_http(args.rounds),
    }
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "visit_bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
