"""No personal value from an ID card (nor the dossier code of a look-up) leaves the visit, on every path.

The real window on Xvfb, the real virtual chip through pcscd, the kiosk's real log file, and the real
agent as its own process on a real Mosquitto (the shipped configuration): the center asks for
screenshots and the logs over MQTT like a manager would. After an identified visit with the name on
the ticket, and after the failure paths (card removed mid-read, look-up not found, printer out of
paper, an unexpected exception inside a flow fed hostile input), nothing personal may be in the
on-disk logs, the log records, tracebacks, the events (outbox and what the center received),
screenshots taken by the command, the virtual printer's output after its retention, the agent's
``upload_logs`` archive, the agent's health JSON (file and heartbeats), nor any widget.
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from screens.harness import KioskDriver
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.agent.conftest import agent_config, spawn_agent, write_kiosk_toml
from tests.agent.peer import Peer
from tests.ui.test_visit_window import type_digits, type_text

pytestmark = [pytest.mark.window, pytest.mark.pcsc, pytest.mark.broker]

NOT_FOUND = "000.00.10.H12-210901-9999"
#: the demo dossier whose result may be sent by post (test_visit_window.py requests another one)
POST_SEQUENCE = "000091"
DELIVERY_PHONE = "0849120077"
FEEDBACK_TEXT = "anh nam quầy ba cáu gắt"
FEEDBACK_PHONE = "0912733845"


def ocr(data: bytes, tmp_path: Path) -> str:
    png = tmp_path / f"ocr-{uuid.uuid4().hex[:8]}.png"
    png.write_bytes(data)
    result = subprocess.run(
        ["tesseract", str(png), "stdout", "-l", "vie"], capture_output=True, text=True, timeout=60, check=True
    )
    return unicodedata.normalize("NFC", result.stdout)


class Center:
    """The center's side: a peer with a fleet worker's certificate, commands and what came back."""

    def __init__(self, kiosk: KioskDriver, peer: Peer, base: str) -> None:
        self.kiosk = kiosk
        self.peer = peer
        self.base = base

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        body = {"schema": "command/1", "request_id": rid, "command": name, "args": args or {},
                "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
        self.peer.publish(f"{self.base}/cmd/req", json.dumps(body).encode())

        def answered() -> list[dict[str, Any]]:
            return [m.json() for m in self.peer.on(f"{self.base}/cmd/res") if m.json()["request_id"] == rid]

        # The window keeps drawing meanwhile: app.screenshot is taken on the UI thread.
        self.kiosk.wait_for(lambda: bool(answered()), timeout=30, what=f"the result of {name}")
        return answered()[0]

    def blob(self, result: dict[str, Any]) -> bytes:
        topic = result["result"]["blob_topic"]
        self.kiosk.wait_for(lambda: bool(self.peer.on(topic)), timeout=20, what="the blob")
        return self.peer.on(topic)[0].payload


@pytest.fixture
def center(kiosk: KioskDriver, tmp_path: Path) -> Iterator[Center]:
    """The UI session's kiosk with its agent (own process) connected to a center."""
    config = kiosk.core.config
    base = f"motcua/v1/{config.kiosk.center_id}/{config.kiosk.id}"
    pki: Pki
    broker: Broker
    with (
        temporary_pki((config.kiosk.id, "fleet-1"), "pvpki-") as pki,
        running_broker(pki, "pvbrk-") as broker,
    ):
        peer = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("fleet-1")).connect(f"{base}/#")
        conf = write_kiosk_toml(
            tmp_path / "agent.toml", config.kiosk.id, config.kiosk.data_dir,
            agent_config(broker, pki, config.kiosk.id, heartbeat_s=1.0),
        )
        agent = spawn_agent(conf, tmp_path / "agent.out")
        try:
            assert peer.wait_for(f"{base}/status", lambda d: d["state"] == "online", timeout=30)
            yield Center(kiosk, peer, base)
        finally:
            agent.terminate()
            agent.wait(20)
            peer.close()


