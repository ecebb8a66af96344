"""The visit's flows on the real runtime without a window: the real effect handlers, the demo store or
the HTTP adapter on a real local server, the virtual printers' PNGs read back by both QR decoders."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pyzbar import pyzbar

from drivers.scanner.decode import ZbarDecoder, ZxingDecoder
from kiosk.config import KioskConfig
from kiosk.dossier import Appointment, DemoDossierStore, DossierStatus, LookupConfig
from kiosk.flows.base import Flow
from kiosk.payments import crc16_ccitt_false, parse_vietqr
from kiosk.runtime import KioskRuntime, demo_config
from tests.conftest import ARTIFACTS
from tests.lookup.conftest import ProvinceServer, Reply

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ADDRESS = "Số 7 đường Trần Hưng Đạo, phường Cầu Ông Lãnh, TP. Hồ Chí Minh"
PHONE = "0987654321"


def keep(png: Path, name: str) -> None:
    """The printed slip for the report and review (artifacts/slips/, not committed)."""
    folder = ARTIFACTS / "slips"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, folder / name)


def kiosk_config(tmp_path: Path, **changes: Any) -> KioskConfig:
    config = demo_config(tmp_path / "kiosk")
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    return dataclasses.replace(config, devices=devices, **changes)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    made = KioskRuntime(kiosk_config(tmp_path), synchronous=True)
    yield made
    made.stop()


def flow(runtime: KioskRuntime) -> Any:
    current: Flow | None = runtime.core.flow
    assert current is not None
    return current


def look_up(runtime: KioskRuntime, sequence: str) -> DossierStatus:
    store = runtime.devices.dossiers
    assert isinstance(store, DemoDossierStore)
    [code] = [c for c in store.codes() if c.sequence == sequence]
    runtime.core.start("lookup")
    runtime.core.scanned(code.text)
    runtime.core.pump()
    status = flow(runtime).status
    assert isinstance(status, DossierStatus)
    return status


def events(runtime: KioskRuntime, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in runtime.journal.pending() if e.kind == kind]


def test_printed_fee_qr_decodes_field_by_field_with_both_decoders(runtime: KioskRuntime) -> None:
    status = look_up(runtime, "0102")
    assert status.fee_due is not None and not status.fee_due.paid
    runtime.core.start("payment", status=status)
    runtime.core.act("shown")
    runtime.core.act("print")
    runtime.core.pump()
    assert flow(runtime).printed and flow(runtime).error_key is None
    assert runtime.devices.printer is not None and runtime.devices.printer.simulator is not None
    png = runtime.devices.printer.simulator.last_png
    assert png is not None
    keep(png, "fee-qr-slip.png")
    image = Image.open(png).convert("L")
    visit = runtime.config.visit
    zbar = ZbarDecoder()
    texts = [d.text for d in ZxingDecoder().decode(image)] + [d.text for d in zbar.decode(image)]
    zbar.close()
    texts += [d.data.decode("ascii") for d in pyzbar.decode(image)]  # pyzbar as it comes, too
    assert len(texts) == 3 and len(set(texts)) == 1
    parsed = parse_vietqr(texts[0])
    assert parsed.payment.bank_bin == visit.payee_bank_bin == "970415"
    assert parsed.payment.account == visit.payee_account
    assert parsed.payment.amount_vnd == 75_000
    assert parsed.payment.reference == status.code.text
    assert (parsed.guid, parsed.service, parsed.currency, parsed.country, parsed.initiation) == (
        "A000000727", "QRIBFTTA", "704", "VN", "12")
    assert parsed.crc == f"{crc16_ccitt_false(texts[0][:-4].encode('ascii')):04X}"
    assert [(e["service"], e["outcome"]) for e in events(runtime, "visit_service")] == [
        ("fee_qr", "shown"), ("fee_qr", "printed")]


def test_paid_on_the_next_look_up(runtime: KioskRuntime) -> None:
    status = look_up(runtime, "0102")
    store = runtime.devices.dossiers
    assert isinstance(store, DemoDossierStore)
    store.mark_paid(status.code)
    again = look_up(runtime, "0102")
    runtime.core.start("payment", status=again)
    assert flow(runtime).state == "paid"


def fill_delivery(runtime: KioskRuntime) -> None:
    core = runtime.core
    core.act("set_address", text=ADDRESS)
    core.act("next")
    core.act("set_phone", text=PHONE)
    core.act("next")
    core.act("send")
    core.pump()


def test_delivery_by_post_with_the_demo_store_prints_a_slip(runtime: KioskRuntime) -> None:
    status = look_up(runtime, "000091")
    assert status.can_send_by_post
    runtime.core.start("delivery", status=status)
    fill_delivery(runtime)
    current = flow(runtime)
    assert current.state == "done" and current.receipt.request_number.startswith("BD-")
    runtime.core.act("print")
    runtime.core.pump()
    assert current.printed and current.error_key is None
    printer = runtime.devices.printer
    assert printer is not None and printer.simulator is not None and printer.simulator.last_png is not None
    keep(printer.simulator.last_png, "delivery-slip.png")
    assert [(e["service"], e["outcome"], e.get("agency_code")) for e in events(runtime, "visit_service")] == [
        ("post_delivery", "requested", "000.20.35.H35")]
    # A second request for the same dossier is refused by the store, with its own message.
    runtime.core.start("delivery", status=status)
    fill_delivery(runtime)
    assert flow(runtime).state == "refused" and flow(runtime).error_key == "delivery.already_requested"


def test_appointment_check_in_issues_an_appointment_ticket(tmp_path: Path) -> None:
    now = datetime.now(ZONE).replace(hour=9, minute=40, second=0, microsecond=0)
    made = KioskRuntime(kiosk_config(tmp_path), synchronous=True, wall_clock=lambda: now)
    try:
        store = made.devices.dossiers
        assert isinstance(store, DemoDossierStore)
        store.add_appointment(Appointment("LH-TEST-0001", "HO_TICH", now.date(), time(9, 30)))
        made.core.start("appointment")
        made.core.scanned("LH-TEST-0001")
        made.core.pump()
        current = flow(made)
        assert current.state == "done", current.error_key
        [issued] = events(made, "ticket_issued")
        assert issued["appointment_at"] == "09:30" and issued["service"] == "HO_TICH"
        assert events(made, "visit_service") == [{"service": "appointment", "outcome": "checked_in"}]
    finally:
        made.stop()


@pytest.fixture
def province() -> Iterator[ProvinceServer]:
    server = ProvinceServer()
    yield server
    server.close()


CODE = "000.00.10.H12-261101-0042"
STATUS: dict[str, Any] = {
    "code": CODE, "procedure_name": "Cấp bản sao trích lục hộ tịch", "agency": "UBND phường Bến Thành",
    "received_on": "2026-11-01", "due_on": "2026-11-05", "status": "result_ready", "current_step": "",
    "timeline": [], "collect_at": "Quầy số 3", "fees": None,
    "post_delivery": {"available": True, "fee_vnd": 25000},
}


@pytest.mark.parametrize(("reply", "state", "key"), [
    (Reply(status=201, body={"request_number": "BD-9", "fee_vnd": 25000}), "done", None),
    (Reply(status=422, body={"error": "refused", "reason": "address_outside_area"}), "refused",
     "delivery.outside_area"),
    (Reply(status=503), "unavailable", "visit.unavailable"),
])
def test_delivery_through_the_http_adapter(tmp_path: Path, province: ProvinceServer, reply: Reply,
                                           state: str, key: str | None) -> None:
    lookup = LookupConfig(backend="http", base_url=province.base_url, allow_insecure_http=True,
                          timeout_s=0.5, retries=1, cache_ttl_s=0)
    made = KioskRuntime(kiosk_config(tmp_path, lookup=lookup), synchronous=True)
    try:
        province.on(CODE, Reply(body=STATUS))
        province.script[f"/api/v1/dossiers/{CODE}/delivery"] = [reply]
        made.core.start("lookup")
        made.core.scanned(CODE)
        made.core.pump()
        status = flow(made).status
        made.core.start("delivery", status=status)
        fill_delivery(made)
        assert flow(made).state == state and flow(made).error_key == key
        posts = [r for r in province.requests if r.method == "POST"]
        assert json.loads(posts[0].body)["address"] == ADDRESS
        assert len(posts) == (2 if state == "unavailable" else 1)  # retries + 1 for a 503 only
        assert flow(made).address == ("" if state != "unavailable" else ADDRESS)
    finally:
        made.stop()
