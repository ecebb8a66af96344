"""The guided self-test (``main.py provision selftest``): the kiosk's devices as a technician checks them,
driven over the running app's control socket (``common.ipc``; provisioning does not import the kiosk).

1. the devices' state (``app.health``);
2. a test ticket printed (``app.print_test_ticket``), then the printer's status read back;
3. a test card read: the reader answers and a card on it answers (``app.self_test``; in the demo the
   virtual chip is laid on the reader first, ``sim.citizen``);
4. the test ticket's QR code (``MOTCUA-TEST:<kiosk id>``) scanned with the kiosk's own scanner
   (``app.await_input`` takes the next scan away from the flows; in the demo the printed ticket's image is
   shown to the simulated camera);
5. a touch on the screen (``app.await_input``).

The report is a ``self_test`` event appended to the kiosk's journal: the agent sends it to the center,
where the kiosk's page shows it. The technician screen's own self-test sends the same event
(``source: screen``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import MotcuaError, NetworkError
from common.ipc import call
from common.journal import EventJournal
from contract.events import SelfTest, SelfTestStep
from provisioning.ui import Console

Call = Callable[[str, dict[str, Any], float], dict[str, Any]]

#: the demo's virtual ID card (tests/…/profiles): any profile the simulator knows
DEMO_CARD_PROFILE = "elderly"


def socket_caller(socket: Path) -> Call:
    def caller(cmd: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        return call(socket, cmd, args, timeout=timeout)

    return caller


@dataclass
class SelfTestRun:
    kiosk_id: str
    steps: list[SelfTestStep] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(
        self, step: str, ok: bool, state: str = "", detail: str = "", since: float | None = None
    ) -> SelfTestStep:
        duration = int((time.monotonic() - (since or time.monotonic())) * 1000)
        entry = SelfTestStep(step, ok, state[:32], detail[:200], max(0, duration))
        self.steps.append(entry)
        return entry

    def report(self) -> SelfTest:
        ok = bool(self.steps) and all(s.ok for s in self.steps)
        return SelfTest(
            "pass" if ok else "fail", "cli", self.steps, int((time.monotonic() - self.started) * 1000)
        )


def _latest_png(folder: Path) -> Path | None:
    try:
        pngs = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    return pngs[-1] if pngs else None


def _card(console: Console, app: Call, simulated: bool, profile: str) -> tuple[bool, str, str]:
    """Lay the test card (the demo's virtual chip, or the technician's card) and ask the reader."""
    try:
        if simulated:
            app("sim.citizen", {"profile": profile, "show_qr": False, "insert": True}, 20)
        else:
            console.line("    → Đặt thẻ thử lên đầu đọc / lay the test card on the reader")
        verdict: dict[str, Any] = {}
        deadline = time.monotonic() + (5 if simulated else 60)
        while True:
            verdict = app("app.self_test", {}, 60).get("card_reader") or {}
            if verdict.get("card_answers") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if simulated:
            app("sim.citizen", {"remove": True}, 20)
    except MotcuaError as exc:
        return False, "error", exc.message[:200]
    ok = bool(verdict.get("ok")) and bool(verdict.get("card_answers"))
    return (
        ok,
        str(verdict.get("state") or "missing"),
        "card answered" if ok else str(verdict.get("error") or "no card answered"),
    )


def _scan(
    console: Console, app: Call, simulated: bool, printer_dir: Path | None, timeout_s: float
) -> dict[str, Any]:
    """The next scan, taken from the flows: the demo shows the printed ticket's image to its camera."""
    if not simulated:
        console.line("    → Đưa mã QR của phiếu thử vào máy quét / hold the test ticket's QR to the scanner")
        return app("app.await_input", {"kind": "scan", "timeout_s": timeout_s}, timeout_s + 5)
    png = _latest_png(printer_dir) if printer_dir is not None else None
    if png is None:
        return {"seen": False, "error": "no printed test ticket to show"}
    import threading

    box: dict[str, Any] = {}
    failure: list[str] = []

    def wait() -> None:
        try:
            box.update(app("app.await_input", {"kind": "scan", "timeout_s": timeout_s}, timeout_s + 5))
        except MotcuaError as exc:
            failure.append(exc.message)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the capture is armed before the image is shown
    app("sim.scanner", {"show": str(png)}, 10)
    waiter.join(timeout_s + 10)
    if failure:
        raise NetworkError(failure[0])
    return box or {"seen": False}