def start(kiosk: KioskDriver) -> None:
    """The idle screen is the home (issue 14): nothing to tap to get there."""
    kiosk.wait_state("attract")


def later(kiosk: KioskDriver) -> None:
    """The camera ignores a code it saw in the last 2 s (repeat_after_s): the next citizen comes later."""
    done = time.monotonic() + 2.2
    kiosk.wait_for(lambda: time.monotonic() > done, what="a moment")


def identify(kiosk: KioskDriver, **citizen: Any) -> None:
    later(kiosk)
    kiosk.runtime.poll_devices()  # the ID-card step is offered while the reader is seen
    start(kiosk)
    kiosk.tap("Lấy số bằng thẻ Căn cước")
    kiosk.runtime.simulator.citizen({"profile": "married", **citizen})


def test_no_personal_data_left_after_the_visit(
    kiosk: KioskDriver, center: Center, caplog: pytest.LogCaptureFixture, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drivers.card import load_profile
    from kiosk.simulation import PROFILES_DIR
    from screens.cli import log_to_file

    person = load_profile(PROFILES_DIR / "married.toml")
    born = person.birth_date
    personal = [
        person.full_name, person.id_number, person.document_number, person.old_id_number,
        person.place_of_residence, person.father_name, person.mother_name, person.spouse_name,
        born.strftime("%d%m%Y"), born.strftime("%d/%m/%Y"), born.isoformat(), "Trần", "Bích Ngọc",
        NOT_FOUND, "210901-9999",
    ]
    data_dir = kiosk.core.config.kiosk.data_dir
    printer = kiosk.runtime.simulator._virtual_printer()
    printed_from = printer.output_mark()
    caplog.set_level(logging.DEBUG)
    handler = log_to_file(data_dir)  # what main.py kiosk does at start: the file upload_logs sends
    blobs: list[bytes] = []
    try:
        # 1. An identified visit, the name on the ticket; the center asks for screenshots meanwhile.
        identify(kiosk)
        kiosk.wait_state("identify", "done", timeout=20)
        kiosk.wait_state("ticket", "choose_service", timeout=10)  # after "lấy lại thẻ", by itself
        assert any(person.full_name in text for text in kiosk.texts())  # shown to the citizen, then...
        refused = center.command("screenshot")
        assert refused["status"] == "error", "a screenshot of the citizen's name was sent to the center"
        assert "screenshot refused" in refused["reason"] and "personal data" in refused["reason"]
        named_from = printer.output_mark()
        kiosk.tap("Hộ tịch")
        kiosk.wait_state("ticket", "done")
        named = printer.outputs_since(named_from)
        assert named and all(path.exists() for path in named)  # the ticket with the name, rendered
        assert center.command("screenshot")["status"] == "error"
        kiosk.runtime.simulator.citizen({"remove": True})  # the citizen walks away with the card...
        kiosk.core._last_touch -= 3600  # ...and the result screen times out
        kiosk.wait_state("attract")
        assert not any(path.exists() for path in named), "the named ticket's image outlived the visit"

        # 2. The card leaves the reader in the middle of the read.
        identify(kiosk, faults={"remove_after_apdus": 8})
        kiosk.wait_state("identify", "failed", timeout=20)
        kiosk.runtime.simulator.citizen({"remove": True})
        kiosk.tap("Về trang chủ")

        # 3. A look-up the province system does not know.
        kiosk.tap("Tra cứu hồ sơ")
        agency = kiosk.core.config.kiosk.dossier_agency
        assert NOT_FOUND.startswith(f"{agency}-")
        for char in NOT_FOUND[len(agency) :].replace("-", ""):  # the pad fills the agency and dashes
            kiosk.tap(char)
        kiosk.tap("Tra cứu")
        kiosk.wait_state("lookup", "not_found")
        kiosk.tap("Về trang chủ")
        kiosk.core.end_session("test")

        # 4. The paper runs out in the middle of a ticket with the name.
        identify(kiosk)
        kiosk.wait_state("identify", "done", timeout=20)
        kiosk.runtime.simulator.citizen({"remove": True})
        kiosk.wait_state("ticket", "choose_service", timeout=10)
        printer.run_out_after(150)
        torn_from = printer.output_mark()
        kiosk.tap("Hộ tịch")
        kiosk.wait_state("ticket", "done")  # the number is shown on the screen instead
        assert not kiosk.core.flow.ticket.printed
        torn = printer.outputs_since(torn_from)
        assert torn and all(path.exists() for path in torn)
        kiosk.runtime.simulator.printer({"paper": "ok"})
        kiosk.tap("Hoàn tất")  # ending the visit wipes the identity, and the torn ticket's image
        assert not any(path.exists() for path in torn)
        kiosk.core.end_session("test")

        # 5. A bug meets hostile input: the citizen holds the ID card's QR to the look-up camera.
        def broken_parser(text: str) -> Any:
            raise ValueError(f"cannot read {text!r}")

        monkeypatch.setattr("kiosk.flows.lookup.parse_dossier_code", broken_parser)
        start(kiosk)
        kiosk.tap("Tra cứu hồ sơ")
        kiosk.wait_state("lookup", "scan")
        later(kiosk)
        kiosk.runtime.simulator.citizen({"profile": "married", "insert": False})  # the QR only
        kiosk.wait_state("home")  # the core logged it, recorded app_error and sent the citizen home
        kiosk.runtime.simulator.citizen({"remove": True})
        monkeypatch.undo()
        kiosk.core.end_session("test")
        kiosk.frames(3)
        assert kiosk.core.session is None and kiosk.core.flows == []

        # 6. Results by post with the card's address after consent, edited, and a phone number typed.
        later(kiosk)
        start(kiosk)
        kiosk.tap("Tra cứu hồ sơ")
        store = kiosk.runtime.devices.dossiers
        kiosk.core.scanned(next(c.text for c in store.codes() if c.sequence == POST_SEQUENCE), "serial")
        kiosk.wait_state("lookup", "found")
        kiosk.taps = 0
        kiosk.tap("Nhận kết quả qua bưu điện")
        kiosk.tap("Dùng địa chỉ thường trú trên thẻ Căn cước")
        kiosk.tap("Đồng ý")
        kiosk.wait_state("delivery", "scan_card")
        kiosk.runtime.simulator.citizen({"profile": "married", "insert": False})  # the card's QR
        kiosk.wait_for(lambda: kiosk.core.flow.address_from_card, what="the address from the card")
        kiosk.runtime.simulator.citizen({"remove": True})
        from_card = kiosk.core.flow.address
        assert from_card and from_card in " ".join(kiosk.texts())  # shown to the citizen, editable
        typing = type_text(kiosk, " b")  # the citizen adds to it
        edited = kiosk.core.flow.address
        assert edited == f"{from_card} b"
        assert center.command("screenshot")["status"] == "error"  # the address on screen stays here
        kiosk.tap("Tiếp tục")
        typing += type_digits(kiosk, DELIVERY_PHONE)
        assert center.command("screenshot")["status"] == "error"
        kiosk.tap("Tiếp tục")
        kiosk.tap("Gửi yêu cầu")
        kiosk.wait_state("delivery", "done")
        kiosk.tap("In phiếu yêu cầu")
        kiosk.wait_for(lambda: kiosk.core.flow.printed, what="the delivery slip")
        # offer, use card, consent, next, next, send, print (docs/ux.md), typing apart
        assert kiosk.taps - typing == 7
        kiosk.tap("Hoàn tất")
        kiosk.wait_state("attract")

        # 7. Feedback naming an officer, with a phone number for the answer.
        kiosk.tap("Phản ánh, kiến nghị")
        kiosk.tap("Thái độ cán bộ")
        type_text(kiosk, FEEDBACK_TEXT)
        assert center.command("screenshot")["status"] == "error"  # the message on screen stays here
        kiosk.tap("Tiếp tục")
        type_digits(kiosk, FEEDBACK_PHONE)
        kiosk.tap("Gửi phản ánh")
        kiosk.wait_state("feedback", "thanks")
        kiosk.tap("Hoàn tất")
        kiosk.wait_state("attract")
        typed = [edited, from_card, DELIVERY_PHONE, FEEDBACK_TEXT, FEEDBACK_PHONE]
        personal += typed

        # What the center gets when it asks now: a screenshot (allowed: nobody's data on screen), logs.
        shot = center.command("screenshot")
        assert shot["status"] == "ok", shot
        blobs.append(center.blob(shot))
        assert not (data_dir / "shot.png").exists()  # the agent deleted it once sent
        logs = center.command("upload_logs", {"max_kb": 4096})
        assert logs["status"] == "ok", logs
        assert set(logs["result"]["files"]) == {"kiosk.log", "agent.log"}
        archive = gzip.decompress(center.blob(logs)).decode("utf-8")
        assert "unexpected error, returning home" in archive  # the crash is in the logs, by type
        kiosk.wait_for(lambda: kiosk.runtime.journal.count() == 0, timeout=30, what="the outbox drained")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

    events = [m.payload.decode() for m in center.peer.on_prefix(f"{center.base}/event/")]
    kinds = [json.loads(e)["kind"] for e in events]
    # the torn ticket is not voided any more: its number was shown on the screen (issue 14); the
    # printer's fault is what the center hears about
    assert {"card_read", "ticket_issued", "device_fault", "lookup", "app_error"} <= set(kinds)
    outbox = [json.dumps(e.to_dict(), ensure_ascii=False) for e in kiosk.runtime.journal.pending(limit=10**5)]
    health = [m.payload.decode() for m in center.peer.on(f"{center.base}/health")]
    assert health, "no heartbeat reached the center"
    health_file = (data_dir / "agent-health.json").read_text(encoding="utf-8")
    disk_logs = {
        p.name: p.read_text(encoding="utf-8", errors="replace") for p in (data_dir / "logs").glob("*.log*")
    }
    assert {"kiosk.log", "agent.log"} <= set(disk_logs)
    formatter = logging.Formatter()
    records = [r.getMessage() for r in caplog.records]
    tracebacks = [formatter.formatException(r.exc_info) for r in caplog.records if r.exc_info]
    tracebacks += [r.getMessage() for r in caplog.records if "Traceback" in r.getMessage()]
    assert tracebacks, "the crash of path 5 left no traceback to check"
    screenshots = [ocr(blob, tmp_path) for blob in blobs]
    printed_left = [p for p in printer.outputs_since(printed_from) if p.exists()]
    printer_text = [ocr(p.read_bytes(), tmp_path) for p in printed_left]
    widgets = [w for screen in kiosk.app.root.ids.screens.screens for w in screen.walk(restrict=True)]
    widgets += list(kiosk.app.root.walk(restrict=True))
    widget_texts = [w.text for w in widgets if isinstance(getattr(w, "text", None), str)]
    places: dict[str, list[str]] = {
        "the on-disk logs": list(disk_logs.values()),
        "a log record": records,
        "a traceback": tracebacks,
        "an event the center received": events,
        "the outbox": outbox,
        "a heartbeat": health,
        "agent-health.json": [health_file],
        "the upload_logs archive": [archive],
        "a screenshot": screenshots,
        "the virtual printer's output": printer_text,
        "a widget": widget_texts,
    }
    leaks = [
        f"{value!r} in {place}" for place, texts in places.items() for value in personal
        if any(value in text for text in texts)
    ]
    # What was typed for delivery and feedback is in no file the kiosk keeps (journal, demo store,
    # tallies, printer images, logs): the back end has it, the kiosk does not.
    for path in (p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        leaks += [f"{value!r} in {path.name}" for value in typed if value.encode("utf-8") in content]
    assert leaks == []
