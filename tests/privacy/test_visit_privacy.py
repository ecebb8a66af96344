"""The visit's personal data (issue 15): the delivery address (typed, or from the ID card's QR after
consent), the phone numbers, the feedback's text and the ID number behind an appointment never reach
a log record or file, an event, the journal, the demo store, the printer's output or a file in the
data folder; they are wiped once sent, and when the citizen leaves in the middle."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time as clock
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.errors import MotcuaError
from common.journal import PrivacyError
from common.privacy import SESSION_VALUES, private_log_handler
from contract.events import DeviceFault
from kiosk.dossier import Appointment, DemoDossierStore
from kiosk.dossier.visit import id_number_hash
from kiosk.flows.delivery import PostDeliveryFlow
from kiosk.runtime import KioskRuntime, demo_config

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ADDRESS = "Số 7 đường Trần Hưng Đạo, phường Cầu Ông Lãnh, TP. Hồ Chí Minh"
CARD_ADDRESS = "Thôn Phú Mỹ, xã Tân Hội, tỉnh Lâm Đồng"
EDITED = "Số 9 thôn Phú Mỹ, xã Tân Hội, tỉnh Lâm Đồng"
NAME = "Trần Thị Bích Ngọc"
ID_NUMBER = "068190001234"
CARD_QR = f"{ID_NUMBER}|250123456|{NAME}|15031990|Nữ|{CARD_ADDRESS}|01062021"
PHONE = "0987654321"
PHONE_2 = "0356789012"
FEEDBACK = "Chị Hoa ở quầy 5 nhận hồ sơ của tôi mà không hẹn ngày trả"
SECRETS = [ADDRESS, "Trần Hưng Đạo", CARD_ADDRESS, "Phú Mỹ", EDITED, NAME, ID_NUMBER, PHONE, PHONE_2,
           FEEDBACK, "không hẹn ngày trả"]


@pytest.fixture
def runtime(caplog: pytest.LogCaptureFixture) -> Iterator[KioskRuntime]:
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"vp-{os.getpid()}-{clock.monotonic_ns() % 10**6}"
    config = demo_config(data_dir)
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    now = datetime.now(ZONE).replace(hour=10, minute=0, second=0, microsecond=0)
    config = dataclasses.replace(config, devices=devices)
    made = KioskRuntime(config, synchronous=True, wall_clock=lambda: now)
    handler = private_log_handler(data_dir / "logs" / "kiosk.log")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    yield made
    root.removeHandler(handler)
    handler.close()
    made.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def act(runtime: KioskRuntime, action: str, **values: Any) -> None:
    runtime.core.act(action, **values)
    runtime.core.pump()


def scan(runtime: KioskRuntime, text: str) -> None:
    runtime.core.scanned(text)
    runtime.core.pump()


def state(runtime: KioskRuntime) -> str:
    assert runtime.core.flow is not None
    return runtime.core.flow.state


def deliverable(runtime: KioskRuntime) -> Any:
    store = runtime.devices.dossiers
    assert isinstance(store, DemoDossierStore)
    [code] = [c for c in store.codes() if c.sequence == "000091"]
    runtime.core.start("lookup")
    scan(runtime, code.text)
    assert runtime.core.flow is not None
    return runtime.core.flow.status  # type: ignore[attr-defined]


def test_nothing_personal_leaves_on_any_visit_path(
    runtime: KioskRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    core = runtime.core
    store = runtime.devices.dossiers
    assert isinstance(store, DemoDossierStore)
    status = deliverable(runtime)

    # 1. A typed address and a phone number: sent, the slip printed, nothing kept.
    core.start("delivery", status=status)
    act(runtime, "set_address", text=ADDRESS)
    with pytest.raises(PrivacyError):  # while held, the journal refuses an event that carries it
        runtime.journal.append(DeviceFault("printer", "offline", f"jam near {ADDRESS}"))
    act(runtime, "next")
    act(runtime, "set_phone", text=PHONE)
    act(runtime, "next")
    logging.getLogger("kiosk.test").info("a careless line: %s / %s", ADDRESS, PHONE)  # a bug elsewhere
    act(runtime, "send")
    assert state(runtime) == "done"
    act(runtime, "print")
    assert not SESSION_VALUES.search(ADDRESS) and not SESSION_VALUES.search(PHONE)

    # 2. The card's address after consent, edited, then the system is down and the citizen walks away.
    store.seed()  # a fresh demo day: the dossier may be requested again
    core.start("lookup")
    scan(runtime, status.code.text)
    core.start("delivery", status=status)
    flow = core.flow
    act(runtime, "use_card")
    act(runtime, "consent")
    scan(runtime, CARD_QR)
    assert state(runtime) == "address"
    act(runtime, "set_address", text=EDITED)
    act(runtime, "next")
    act(runtime, "set_phone", text=PHONE_2)
    act(runtime, "next")
    store.set_available(False)
    act(runtime, "send")
    assert state(runtime) == "unavailable"
    core.end_session("timeout")
    assert isinstance(flow, PostDeliveryFlow)
    assert flow.address == "" and flow.phone == "" and flow._request is None  # the pending request too
    store.set_available(True)

    # 3. Feedback with a name in it and a phone number.
    core.touch()
    core.start("feedback")
    act(runtime, "topic", code="thai_do")
    act(runtime, "set_text", text=FEEDBACK)
    act(runtime, "next")
    act(runtime, "set_phone", text=PHONE_2)
    act(runtime, "send")
    assert state(runtime) == "thanks"

    # 4. An appointment found by the ID card's QR: the number is hashed, never sent or kept.
    today = runtime.core.now().date()
    salt = runtime.config.visit.appointment_salt.encode()
    store.add_appointment(Appointment("LH-PRIV-0001", "HO_TICH", today, time(10, 10)),
                          id_number_hash(ID_NUMBER, salt))
    core.start("appointment")
    scan(runtime, CARD_QR)
    assert state(runtime) == "done"
    core.end_session("finished")

    # Where it could have gone: log records (unscrubbed), the log file, events, every file kept.
    runtime.core.shutdown()
    records = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                        if r.name != "kiosk.test")
    log_file = (runtime.config.kiosk.data_dir / "logs" / "kiosk.log").read_text(encoding="utf-8")
    assert "a careless line" in log_file  # the file handler did write, scrubbed
    payloads = "\n".join(repr(e.payload) for e in runtime.journal.pending())
    kinds = {e.kind for e in runtime.journal.pending()}
    assert {"visit_service", "ticket_issued"} <= kinds
    files = b"".join(p.read_bytes() for p in runtime.config.kiosk.data_dir.rglob("*") if p.is_file())
    printers = [runtime.devices.printer]
    printed = "\n".join(line for p in printers if p is not None and p.simulator is not None
                        for line in p.simulator.text_lines)
    for secret in SECRETS:
        assert secret not in records, secret
        assert secret not in log_file, secret
        assert secret not in payloads, secret
        assert secret.encode("utf-8") not in files, secret
        assert secret not in printed, secret
    assert not SESSION_VALUES


def test_a_backend_message_quoting_the_address_is_not_logged(runtime: KioskRuntime,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A failing request's error may quote what was sent: the core logs its type and code only."""
    from kiosk.core import Route
    from kiosk.flows.delivery import RequestDelivery

    status = deliverable(runtime)
    runtime.core.start("delivery", status=status)

    def quoting(effect: RequestDelivery) -> Any:
        request = effect.request
        raise MotcuaError(f"province said: bad address {request.address}, phone {request.phone}")

    routes = [r for r in runtime.handlers.routes() if r.effect is not RequestDelivery]
    runtime.core.set_routes([*routes, Route(RequestDelivery, quoting, "network")])
    for action, value in (("set_address", ADDRESS), ("next", None), ("set_phone", PHONE), ("next", None)):
        act(runtime, action, **({"text": value} if value else {}))
    act(runtime, "send")
    assert state(runtime) == "unavailable"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ADDRESS not in text and PHONE not in text
