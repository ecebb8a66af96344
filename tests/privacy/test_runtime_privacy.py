"""The runtime without a window (security review items 3 and 6): the screenshot command refuses while
a citizen's personal data is on screen and keeps what it takes private and short-lived; the virtual
printer's renderings of a ticket with a name go with the citizen's session; retention bounds the rest.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from common.ipc import IpcError, call
from kiosk.runtime import SCREENSHOT_KEEP_S, KioskRuntime, demo_config
from kiosk.session import Identity

NAME = "Trần Thị Bích Ngọc"
#: what each runtime's window captured
SHOTS: dict[int, list[Path]] = {}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    # Short path: the control socket lives in the data dir (108-byte limit).
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"pv-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    config = demo_config(data_dir)
    config = dataclasses.replace(
        config,
        devices=dataclasses.replace(
            config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
        ),
    )
    made = KioskRuntime(config, synchronous=True)
    shots: list[Path] = []

    def capture() -> Path:  # what the window does: save the frame as a PNG where asked
        path = made.screenshot_path()
        Image.new("RGB", (54, 96), (200, 30, 30)).save(path)
        shots.append(path)
        return path

    made.screenshot = capture
    made.start(ui_call=lambda fn: fn())
    SHOTS[id(made)] = shots
    yield made
    made.stop()
    import shutil

    shutil.rmtree(data_dir, ignore_errors=True)


def screenshot(runtime: KioskRuntime) -> dict:
    return call(runtime.control.path, "app.screenshot", {})


def identify(runtime: KioskRuntime) -> None:
    assert runtime.core.session is not None
    runtime.core.session.identity = Identity(NAME, date(1990, 11, 3), "genuine")


def test_the_screenshot_is_refused_while_personal_data_is_on_screen(runtime: KioskRuntime) -> None:
    core = runtime.core
    core.touch()
    core.start("ticket")
    core.start("identify")  # the ID-card step: the card's QR, the CAN typed
    with pytest.raises(IpcError, match="ScreenshotRefused: screenshot refused: the ID-card step"):
        screenshot(runtime)
    identify(runtime)
    core.close_flow()  # back to the ticket flow, the name on screen
    with pytest.raises(IpcError, match="an identified citizen's name"):
        screenshot(runtime)
    core.act("choose", code="HO_TICH")
    core.pump()
    assert core.flow is not None and core.flow.state == "done"  # the ticket with the name
    with pytest.raises(IpcError, match="ScreenshotRefused"):
        screenshot(runtime)
    core.go_home()  # going home wipes the identity
    core.start("lookup")
    for char in "000.00.10":
        core.act("type", char=char)
    with pytest.raises(IpcError, match="a dossier code"):
        screenshot(runtime)
    assert SHOTS[id(runtime)] == []  # nothing was captured while refused
    core.end_session("finished")
    path = Path(screenshot(runtime)["png_path"])
    assert path.read_bytes().startswith(b"\x89PNG")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_screenshots_left_behind_are_deleted_after_a_short_retention(runtime: KioskRuntime) -> None:
    runtime.core.end_session("finished")
    first = Path(screenshot(runtime)["png_path"])
    old = time.time() - SCREENSHOT_KEEP_S - 1
    os.utime(first, (old, old))  # the agent never collected it
    second = Path(screenshot(runtime)["png_path"])
    assert not first.exists() and second.exists()
    os.utime(second, (old, old))
    runtime.prune_outputs()  # the device poller's loop calls it every few seconds
    assert not second.exists()


def test_a_ticket_with_a_name_is_deleted_from_the_virtual_printer_when_the_visit_ends(
    runtime: KioskRuntime,
) -> None:
    printer: Any = getattr(runtime.devices.printer, "simulator", None)
    core = runtime.core
    core.touch()
    core.start("ticket")
    core.act("choose", code="HO_TICH")  # no name on this one
    core.pump()
    anonymous = printer.last_png
    core.end_session("finished")
    core.touch()
    identify(runtime)
    core.start("ticket")
    core.act("choose", code="HO_TICH")
    core.pump()
    named = printer.last_png
    assert named != anonymous and named.exists()
    assert stat.S_IMODE(named.stat().st_mode) == 0o600 and stat.S_IMODE(named.parent.stat().st_mode) == 0o700
    printer.run_out_after(150)  # the roll ends in the middle of the next ticket with the name
    core.start("ticket")
    core.act("choose", code="CHUNG_THUC")
    core.pump()
    torn = printer.torn[-1]
    assert torn.exists()
    core.end_session("timeout")
    assert not named.exists() and not torn.exists()
    assert anonymous.exists()  # a ticket without a name follows the retention rule only
    printer.set_paper("ok")
    core.touch()
    identify(runtime)
    core.start("ticket")
    core.act("choose", code="HO_TICH")
    core.pump()
    named_again = printer.last_png
    core.go_home()  # an identified citizen who goes home starts over: the name goes now
    assert not named_again.exists()


def test_the_virtual_printer_keeps_the_last_n_for_n_seconds(tmp_path: Path) -> None:
    from drivers.printer import PrinterConfig, TicketContent, open_printer

    out = tmp_path / "out"
    config = PrinterConfig(output_dir=str(out), output_keep_last=3, output_keep_s=1.0)
    content = TicketContent("Trung tâm", "Hộ tịch", "A001", ["1"], datetime.now(), None)
    with open_printer(config) as printer:
        sim = printer.simulator
        assert sim is not None
        for _ in range(5):
            printer.print_ticket(content)
        assert sorted(p.name for p in out.glob("*.png")) == [p.name for p in sim.printed[-3:]]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.glob("*.png"))
        time.sleep(1.2)
        printer.print_ticket(content)
        assert sim.prune() == 0  # printing pruned already: only the newest is younger than a second
        assert [p.name for p in out.glob("*.png")] == [sim.printed[-1].name]
        time.sleep(1.2)
        assert sim.prune() == 1 and list(out.glob("*.png")) == []
    # A restart finds the files of an earlier run and applies the rule to them too.
    stale = out / "ticket-0099.png"
    Image.new("1", (8, 8)).save(stale)
    old = time.time() - 60
    os.utime(stale, (old, old))
    with open_printer(config):
        assert not stale.exists()
