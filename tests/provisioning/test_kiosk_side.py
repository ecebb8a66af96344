"""The kiosk's side of provisioning without a center: the enrollment code, the TOML the kiosk file is
written with, detection's guesses and its network rule, the serial scanner read, the machine's
identity, and the app's control commands the self-test drives (on the real runtime, no window)."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.enrollment import EnrollmentCode, normalise_token
from contract.errors import ContractError
from contract.events import SelfTest
from provisioning import detect, tomlw
from provisioning.machine import machine_info
from provisioning.scan import read_serial_line

FP = "0123456789abcdef" * 4


def test_the_code_reads_back_and_malformed_codes_are_refused() -> None:
    code = EnrollmentCode("center.local", 8443, "hcm-ben-thanh", FP, "ABCDE-FGHIJ-KLMNO-PQRS2")
    assert EnrollmentCode.from_text(code.to_text()) == code
    typed = f"motcua-enroll://[fd00::5]:9443/hcm-ben-thanh?t=abcde fghij klmno pqrs2&f={FP.upper()}"
    again = EnrollmentCode.from_text(typed)
    assert (again.host, again.port, again.token, again.ca_fingerprint) == ("fd00::5", 9443, code.token, FP)
    assert again.base_url == "https://[fd00::5]:9443"
    assert EnrollmentCode.from_text(f"motcua-enroll://10.0.0.5/hcm-ben-thanh?f={FP}").token is None  # pending
    for bad in (
        f"https://10.0.0.5:8443/hcm-ben-thanh?f={FP}",  # not our scheme
        "motcua-enroll://10.0.0.5:8443/hcm-ben-thanh?f=1234",  # short fingerprint
        f"motcua-enroll://10.0.0.5:8443/HCM?f={FP}",  # not a center id
        f"motcua-enroll://bad_host!:8443/hcm-ben-thanh?f={FP}",
        f"motcua-enroll://10.0.0.5:8443/hcm-ben-thanh?f={FP}&x=1",
        f"motcua-enroll://10.0.0.5:8443/hcm-ben-thanh?t=ABCDE&f={FP}",
        "x" * 600,
    ):
        with pytest.raises(ContractError):
            EnrollmentCode.from_text(bad)
    assert normalise_token("abcdefghijklmnopqrs2") == "ABCDE-FGHIJ-KLMNO-PQRS2"
    with pytest.raises(ContractError):
        normalise_token("ABCDE-FGHIJ-KLMNO-PQRS1")  # 1 is not base32


def test_toml_written_reads_back_the_same() -> None:
    data = {
        "kiosk": {
            "id": "kiosk-1",
            "center_name": 'Trung tâm "Bến Thành"\nTầng 1',
            "idle_timeout_s": 60,
            "ratio": 0.45,
            "on": True,
        },
        "devices": {"printer": {"backend": "usb", "vendor_id": 1208}, "card_reader": {"enabled": False}},
        "services": [{"code": "HO_TICH", "counters": ["1", "2"]}, {"code": "DAT_DAI", "counters": []}],
        "rating": {"levels": 4, "officials": [{"id": "cb01", "name": "Phạm Thu Hà"}]},
        "agent": {"tls": {"ca_file": "/var/lib/motcua/identity/ca.crt"}, "weird key": "\x07"},
    }
    text = tomlw.dumps(data, "header line")
    assert text.startswith("# header line\n")
    assert tomllib.loads(text) == data


def test_detection_guesses_and_says_why() -> None:
    assert detect.guess_usb(0x0C2E, 0x0B61, "", is_serial=True)[0] == "scanner"
    role, why = detect.guess_usb(0x04B8, 0x0E15, "", is_serial=False)
    assert role == "printer" and "TM-T20II" in why
    assert detect.guess_usb(0x1EAB, 0x9999, "", is_serial=True) == (
        "scanner",
        "1eab:9999: vendor Newland makes scanners",
    )
    role, why = detect.guess_usb(0x0403, 0x6001, "FT232R USB UART", is_serial=True)
    assert role == "unknown" and "FTDI" in why and "printer or a scanner" in why
    assert detect.guess_usb(0x1234, 0x5678, "Barcode Scanner HID", is_serial=True)[0] == "scanner"
    assert detect.guess_usb(None, None, "", is_serial=True)[0] == "unknown"
    found = detect.Detection(
        [
            detect.Found("usb", "04b8:0e15", "printer", "x", {"vendor_id": 0x04B8, "product_id": 0x0E15}),
            detect.Found("serial", "/dev/ttyACM0", "scanner", "y", {}),
            detect.Found(
                "reader",
                "ACS ACR1252 1S CL Reader PICC 00 00",
                "card_reader",
                "z",
                {"reader": "ACS ACR1252 1S CL Reader PICC"},
            ),
        ]
    )
    assert found.proposal() == {
        "printer": {"backend": "usb", "vendor_id": 0x04B8, "product_id": 0x0E15},
        "scanner": {"backend": "serial", "device": "/dev/ttyACM0", "baudrate": 9600},
        "card_reader": {"enabled": True, "backend": "pcsc", "reader": "ACS ACR1252 1S CL Reader PICC"},
    }


def test_network_printers_are_tried_only_at_the_given_addresses() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = closed.getsockname()[1]
        found = detect.network_printers([f"127.0.0.1:{port}", f"127.0.0.1:{dead}"], timeout_s=0.5)
    assert [(f.name, f.role, f.details["reachable"]) for f in found] == [
        (f"127.0.0.1:{port}", "printer", True),
        (f"127.0.0.1:{dead}", "unknown", False),
    ]
    assert detect.network_printers([]) == []


def test_a_serial_scanner_line_is_read(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        threading.Timer(0.5, lambda: os.write(master, b"\x02motcua-enroll://x\x03\r")).start()
        assert read_serial_line(port, timeout_s=5) == "motcua-enroll://x"
        assert read_serial_line(port, timeout_s=0.5) == ""
    finally:
        os.close(master)
        os.close(slave)


def test_the_machine_says_who_it_is_from_sysfs(tmp_path: Path) -> None:
    dmi, net = tmp_path / "dmi", tmp_path / "net"
    dmi.mkdir()
    (dmi / "product_serial").write_text("PF3K9Q2A\n")
    (dmi / "sys_vendor").write_text("LENOVO\n")
    (dmi / "product_name").write_text("To be filled by O.E.M.\n")
    for name, mac in (("lo", "00:00:00:00:00:00"), ("eth0", "3c:52:82:aa:bb:cc")):
        (net / name).mkdir(parents=True)
        (net / name / "address").write_text(mac + "\n")
    info = machine_info(dmi=dmi, net=net)
    assert (info.serial, info.vendor, info.product, info.macs) == (
        "PF3K9Q2A",
        "LENOVO",
        "",
        ["3c:52:82:aa:bb:cc"],
    )
    assert machine_info("GIVEN", dmi=dmi, net=net).serial == "GIVEN"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[object]:
    from kiosk.runtime import KioskRuntime, demo_config, simulated

    config = demo_config(tmp_path)
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    made = KioskRuntime(simulated(dataclasses.replace(config, devices=devices)), synchronous=True)
    yield made
    made.stop()


def test_the_apps_self_test_commands_and_the_screens_report(runtime: object) -> None:
    from drivers.scanner.base import ScanResult
    from kiosk.flows.technician import RunSelfTest
    from kiosk.runtime import KioskRuntime

    assert isinstance(runtime, KioskRuntime)
    results = runtime._self_test({})
    assert results["printer"]["ok"] and results["card_reader"]["state"] == "disabled"
    # a scan while the self-test waits goes to the self-test only, not to the flows
    answer: dict[str, object] = {}
    waiter = threading.Thread(
        target=lambda: answer.update(runtime._await_input({"kind": "scan", "timeout_s": 5}))
    )
    waiter.start()
    time.sleep(0.2)
    runtime._scanned(ScanResult("MOTCUA-TEST:kiosk-demo-01", b"", "camera", "qr"))
    waiter.join(5)
    assert answer == {"seen": True, "text": "MOTCUA-TEST:kiosk-demo-01", "source": "camera"}
    assert runtime.core._scans.empty()  # the flows never saw it
    runtime._scanned(ScanResult("000.00.10.H12-210901-0001", b"", "camera", "qr"))
    assert not runtime.core._scans.empty()  # without a self-test waiting, scans go to the flows
    assert runtime._await_input({"kind": "touch", "timeout_s": 0.5}) == {"seen": False}
    threading.Timer(0.3, runtime.core.touch).start()
    assert runtime._await_input({"kind": "touch", "timeout_s": 5}) == {"seen": True}
    with pytest.raises(ValueError):
        runtime._await_input({"kind": "smell"})
    # the technician screen's self-test journals its report (source: screen); the control command does not
    before = runtime.journal.count()
    runtime.handlers.run_self_test(RunSelfTest())
    entries = runtime.journal.pending(limit=1000)
    assert runtime.journal.count() == before + 1 and entries[-1].kind == "self_test"
    report = SelfTest.from_data(entries[-1].payload)
    assert report.source == "screen" and {s.step for s in report.steps} >= {
        "printer",
        "scanner",
        "card_reader",
    }


def test_every_step_and_every_refusal_says_what_to_do_in_both_languages() -> None:
    import re

    from contract.enrollment import REFUSALS
    from provisioning.service import REFUSAL_TEXT
    from provisioning.ui import HINTS, TEXTS

    root = Path(__file__).resolve().parents[2] / "provisioning"
    used_steps: set[str] = set()
    used_hints: set[str] = set()
    for source in root.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        used_steps |= set(re.findall(r"""\.step\(\s*["']([a-z_]+\.[a-z_]+)["']""", text))
        used_hints |= set(re.findall(r"""(?:StepFailed|EnrollError)\([^)]*?,\s*["']([a-z_]+)["']\)""", text))
    used_steps |= {"center.pki", "center.certificates", "center.store", "center.broker", "center.units"}
    assert len(used_steps) > 20
    assert used_steps <= set(TEXTS), sorted(used_steps - set(TEXTS))
    assert set(REFUSALS) <= set(HINTS) and set(REFUSALS) == set(REFUSAL_TEXT)
    assert used_hints <= set(HINTS), sorted(used_hints - set(HINTS))
    for vi, en in [*TEXTS.values(), *HINTS.values(), *REFUSAL_TEXT.values()]:
        assert vi.strip() and en.strip() and vi != en
