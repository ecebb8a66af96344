"""The technician's journey, timed: from a PC with the project installed to a kiosk online on the
dashboard, then the guided self-test whose report shows on the kiosk's page.

Center: the generated broker, ``provision serve``, ``fleet serve`` (the dashboard, where a technician
makes the code) and the fleet's real MQTT ingest (``RealIngest``). Kiosk PC:
``provision detect``, ``provision enroll --scan`` (the QR code read by a serial scanner: a pty the test
types the code into, as a scanner does), then what ``enroll --start`` has systemd start (agent, kiosk
app on Xvfb), then ``provision selftest`` (test ticket, virtual card, the ticket's QR shown to the
simulated camera, a real pointer click through XTEST). Numbers: artifacts/provisioning/journey.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fleet.data import CHEAP, PASSWORD
from tests.fleet.server import login, running_server
from tests.fleet.web import csrf_of
from tests.provisioning.center import CENTER, ROOT, RealIngest, RunningCenter, running_center, wait_for
from tests.provisioning.test_lifecycle import record
from tests.provisioning.xtest import click

pytestmark = [pytest.mark.broker, pytest.mark.window]
KIOSK = "kiosk-bt-07"


@pytest.fixture
def kiosk_root() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="pj-"))  # short: sockets live in it
    yield made
    shutil.rmtree(made, ignore_errors=True)


def cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "provision", *args]


class Lines:
    """A subprocess's stderr, line by line, with a way to wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        assert proc.stderr is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(needle in line for line in self.lines):
                remaining = deadline - time.monotonic()
                gone = not self.thread.is_alive()
                assert remaining > 0 and not gone, f"{needle!r} not seen; got:\n" + "\n".join(
                    self.lines[-30:]
                )
                self.cond.wait(min(remaining, 0.5))


def test_bare_pc_to_online_in_two_commands_and_one_scan_then_the_self_test(kiosk_root: Path) -> None:
    from drivers.card import ensure_pcscd
    from screens.harness import xvfb

    ensure_pcscd()  # the PC's card reader is plugged in (here: pcscd with vpcd's virtual reader)

    with running_center() as center, xvfb() as display:
        store = center.open_store()
        store.accounts.add_user("kythuat.bt", CHEAP.hash(PASSWORD), "technician", center_id=CENTER)
        store.close()
        ingest = RealIngest(center)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with running_server(center.url, center.logs) as web:
                journey(center, web.base, ingest, kiosk_root, display, procs)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            ingest.close()


