"""Commands from the center: validated, executed once through the app's control socket, answered once."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from contract.commands import reason_kind
from contract.topics import KioskTopics
from tests.agent.conftest import CENTER, wait_until

pytestmark = pytest.mark.broker

T = KioskTopics(CENTER, "kiosk-a")


def soon(minutes: float = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def command(name: str, args: dict | None = None, request_id: str | None = None, **extra) -> tuple[str, bytes]:
    rid = request_id or uuid.uuid4().hex
    body = {"schema": "command/1", "request_id": rid, "command": name, "args": args or {},
            "expires_at": soon(), **extra}
    return rid, json.dumps(body).encode()


def raw(text: str) -> bytes:
    """A hand-written command payload with a valid expiry added (the parts under test are the others)."""
    return text.replace('"request_id"', f'"expires_at":"{soon()}","request_id"', 1).encode()


@pytest.fixture
def session(make_agent, peer_factory, fake_app):
    peer = peer_factory(T.cmd_res, f"{T.base}/blob/#")
    with make_agent() as agent:
        yield agent, peer, fake_app


def ask(peer, name, args=None, **kw) -> dict:
    rid, payload = command(name, args, **kw)
    peer.publish(T.cmd_req, payload)
    return peer.wait_for(T.cmd_res, lambda d: d["request_id"] == rid)


@pytest.mark.parametrize(
    ("name", "args", "app_cmd", "app_args"),
    [
        ("print_test_ticket", {}, "app.print_test_ticket", {}),
        (
            "set_notice",
            {"text_vi": "Hôm nay nghỉ trưa 11:30–13:00", "text_en": "Lunch break"},
            "app.notice",
            {"text_vi": "Hôm nay nghỉ trưa 11:30–13:00", "text_en": "Lunch break"},
        ),
        ("set_notice", {"text_vi": ""}, "app.notice", {"text_vi": "", "text_en": ""}),
        ("restart_app", {}, "app.restart", {}),
        (
            "set_service_mode",
            {"out_of_service": True, "reason": "Máy in hỏng"},
            "app.service_mode",
            {"out_of_service": True, "reason": "Máy in hỏng"},
        ),
        (
            "set_service_mode",
            {"out_of_service": False},
            "app.service_mode",
            {"out_of_service": False, "reason": ""},
        ),
    ],
)
def test_command_round_trip(session, name, args, app_cmd, app_args):
    _agent, peer, app = session
    result = ask(peer, name, args)
    assert result["status"] == "ok" and result["command"] == name and result["schema"] == "command-result/1"
    assert reason_kind(result["status"], result["reason"]) == "done" and result["code"] is None
    assert app.called(app_cmd) == [app_args]
    # the arguments as the kiosk read them (defaults filled), for a fleet that did not send it
    assert result["args"] == app_args


def test_screenshot_is_sent_as_a_blob(session):
    _agent, peer, app = session
    Image.new("RGB", (108, 192), (200, 30, 30)).save(app.screenshot_path)
    png = app.screenshot_path.read_bytes()
    result = ask(peer, "screenshot")
    assert result["status"] == "ok", result
    info = result["result"]
    assert info == {
        "blob_topic": info["blob_topic"],
        "bytes": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
        "content_type": "image/png",
        "files": [],
    }
    assert peer.wait(lambda: bool(peer.on(info["blob_topic"])))
    assert peer.on(info["blob_topic"])[0].payload == png
    assert not app.screenshot_path.exists()  # deleted once sent: it may show what was on screen


def test_a_screenshot_that_cannot_be_sent_is_deleted_too(make_agent, peer_factory, fake_app):
    peer = peer_factory(T.cmd_res)
    Image.new("RGB", (1200, 1200)).save(fake_app.screenshot_path, compress_level=0)  # ~4.3 MB of PNG
    with make_agent(max_blob_bytes=1 << 20):
        result = ask(peer, "screenshot")
    assert result["status"] == "error" and "exceeds max_blob_bytes" in result["reason"]
    assert result["code"] == "blob_too_large"
    assert not fake_app.screenshot_path.exists()


def test_upload_logs_drops_card_qr_lines_and_scrubs_personal_values(session, data_dir):
    """A real CCCD QR line logged by mistake: the numbers went, but the name, birth date and address
    stayed (security review item 6). Now the line goes whole, and personal-looking values anywhere."""
    _agent, peer, _app = session
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    qr = "079123456789|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|01012021"
    (logs / "kiosk.log").write_text(
        "\n".join(
            [
                "2026-11-23 09:00:00,000 INFO kiosk.core: kiosk ready",
                f"2026-11-23 09:00:01,000 ERROR kiosk.core: unexpected error: ValueError: bad scan {qr!r}",
                "2026-11-23 09:00:02,000 WARNING x: citizen Trần Thị Bích Ngọc born 03/11/1990",
                "2026-11-23 09:00:03,000 WARNING x: MRZ IDVNM1900098761079190009876<<<",
                "2026-11-23 09:00:04,000 WARNING kiosk.core: LookupDossier failed: no dossier "
                "000.00.10.H12-210901-9999 in the demo store",
                "2026-11-23 09:00:05,000 INFO kiosk.core: last line",
            ]
        ),
        encoding="utf-8",
    )
    result = ask(peer, "upload_logs", {"max_kb": 64})
    assert result["status"] == "ok", result
    assert peer.wait(lambda: bool(peer.on(result["result"]["blob_topic"])))
    text = gzip.decompress(peer.on(result["result"]["blob_topic"])[0].payload).decode()
    for value in ("079123456789", "123456789", "Nguyễn", "Văn An", "01011990", "Hà Nội", "01012021",
                  "Trần", "Bích Ngọc", "03/11/1990", "IDVNM", "079190009876", "210901-9999"):
        assert value not in text, value
    assert "[redacted: a line with an ID card's QR text]" in text
    assert "kiosk ready" in text and "last line" in text and "000.00.10.H12-[redacted-dossier]" in text


def test_upload_logs_scrubs_id_numbers(session, data_dir):
    _agent, peer, _app = session
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "kiosk.log").write_text("line one\ncard read for 079203001234 ok\nold id 025123456 seen\nlast\n")
    result = ask(peer, "upload_logs", {"max_kb": 64})
    assert result["status"] == "ok", result
    assert peer.wait(lambda: bool(peer.on(result["result"]["blob_topic"])))
    text = gzip.decompress(peer.on(result["result"]["blob_topic"])[0].payload).decode()
    assert "079203001234" not in text and "025123456" not in text
    assert "card read for [redacted-id] ok" in text and "==> kiosk.log <==" in text
    assert "agent.log" not in result["result"]["files"]  # this agent runs in-process: no file handler


@pytest.mark.parametrize(
    ("payload", "reason_part"),
    [
        (
            raw('{"schema":"command/1","request_id":"r-unknown","command":"format_disk","args":{}}'),
            "unknown command",
        ),
        (
            raw('{"schema":"command/1","request_id":"r-args","command":"set_notice","args":{"text":"x"}}'),
            "args.text",
        ),
        (
            raw('{"schema":"command/1","request_id":"r-type","command":"set_service_mode","args":{"out_of_service":"yes"}}'),
            "true or false",
        ),
        (
            raw('{"schema":"command/1","request_id":"r-long","command":"set_notice","args":{"text_vi":"'
                + "x" * 301
                + '"}}'),
            "at most 300",
        ),
        (raw('{"schema":"command/2","request_id":"r-schema","command":"restart_app"}'), "command.schema"),
        (b'{"schema":"command/1","request_id":"r-no-expiry","command":"restart_app"}', "command.expires_at"),
        (raw('{"schema":"command/1","request_id":"r-notice-control","command":"set_notice",'
             '"args":{"text_vi":"Ngh\\u1ec9 tr\\u01b0a\\u001b[p"}}'), "control or format characters"),
        (
            raw('{"schema":"command/1","request_id":"r-extra","command":"restart_app","sudo":true}'),
            "command.sudo",
        ),
    ],
)
def test_bad_commands_are_rejected_and_never_executed(session, payload, reason_part):
    _agent, peer, app = session
    rid = json.loads(payload)["request_id"]
    peer.publish(T.cmd_req, payload)
    result = peer.wait_for(T.cmd_res, lambda d: d["request_id"] == rid)
    assert result["status"] == "error" and reason_part in result["reason"], result
    time.sleep(0.1)
    assert [c for c, _ in app.calls if c != "app.health"] == []


def test_garbage_is_answered_without_request_id(session):
    _agent, peer, _app = session
    peer.publish(T.cmd_req, b"\xff not json")
    result = peer.wait_for(T.cmd_res, lambda d: d["request_id"] is None)
    assert result["status"] == "error" and "not UTF-8 JSON" in result["reason"]
    assert reason_kind(result["status"], result["reason"]) == "rejected"  # what a fleet recognises
    assert result["code"] == "rejected"
    assert result["args"] is None  # nothing could be read


def test_a_request_id_is_executed_once_and_answered_with_the_same_result(session):
    _agent, peer, app = session
    rid, payload = command("print_test_ticket")
    peer.publish(T.cmd_req, payload)
    first = peer.wait_for(T.cmd_res, lambda d: d["request_id"] == rid)
    peer.publish(T.cmd_req, payload)  # the center retries (or the broker redelivers)
    assert peer.wait(lambda: len([m for m in peer.on(T.cmd_res) if m.json()["request_id"] == rid]) == 2)
    answers = [m.json() for m in peer.on(T.cmd_res) if m.json()["request_id"] == rid]
    assert answers[0] == answers[1] == first
    assert len(app.called("app.print_test_ticket")) == 1


def test_expired_command_is_not_executed(session):
    _agent, peer, app = session
    result = ask(peer, "restart_app", expires_at="2020-01-01T00:00:00+00:00")
    assert result["status"] == "error" and "expired" in result["reason"]
    assert reason_kind(result["status"], result["reason"]) == "expired" and result["code"] == "expired"
    assert result["args"] == {}  # a refusal says what was asked too
    assert app.called("app.restart") == []


def test_a_command_valid_for_longer_than_the_ledger_remembers_is_refused(session):
    """The ledger forgets request ids after 30 days: a command must not outlive that (issue 10 #12)."""
    _agent, peer, app = session
    result = ask(peer, "restart_app", expires_at=soon(minutes=60 * 24 * 40))
    assert result["status"] == "error" and "more than 7 days ahead" in result["reason"]
    assert reason_kind(result["status"], result["reason"]) == "too_far_ahead"
    assert result["code"] == "too_far_ahead"
    assert app.called("app.restart") == []


def test_v5_response_topic_and_correlation_data(session):
    _agent, peer, _app = session
    rid, payload = command("print_test_ticket")
    reply_to = f"{T.base}/cmd/res/console-7"
    peer.client.subscribe(reply_to, 1)
    time.sleep(0.2)
    peer.publish(T.cmd_req, payload, response_topic=reply_to, correlation=b"corr-42")
    assert peer.wait(lambda: bool(peer.on(reply_to)))
    message = peer.on(reply_to)[0]
    assert message.json()["request_id"] == rid and message.correlation == b"corr-42"


def test_command_when_the_app_is_down(make_agent, peer_factory):
    peer = peer_factory(T.cmd_res)
    with make_agent():
        result = ask(peer, "print_test_ticket")
    assert result["status"] == "error" and result["reason"].startswith("app not reachable")
    assert reason_kind(result["status"], result["reason"]) == "app_unreachable"
    assert result["code"] == "app_unreachable"


NAME = "Trần Thị Bích Ngọc"


@pytest.fixture
def kiosk_app(data_dir):
    """The real kiosk app without a window (every device simulated), on the agent's control socket."""
    import dataclasses
    from pathlib import Path

    from kiosk.runtime import KioskRuntime, demo_config

    config = demo_config(data_dir)
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    runtime = KioskRuntime(dataclasses.replace(config, devices=devices), synchronous=True)

    def capture() -> Path:  # what the window does
        path = runtime.screenshot_path()
        Image.new("RGB", (54, 96), (200, 30, 30)).save(path)
        return path

    runtime.screenshot = capture
    runtime.start(ui_call=lambda fn: fn())
    yield runtime
    runtime.stop()


def test_the_apps_own_errors_reach_the_result_as_codes_without_personal_data(
    make_agent, peer_factory, kiosk_app
):
    """The app's error (its type and code on the control socket) becomes the result's ``code``, so a
    fleet can say why in its own language; the English reason stays as it was, for logs."""
    from datetime import date

    from common.ipc import call
    from kiosk.session import Identity

    printer = {"paper": ("out", "ok"), "cover_open": (True, False), "online": (False, True)}
    peer = peer_factory(T.cmd_res)
    results = {}
    with make_agent():
        for setting, (broken, fixed) in printer.items():
            call(kiosk_app.control.path, "sim.printer", {setting: broken})
            results[setting] = ask(peer, "print_test_ticket")
            call(kiosk_app.control.path, "sim.printer", {setting: fixed})
        results["fixed"] = ask(peer, "print_test_ticket")
        core = kiosk_app.core
        core.touch()
        core.start("ticket")
        assert core.session is not None
        core.session.identity = Identity(NAME, date(1990, 11, 3), "genuine")  # the name on screen
        results["screenshot"] = ask(peer, "screenshot")
    codes = {name: (r["status"], r["code"]) for name, r in results.items()}
    assert codes == {
        "paper": ("error", "printer_paper_out"),
        "cover_open": ("error", "printer_cover_open"),
        "online": ("error", "printer_offline"),
        "fixed": ("ok", None),
        "screenshot": ("error", "personal_data_on_screen"),
    }
    assert results["paper"]["reason"].startswith("app.print_test_ticket: PrinterPaperOutError: ")
    assert "ScreenshotRefused: screenshot refused" in results["screenshot"]["reason"]
    for result in results.values():  # nothing of the citizen on screen reaches the center
        text = json.dumps(result, ensure_ascii=False)
        assert NAME not in text and "1990" not in text, result


@pytest.mark.parametrize(
    ("name", "args", "app_cmd", "error", "code"),
    [
        # the control server's own answer to a handler's ValueError: BadArguments, no code
        ("set_service_mode", {"out_of_service": True}, "app.service_mode", ValueError("no"), "app_refused"),
        ("restart_app", {}, "app.restart", "KioskError", "app_error"),
        ("reload_config", {}, "app.reload_config", "ConfigError", "config_refused"),
        ("print_test_ticket", {}, "app.print_test_ticket", "PrinterTextError", "printer_error"),
        ("set_notice", {"text_vi": "a"}, "app.notice", "PrinterUnavailableError", "printer_unavailable"),
    ],
)
def test_each_kind_of_app_answer_has_its_code(session, name, args, app_cmd, error, code):
    from common.errors import ConfigError
    from drivers.printer.errors import PrinterTextError, PrinterUnavailableError
    from kiosk.errors import KioskError

    kinds = {"KioskError": KioskError, "ConfigError": ConfigError, "PrinterTextError": PrinterTextError,
             "PrinterUnavailableError": PrinterUnavailableError}
    _agent, peer, app = session
    app.errors[app_cmd] = kinds[error]("it failed") if isinstance(error, str) else error
    result = ask(peer, name, args)
    assert (result["status"], result["code"]) == ("error", code), result
    assert result["reason"].startswith(f"{app_cmd}: ")


def test_no_log_files_has_its_code(session):
    _agent, peer, _app = session  # a fresh data dir: no logs/ yet
    result = ask(peer, "upload_logs")
    assert (result["status"], result["code"]) == ("error", "no_log_files"), result


def test_a_command_interrupted_by_a_crash_is_not_run_again(make_agent, peer_factory, fake_app, data_dir):
    from edge_agent.state import AgentState

    state = AgentState(data_dir / "agent-state.sqlite")
    state.command_started("r-crashed", "restart_app")  # the previous agent died while executing it
    state.close()
    peer = peer_factory(T.cmd_res)
    with make_agent():
        _rid, payload = command("restart_app", request_id="r-crashed")
        peer.publish(T.cmd_req, payload)
        result = peer.wait_for(T.cmd_res, lambda d: d["request_id"] == "r-crashed")
    assert result["status"] == "error" and "not executed again" in result["reason"]
    assert reason_kind(result["status"], result["reason"]) == "interrupted"
    assert result["code"] == "interrupted"
    assert result["args"] == {}
    assert fake_app.called("app.restart") == []


def test_commands_queued_while_offline_are_delivered_on_reconnect(make_agent, peer_factory, fake_app):
    peer = peer_factory(T.cmd_res)
    with make_agent():
        pass  # first connection creates the persistent session (clean start off, session expiry)
    rid, payload = command("set_notice", {"text_vi": "Tạm ngưng phục vụ"})
    peer.publish(T.cmd_req, payload)  # the kiosk is away: the broker queues it in the session
    with make_agent():
        result = peer.wait_for(T.cmd_res, lambda d: d["request_id"] == rid)
    assert result["status"] == "ok"
    assert fake_app.called("app.notice") == [{"text_vi": "Tạm ngưng phục vụ", "text_en": ""}]


def test_a_result_stored_but_not_acknowledged_is_published_after_the_next_birth(
    make_agent, peer_factory, data_dir
):
    from contract.commands import CommandResult
    from edge_agent.state import AgentState

    state = AgentState(data_dir / "agent-state.sqlite")
    result = CommandResult("r-offline", "print_test_ticket", "ok", "done", {"printed": True}).to_data()
    state.command_done("r-offline", "print_test_ticket", result)  # executed while the broker was away
    state.close()
    peer = peer_factory(T.cmd_res)
    with make_agent() as agent:
        got = peer.wait_for(T.cmd_res, lambda d: d["request_id"] == "r-offline")
        assert got == result
        assert wait_until(lambda: agent.state.unpublished_results() == [])  # marked after its PUBACK


def test_the_demo_fleets_simulated_app_refuses_a_test_print_as_the_real_app_does(
    make_agent, peer_factory, data_dir
):
    """``main.py simfleet fault --paper out`` on a demo kiosk, then a test print from the console: the
    simulated app answers with the real app's printer code, so the demo's console says why."""
    from simfleet.kiosks import SimulatedApp

    devices = {"printer": "ok", "card_reader": "ok", "scanner": "ok"}
    app = SimulatedApp(data_dir, lambda: dict(devices))
    app.start()
    try:
        peer = peer_factory(T.cmd_res)
        with make_agent():
            for state, code in (
                ("paper_out", "printer_paper_out"), ("cover_open", "printer_cover_open"),
                ("offline", "printer_offline"),
            ):
                devices["printer"] = state
                result = ask(peer, "print_test_ticket")
                assert (result["status"], result["code"]) == ("error", code), result
            devices["printer"] = "paper_near_end"  # still prints
            assert ask(peer, "print_test_ticket")["status"] == "ok"
    finally:
        app.stop()