def run_selftest(
    console: Console,
    app: Call,
    *,
    kiosk_id: str,
    journal_path: Path,
    simulated: bool,
    printer_dir: Path | None,
    touch_timeout_s: float = 60.0,
    scan_timeout_s: float = 60.0,
    card_profile: str = DEMO_CARD_PROFILE,
    skip: tuple[str, ...] = (),
) -> SelfTest:
    run = SelfTestRun(kiosk_id)
    # 1. devices
    with console.step("selftest.devices") as step:
        since = time.monotonic()
        try:
            health = app("app.health", {}, 10)
        except MotcuaError as exc:
            raise NetworkError(f"the kiosk app does not answer on its control socket: {exc.message}") from exc
        devices = {name: str(d.get("state")) for name, d in (health.get("devices") or {}).items()}
        missing = [n for n, s in devices.items() if s in ("missing", "unknown")]
        run.add(
            "devices",
            not missing,
            "ok" if not missing else "missing",
            ", ".join(f"{k}={v}" for k, v in devices.items()),
            since,
        )
        step["note"] = ", ".join(f"{k}={v}" for k, v in devices.items())
        step["ok_override"] = not missing
    # 2. printer
    if "printer" not in skip:
        with console.step("selftest.printer") as step:
            since = time.monotonic()
            try:
                app("app.print_test_ticket", {}, 90)
                printer_state = str(
                    (app("app.health", {}, 10).get("devices") or {}).get("printer", {}).get("state")
                )
                ok = printer_state == "ok"
                run.add("printer", ok, printer_state, "test ticket printed; status read back", since)
            except MotcuaError as exc:
                printer_state, ok = "error", False
                run.add("printer", False, "error", exc.message, since)
            step["note"] = f"printer={printer_state}"
            step["ok_override"] = ok
    # 3. card
    if "card" not in skip:
        with console.step("selftest.card") as step:
            since = time.monotonic()
            if devices.get("card_reader") == "disabled":
                run.add(
                    "card", True, "disabled", "the card reader is switched off in the kiosk's file", since
                )
                step["note"] = "card reader disabled"
            else:
                ok, state, detail = _card(console, app, simulated, card_profile)
                run.add("card", ok, state, detail, since)
                step["note"] = detail
                step["ok_override"] = ok
    # 4. scanner: the test ticket's QR
    if "scanner" not in skip:
        with console.step("selftest.scanner") as step:
            since = time.monotonic()
            expected = f"MOTCUA-TEST:{kiosk_id}"
            try:
                seen = _scan(console, app, simulated, printer_dir, scan_timeout_s)
            except MotcuaError as exc:
                seen = {"seen": False, "error": exc.message}
            text = str(seen.get("text", ""))
            ok = bool(seen.get("seen")) and text == expected
            if seen.get("seen"):
                detail = f"read {text[:60]!r} ({seen.get('source', '')})"
            else:
                detail = str(seen.get("error") or "nothing read")
            run.add("scanner", ok, "ok" if ok else "no_read", detail, since)
            step["note"] = detail
            step["ok_override"] = ok
    # 5. touch
    if "touch" not in skip:
        with console.step("selftest.touch") as step:
            since = time.monotonic()
            console.line("    → Chạm vào màn hình / touch the screen")
            try:
                touched = app(
                    "app.await_input", {"kind": "touch", "timeout_s": touch_timeout_s}, touch_timeout_s + 5
                )
                ok, detail = (
                    bool(touched.get("seen")),
                    "touched" if touched.get("seen") else "no touch in time",
                )
            except MotcuaError as exc:
                ok, detail = False, exc.message[:200]
            run.add("touch", ok, "ok" if ok else "no_touch", detail, since)
            step["ok_override"] = ok
    report = run.report()
    with console.step("selftest.report") as step:
        journal = EventJournal(journal_path)
        try:
            entry = journal.append(report)
        finally:
            journal.close()
        step["note"] = f"{report.result} (event seq {entry.seq})"
    return report