def journey(
    center: RunningCenter,
    base: str,
    ingest: RealIngest,
    root: Path,
    display: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    # --- at the center: the technician makes a code on the dashboard -----------------------------------
    with httpx.Client(base_url=base, follow_redirects=True) as browser:
        login(browser, "kythuat.bt")
        page = browser.get(f"/enroll?center={CENTER}")
        made = browser.post(
            "/enroll/tokens",
            data={
                "csrf": csrf_of(page.text),
                "center": CENTER,
                "kiosk_id": KIOSK,
                "slot": "7",
                "purpose": "new",
                "hours": "2",
            },
        )
        assert made.status_code == 200, made.text[:500]
        code = re.search(r'id="enroll-code" class="payload">([^<]+)<', made.text)
        assert code is not None and 'id="enroll-qr" src="data:image/svg+xml' in made.text
        code_text = code.group(1).replace("&amp;", "&")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "DISPLAY": display}
    config, data = root / "etc" / "kiosk.toml", root / "var"
    devices = root / "devices.toml"
    commands, scans = 0, 0
    started = time.monotonic()
    # --- command 1: detect the devices and write the proposal ------------------------------------------
    detected = subprocess.run(
        cli("detect", "--write", str(devices), "--yes", "--json"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    commands += 1
    assert detected.returncode == 0, detected.stderr
    proposal = json.loads(detected.stdout)["proposal"]["devices"]
    assert set(proposal) == {"printer", "scanner", "card_reader"}
    detect_s = time.monotonic() - started
    # --- command 2: enroll, the code read by the kiosk's (serial) scanner --------------------------------
    master, slave = os.openpty()
    port = os.ttyname(slave)
    enroll = subprocess.Popen(
        cli(
            "enroll",
            "--scan",
            "--scanner-port",
            port,
            "--config",
            str(config),
            "--data-dir",
            str(data),
            "--devices",
            str(devices),
            "--machine-serial",
            "PC-JOURNEY-07",
            "--lang",
            "en",
        ),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    commands += 1
    lines = Lines(enroll)
    lines.wait("Scan the enrollment QR code", 60)
    time.sleep(0.3)  # the port is open (pyserial empties its buffer on open)
    os.write(master, code_text.encode() + b"\r")
    scans += 1
    assert enroll.wait(120) == 0, "\n".join(lines.lines)
    os.close(master)
    os.close(slave)
    enroll_done = time.monotonic() - started
    # what `enroll --start` has systemd start: the units' commands (deploy/systemd)
    for name, argv in (
        ("agent", ["agent", "--config", str(config)]),
        ("kiosk", ["kiosk", "--config", str(config)]),
    ):
        log = (root / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), *argv],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def state() -> str:
        with httpx.Client(base_url=base) as client:
            login(client, "kythuat.bt")
            answer = client.get(f"/kiosks/{KIOSK}?format=json")
            return str(answer.json()["items"][0]["state"]) if answer.status_code == 200 else "missing"

    wait_for(lambda: state() == "online", 90, "the kiosk is online on the dashboard", step=0.3)
    online_s = time.monotonic() - started
    # --- the guided self-test (a third command) ---------------------------------------------------------
    from common.errors import MotcuaError
    from common.ipc import call

    def app_up() -> bool:
        try:
            call(data / "app.sock", "app.health", timeout=2)
        except (MotcuaError, ValueError):
            return False
        return True

    wait_for(app_up, 90, "the kiosk app answers", step=0.3)
    app_s = time.monotonic() - started
    test_started = time.monotonic()
    selftest = subprocess.Popen(
        cli("selftest", "--config", str(config), "--lang", "en", "--touch-timeout", "30"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Lines(selftest)
    out.wait("Touch the screen", 120)
    assert selftest.poll() is None, "\n".join(out.lines)
    for _ in range(3):  # the window sits at the screen's top-left without a window manager
        click(display, 40, 300)
        time.sleep(0.4)
    assert selftest.wait(60) == 0, "\n".join(out.lines)
    selftest_s = time.monotonic() - test_started

    def report() -> dict[str, object] | None:
        with httpx.Client(base_url=base) as client:
            login(client, "kythuat.bt")
            found = client.get(f"/enroll/kiosks/{KIOSK}?format=json").json().get("self_test")
            return found if isinstance(found, dict) else None

    wait_for(lambda: report() is not None, 30, "the self-test report reached the kiosk's page", step=0.5)
    found = report()
    assert found is not None and found["result"] == "pass" and found["source"] == "cli"
    steps = {s["step"]: s["ok"] for s in found["report"]["steps"]}  # type: ignore[index]
    assert steps == {"devices": True, "printer": True, "card": True, "scanner": True, "touch": True}
    with httpx.Client(base_url=base) as client:
        login(client, "kythuat.bt")
        identity_page = client.get(f"/enroll/kiosks/{KIOSK}").text
    assert 'data-step="scanner"' in identity_page and "MOTCUA-TEST:" + KIOSK in identity_page
    assert ingest.errors == []
    record(
        "journey",
        {
            "commands_to_online": commands,
            "scans_to_online": scans,
            "dashboard_actions": 1,
            "detect_s": round(detect_s, 2),
            "detect_and_enroll_s": round(enroll_done, 2),
            "machine_time_to_online_s": round(online_s, 2),
            "kiosk_app_answering_s": round(app_s, 2),
            "selftest_command_s": round(selftest_s, 2),
            "selftest_steps": steps,
        },
    )
    assert commands == 2 and scans == 1
    assert online_s < 120, f"{online_s:.1f} s from the first command to online"
