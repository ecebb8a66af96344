"""The web side of the MQTT phase, in-process: the console (roles, the contract's check, audit, blobs
served only when they match), configuration forms (Vietnamese errors next to their field, versions,
audit), notification routes (audited), and the forms' reading and diff on their own."""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from contract.commands import (
    REASON_APP_UNREACHABLE,
    REASON_DONE,
    REASON_INTERRUPTED,
    REASON_REJECTED,
    RESULT_CODES,
    Command,
)
from fleet.store import Scope, Store, open_store
from fleet.store.commands import REASON_NOT_SENT
from fleet.web import config_forms as forms
from fleet.web.i18n import Translator
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.web import browser

ALL = Scope.everything()
K = "kiosk-bt-01"


@pytest.fixture
def web_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(sqlite_url, clock=clock)
    build(store)
    yield store
    store.close()


def test_console_commands_are_checked_audited_and_only_for_technicians_and_above(web_store: Store) -> None:
    with browser(web_store, "xem.bt") as viewer:
        page = viewer.client.get(f"/kiosks/{K}")
        assert page.status_code == 200 and 'data-command="screenshot"' not in page.text  # no forms to send
        assert viewer.post(f"/kiosks/{K}/commands", {"command": "screenshot"}).status_code == 403
    with browser(web_store, "kythuat.bt") as tech:
        refused = tech.post(f"/kiosks/{K}/commands", {"command": "set_notice", "text_vi": "a\u202eb"})
        assert refused.status_code == 400
        assert "Nội dung tiếng Việt: không được chứa ký tự điều khiển hay ký tự định dạng ẩn" in refused.text
        assert tech.post(f"/kiosks/{K}/commands", {"command": "restart_app"}).status_code == 400  # no confirm
        bad_kb = tech.post(f"/kiosks/{K}/commands", {"command": "upload_logs", "max_kb": "9000"})
        assert "Dung lượng tối đa (KB): phải là số từ 1 đến 4096 (đã nhập 9000)" in bad_kb.text
        assert tech.post(f"/kiosks/{K}/commands", {"command": "format_disk"}).status_code == 404
        sent = tech.post(
            f"/kiosks/{K}/commands",
            {
                "command": "set_service_mode",
                "out_of_service": "on",
                "reason": "Bảo trì máy in",
                "lifetime": "86400",
            },
        )
        assert sent.status_code == 303 and sent.headers["location"].endswith("#console")
    [command] = [c for c in web_store.commands.for_kiosk(ALL, K) if c.command == "set_service_mode"]
    assert (
        command.args == {"out_of_service": True, "reason": "Bảo trì máy in"} and command.status == "pending"
    )
    assert command.requested_at is not None and command.expires_at is not None
    assert round((command.expires_at - command.requested_at).total_seconds()) == 86400
    entry = web_store.audit.page(ALL, action="command.create").items[0]
    assert (entry.username, entry.object_id, entry.after["request_id"]) == (  # type: ignore[index]
        "kythuat.bt",
        K,
        command.request_id,
    )
    assert len(web_store.audit.page(ALL, action="command.create").items) == 1  # the refused ones are not


def _blob_command(
    store: Store, command: str, data: bytes, content_type: str, *, sha: str | None = None
) -> str:
    user = store.accounts.credentials("kythuat.bt")[0]  # type: ignore[index]
    created = store.commands.create(ALL, K, command, {}, user.id)
    store.blobs.accept("hcm-ben-thanh", K, created.request_id, data, commands_with_blobs=[command])
    store.commands.record_result(
        "hcm-ben-thanh",
        K,
        created.request_id,
        command=command,
        status="ok",
        reason="done",
        at=None,
        result={
            "blob_topic": f"motcua/v1/hcm-ben-thanh/{K}/blob/{created.request_id}",
            "bytes": len(data),
            "sha256": sha or hashlib.sha256(data).hexdigest(),
            "content_type": content_type,
            "files": [],
        },
    )
    return created.request_id


def test_blobs_are_served_in_scope_only_and_only_when_they_match_their_result(web_store: Store) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    shot = _blob_command(web_store, "screenshot", png, "image/png")
    logs = _blob_command(
        web_store, "upload_logs", gzip.compress(b"==> kiosk.log <==\nok\n"), "application/gzip"
    )
    forged = _blob_command(web_store, "screenshot", png, "image/png", sha="0" * 64)
    with browser(web_store, "xem.bt") as viewer:  # a viewer of the center may look
        image = viewer.client.get(f"/kiosks/{K}/blobs/{shot}")
        assert image.status_code == 200 and image.content == png
        assert (
            image.headers["content-type"] == "image/png"
            and image.headers["x-content-type-options"] == "nosniff"
        )
        archive = viewer.client.get(f"/kiosks/{K}/blobs/{logs}")
        assert archive.headers["content-disposition"] == f'attachment; filename="nhat-ky-{K}-{logs}.log.gz"'
        assert gzip.decompress(archive.content) == b"==> kiosk.log <==\nok\n"
        assert viewer.client.get(f"/kiosks/{K}/blobs/{forged}").status_code == 404  # not what was announced
        page = viewer.client.get(f"/kiosks/{K}").text
        assert f'data-screenshot="{shot}"' in page and f'data-logs="{logs}"' in page
        assert f'data-screenshot="{forged}"' not in page and "không khớp" in page
    with browser(web_store, "quanly.tdm") as other:  # another center's manager: nothing, by any URL
        assert other.client.get(f"/kiosks/{K}/blobs/{shot}").status_code == 404


def test_another_fleets_commands_are_listed_as_theirs_in_vietnamese_and_english(web_store: Store) -> None:
    """A command another fleet sent this kiosk (its result kept here as theirs) is on the kiosk page,
    its CSV and JSON, marked so, with the arguments the kiosk echoed; its screenshot is not here (the
    page says where it is, the blob URL is 404); another center's manager sees none of it."""
    center = "hcm-ben-thanh"
    notice = {"text_vi": "Tỉnh: nghỉ trưa 11:30", "text_en": "Lunch break"}
    assert web_store.commands.record_result(
        center, K, "fleet-prov-1", command="set_notice", status="ok", reason="done", result={}, at=None,
        args=notice,
    ) == "elsewhere"
    shot = {"blob_topic": f"motcua/v1/{center}/{K}/blob/fleet-prov-2", "bytes": 70, "sha256": "a" * 64,
            "content_type": "image/png", "files": []}
    assert web_store.commands.record_result(
        center, K, "fleet-prov-2", command="screenshot", status="ok", reason="done", result=shot, at=None,
    ) == "elsewhere"
    user = web_store.accounts.credentials("kythuat.bt")[0]  # type: ignore[index]
    ours = web_store.commands.create(ALL, K, "print_test_ticket", {}, user.id).request_id
    with browser(web_store, "xem.bt") as viewer:
        page = viewer.client.get(f"/kiosks/{K}").text
        rows = {r: page.split(f'data-request="{r}"', 1)[1].split("</tr>", 1)[0]
                for r in ("fleet-prov-1", "fleet-prov-2", ours)}
        assert 'data-sent-elsewhere="yes"' in rows["fleet-prov-1"]
        assert "Trang giám sát khác" in rows["fleet-prov-1"]
        assert html.escape("Tỉnh: nghỉ trưa 11:30") in rows["fleet-prov-1"]
        assert "Dữ liệu được lưu ở trang giám sát đã gửi lệnh" in rows["fleet-prov-2"]
        assert "data-screenshot" not in rows["fleet-prov-2"]
        assert "Đang chờ dữ liệu" not in rows["fleet-prov-2"]
        assert "data-sent-elsewhere" not in rows[ours] and "kythuat.bt" in rows[ours]
        assert viewer.client.get(f"/kiosks/{K}/blobs/fleet-prov-2").status_code == 404
        listed = viewer.client.get(f"/kiosks/{K}/commands?format=json").json()
        by_id = {row["request_id"]: row for row in listed["items"]}
        assert (by_id["fleet-prov-1"]["sent_elsewhere"], by_id[ours]["sent_elsewhere"]) == (True, False)
        assert by_id["fleet-prov-1"]["requested_by"] is None and by_id["fleet-prov-1"]["args"] == notice
        csv_text = viewer.client.get(f"/kiosks/{K}/commands?format=csv").text
        assert "Nguồn" in csv_text.splitlines()[0]
        assert "fleet-prov-1" in csv_text and "Trang giám sát khác" in csv_text
        viewer.post("/language", {"lang": "en", "next": f"/kiosks/{K}"})
        english = viewer.client.get(f"/kiosks/{K}").text
        row = english.split('data-request="fleet-prov-1"', 1)[1].split("</tr>", 1)[0]
        assert "Another fleet monitor" in row and "the province&#39;s or the center&#39;s" in row
        assert "kept by the fleet monitor that sent the command" in english
    with browser(web_store, "quanly.tdm") as other:  # another center's manager: nothing, by any URL
        assert other.client.get(f"/kiosks/{K}").status_code == 404
        assert other.client.get(f"/kiosks/{K}/commands?format=json").status_code == 404
        assert other.client.get(f"/kiosks/{K}/blobs/fleet-prov-1").status_code == 404


def _rows(page: str) -> dict[str, str]:
    """The command list's rows by request id (what is inside each <tr>)."""
    found = re.finditer(r'<tr data-request="([^"]+)"[^>]*>(.*?)</tr>', page, re.S)
    return {m.group(1): m.group(2) for m in found}


def _visible(cell: str) -> str:
    """What a row or cell shows (its text, not its attributes), one space between words."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())


def _titles(cell: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'title="([^"]*)"', cell)]


def _time_cell(row: str) -> str:
    return row.split('<td class="time">', 1)[1].split("</td>", 1)[0]


def _pages(store: Store) -> Iterator[tuple[str, dict[str, str]]]:
    """The kiosk page's command rows, in Vietnamese, then with the English toggle."""
    with browser(store, "xem.bt") as viewer:
        for language in ("vi", "en"):
            viewer.post("/language", {"lang": language, "next": f"/kiosks/{K}"})
            yield language, _rows(viewer.client.get(f"/kiosks/{K}").text)


def _ours(
    store: Store, clock: FakeClock, command: str, args: dict[str, Any], status: str, reason: str,
    code: str | None = None,
) -> str:
    user = store.accounts.credentials("kythuat.bt")[0]  # type: ignore[index]
    made = store.commands.create(ALL, K, command, args, user.id)
    store.commands.record_result(
        "hcm-ben-thanh", K, made.request_id, command=command, status=status, reason=reason, result={},
        at=clock.now, code=code,
    )
    return made.request_id


def test_every_known_outcome_of_a_command_is_said_in_the_pages_language_with_the_kiosks_text_kept(
    web_store: Store, clock: FakeClock
) -> None:
    """A finished command's "Chi tiết" is a sentence in the page's language, from the result's status,
    its command and the fixed reasons the agent and the fleet share (contract.commands.REASON_*,
    fleet.store.commands.REASON_*), never the kiosk's English as it is: that is in the title, for a
    technician. A reason nobody wrote from a fixed text (no log files) still gets its command's line."""
    past = clock.now - timedelta(hours=2)
    expired = Command.build("x", "restart_app", now=past, lifetime=timedelta(hours=1)).refusal(clock.now)
    too_far = Command.build("y", "restart_app", now=clock.now).refusal(clock.now - timedelta(days=8))
    assert expired is not None and too_far is not None
    cases: list[tuple[str, str, dict[str, Any], str, str]] = [
        ("printed", "print_test_ticket", {}, "ok", REASON_DONE),
        ("notice", "set_notice", {"text_vi": "Nghỉ trưa 11:30", "text_en": ""}, "ok", REASON_DONE),
        ("cleared", "set_notice", {"text_vi": "", "text_en": ""}, "ok", REASON_DONE),
        ("closed", "set_service_mode", {"out_of_service": True, "reason": ""}, "ok", REASON_DONE),
        ("opened", "set_service_mode", {"out_of_service": False, "reason": ""}, "ok", REASON_DONE),
        ("shot", "screenshot", {}, "ok", REASON_DONE),
        ("logs", "upload_logs", {"max_kb": 256}, "ok", REASON_DONE),
        ("reloaded", "reload_config", {}, "ok", REASON_DONE),
        ("restarted", "restart_app", {}, "ok", REASON_DONE),
        ("no_logs", "upload_logs", {"max_kb": 256}, "error", "no log files found: kiosk.log, agent.log"),
        ("paper", "print_test_ticket", {}, "error", "app.print_test_ticket: PrinterPaperOutError: out"),
        ("app_down", "screenshot", {}, "error", f"{REASON_APP_UNREACHABLE}no control socket at /run/k"),
        ("expired", "restart_app", {}, "error", expired),
        ("too_far", "restart_app", {}, "error", too_far),
        ("rejected", "set_notice", {"text_vi": "a"}, "error", f"{REASON_REJECTED}args.x: unknown key"),
        ("interrupted", "reload_config", {}, "error", REASON_INTERRUPTED),
        ("not_sent", "set_notice", {"text_vi": "a"}, "error", f"{REASON_NOT_SENT}args.x: unknown key"),
    ]
    ids = {name: _ours(web_store, clock, c, args, status, why) for name, c, args, status, why in cases}
    unsent = web_store.commands.create(
        ALL, K, "print_test_ticket", {}, None, expires_at=clock.now - timedelta(minutes=1)
    )
    web_store.outgoing.expire_unsent()  # the fleet's own reason: the broker never took it
    ids["unsent"] = unsent.request_id
    said = {
        "vi": {
            "printed": "Đã in phiếu thử.",
            "notice": "Đã cập nhật thông báo trên màn hình.",
            "cleared": "Đã xóa thông báo trên màn hình.",
            "closed": "Kiosk đã ngừng phục vụ.",
            "opened": "Kiosk đã phục vụ trở lại.",
            "shot": "Đã chụp màn hình.",
            "logs": "Đã gửi nhật ký.",
            "reloaded": "Ứng dụng đã nạp lại cấu hình.",
            "restarted": "Ứng dụng kiosk đang khởi động lại.",
            "no_logs": "Không lấy được nhật ký.",
            "paper": "Không in được phiếu thử.",
            "app_down": "Không chụp được màn hình: ứng dụng kiosk không chạy hoặc không trả lời.",
            "expired": "Kiosk không thực hiện: lệnh đến nơi khi đã hết hạn.",
            "too_far": "Kiosk không thực hiện: theo đồng hồ của kiosk, hạn của lệnh xa hơn mức cho phép",
            "rejected": "Kiosk không thực hiện: không đọc được lệnh",
            "interrupted": "Agent trên kiosk khởi động lại khi đang thực hiện lệnh",
            "not_sent": "Không gửi: lệnh không hợp lệ.",
            "unsent": "Hết hạn trước khi gửi được tới kiosk (không kết nối được máy chủ MQTT).",
        },
        "en": {
            "printed": "Test ticket printed.",
            "notice": "Home screen notice updated.",
            "cleared": "Home screen notice removed.",
            "closed": "The kiosk is out of service.",
            "opened": "The kiosk is back in service.",
            "shot": "Screenshot taken.",
            "logs": "Logs sent.",
            "reloaded": "The app reloaded its configuration.",
            "restarted": "The kiosk app is restarting.",
            "no_logs": "Could not fetch the logs.",
            "paper": "Could not print the test ticket.",
            "app_down": "Could not take a screenshot: the kiosk app is not running or not answering.",
            "expired": "Not carried out: the command reached the kiosk after it had expired.",
            "too_far": "Not carried out: by the kiosk's clock the command's expiry is further ahead",
            "rejected": "Not carried out: the kiosk could not read the command",
            "interrupted": "The kiosk's agent restarted while carrying out the command",
            "not_sent": "Not sent: the command is not valid.",
            "unsent": "Expired before it could be sent to the kiosk (the MQTT broker was not reachable).",
        },
    }
    raw = {c.request_id: c.result_reason or "" for c in web_store.commands.for_kiosk(ALL, K, limit=None)}
    prefix = {"vi": "Nguyên văn (tiếng Anh): ", "en": "Original text: "}
    for language, rows in _pages(web_store):
        for name, request_id in ids.items():
            detail = rows[request_id].rsplit("<td>", 1)[1]  # the last cell: "Chi tiết"
            assert said[language][name] in _visible(detail), (language, name, _visible(detail))
            assert raw[request_id] not in _visible(rows[request_id]), (language, name)  # not as it came
            assert f"{prefix[language]}{raw[request_id]}" in _titles(detail), (language, name)
    with browser(web_store, "xem.bt") as viewer:  # JSON keeps the machine values
        listed = viewer.client.get(f"/kiosks/{K}/commands?format=json").json()
    by_id = {row["request_id"]: row for row in listed["items"]}
    assert by_id[ids["no_logs"]]["result_reason"] == "no log files found: kiosk.log, agent.log"


def test_a_results_code_is_said_in_the_pages_language_and_exported_beside_the_kiosks_text(
    web_store: Store, clock: FakeClock
) -> None:
    """An error result with a code says why, in the page's language ("Không in được phiếu thử: máy in hết
    giấy."), the kiosk's English kept in the title; a code of the agent's fixed reasons has that reason's
    sentence; a code this fleet does not know (a newer agent's) falls back to the reason, as for an agent
    before codes. The CSV's "Chi tiết" is that sentence, the code and the English in their own columns;
    JSON has the machine values only."""
    paper = "app.print_test_ticket: PrinterPaperOutError: printer: out of paper before printing"
    refused = "app.screenshot: ScreenshotRefused: screenshot refused: the ID-card step is on screen"
    cases: list[tuple[str, str, str, str | None]] = [
        ("paper", "print_test_ticket", paper, "printer_paper_out"),
        ("cover", "print_test_ticket", "app.print_test_ticket: PrinterCoverOpenError: x",
         "printer_cover_open"),
        ("offline", "print_test_ticket", "app.print_test_ticket: PrinterOfflineError: y", "printer_offline"),
        ("personal", "screenshot", refused, "personal_data_on_screen"),
        ("busy", "set_notice", "app.notice: Busy: too many control requests at once", "app_busy"),
        ("no_logs", "upload_logs", "no log files found: kiosk.log, agent.log", "no_log_files"),
        ("down", "restart_app", f"{REASON_APP_UNREACHABLE}no control socket at /run/k", "app_unreachable"),
        ("interrupted", "reload_config", REASON_INTERRUPTED, "interrupted"),
        ("newer", "print_test_ticket", "app.print_test_ticket: PrinterJamError: x", "printer_jammed"),
        ("newer_down", "screenshot", f"{REASON_APP_UNREACHABLE}refused", "app_gone_fishing"),
        ("old", "print_test_ticket", paper, None),
    ]
    ids = {name: _ours(web_store, clock, c, {}, "error", why, code) for name, c, why, code in cases}
    said = {
        "vi": {
            "paper": "Không in được phiếu thử: máy in hết giấy.",
            "cover": "Không in được phiếu thử: nắp máy in đang mở.",
            "offline": "Không in được phiếu thử: máy in không phản hồi (đã tắt hoặc tuột cáp).",
            "personal": "Không chụp được màn hình: màn hình đang hiện thông tin cá nhân của người dân;",
            "busy": "Không cập nhật được thông báo: ứng dụng kiosk đang bận, vui lòng thử lại sau ít phút.",
            "no_logs": "Không lấy được nhật ký: không tìm thấy tệp nhật ký nào.",
            "down": "Không khởi động lại được ứng dụng: ứng dụng kiosk không chạy hoặc không trả lời.",
            "interrupted": "Agent trên kiosk khởi động lại khi đang thực hiện lệnh",
            "newer": "Không in được phiếu thử.",
            "newer_down": "Không chụp được màn hình: ứng dụng kiosk không chạy hoặc không trả lời.",
            "old": "Không in được phiếu thử.",
        },
        "en": {
            "paper": "Could not print the test ticket: the printer is out of paper.",
            "cover": "Could not print the test ticket: the printer's cover is open.",
            "offline": "Could not print the test ticket: the printer is not answering",
            "personal": "Could not take a screenshot: a citizen's personal data is on screen;",
            "busy": "Could not update the notice: the kiosk app is busy, try again in a few minutes.",
            "no_logs": "Could not fetch the logs: no log files were found.",
            "down": "Could not restart the app: the kiosk app is not running or not answering.",
            "interrupted": "The kiosk's agent restarted while carrying out the command",
            "newer": "Could not print the test ticket.",
            "newer_down": "Could not take a screenshot: the kiosk app is not running or not answering.",
            "old": "Could not print the test ticket.",
        },
    }
    # the outcome's kind: the code, else what the reason says (an unknown code is no code)
    kinds = {name: code for name, _, _, code in cases} | {
        "newer": "error", "newer_down": "app_unreachable", "old": "error"
    }
    reasons = {name: reason for name, _, reason, _ in cases}
    prefix = {"vi": "Nguyên văn (tiếng Anh): ", "en": "Original text: "}
    for language, rows in _pages(web_store):
        for name, request_id in ids.items():
            detail = rows[request_id].rsplit("<td>", 1)[1]  # the last cell: "Chi tiết"
            assert said[language][name] in _visible(detail), (language, name, _visible(detail))
            assert f"{prefix[language]}{reasons[name]}" in _titles(detail), (language, name)
            assert f'data-outcome="{kinds[name]}"' in detail, (name, detail)
    # every code of this version's agents has its words, in both languages (the fixed reasons have theirs)
    worded = {c for c in RESULT_CODES if all(Translator(t).has(f"command_code.{c}") for t in ("vi", "en"))}
    assert RESULT_CODES - worded == {"rejected", "expired", "too_far_ahead", "interrupted", "app_unreachable"}
    with browser(web_store, "xem.bt") as viewer:
        listed = viewer.client.get(f"/kiosks/{K}/commands?format=json").json()
        exported = viewer.client.get(f"/kiosks/{K}/commands?format=csv").text
    by_id = {row["request_id"]: row for row in listed["items"]}
    assert (by_id[ids["paper"]]["result_code"], by_id[ids["paper"]]["result_reason"]) == (
        "printer_paper_out", paper
    )
    assert by_id[ids["old"]]["result_code"] is None
    assert not any("máy in hết giấy" in str(value) for value in by_id[ids["paper"]].values())  # no sentence
    header, *lines = csv.reader(io.StringIO(exported.lstrip("\ufeff")))
    table = {line[header.index("Mã yêu cầu")]: dict(zip(header, line, strict=True)) for line in lines}
    assert table[ids["paper"]]["Chi tiết"] == "Không in được phiếu thử: máy in hết giấy."
    assert table[ids["paper"]]["Nguyên văn (tiếng Anh)"] == paper
    assert table[ids["paper"]]["Mã kết quả"] == "printer_paper_out"
    assert table[ids["old"]]["Chi tiết"] == "Không in được phiếu thử."
    assert (table[ids["old"]]["Mã kết quả"], table[ids["old"]]["Nguyên văn (tiếng Anh)"]) == ("", paper)


def test_command_arguments_are_labelled_and_an_empty_optional_one_is_left_out(
    web_store: Store, clock: FakeClock
) -> None:
    """``text_en`` left blank was listed as "text_en:"; names are labelled in the page's language, an
    empty optional argument is left out and an empty required one is "—" (text_vi "" clears the notice),
    for our commands and for another fleet's (the arguments the kiosk echoed)."""
    asked: dict[str, tuple[str, dict[str, Any]]] = {
        "notice": ("set_notice", {"text_vi": "Nghỉ trưa 11:30", "text_en": ""}),
        "cleared": ("set_notice", {"text_vi": "", "text_en": ""}),
        "closed": ("set_service_mode", {"out_of_service": True, "reason": ""}),
        "logs": ("upload_logs", {"max_kb": 256}),
    }
    ids = {name: _ours(web_store, clock, c, args, "ok", "done") for name, (c, args) in asked.items()}
    assert web_store.commands.record_result(
        "hcm-ben-thanh", K, "prov-notice", command="set_notice", status="ok", reason="done", result={},
        at=clock.now, args={"text_vi": "Tỉnh: bảo trì mạng 7:00", "text_en": ""},
    ) == "elsewhere"
    ids["theirs"] = "prov-notice"
    expected = {
        "vi": {
            "notice": "Thông báo trên màn hình Nội dung tiếng Việt: Nghỉ trưa 11:30",
            "cleared": "Thông báo trên màn hình Nội dung tiếng Việt: —",
            "closed": "Ngừng / tiếp tục phục vụ Ngừng phục vụ: Có",
            "logs": "Lấy nhật ký Mỗi tệp tối đa (KB): 256",
            "theirs": "Thông báo trên màn hình Nội dung tiếng Việt: Tỉnh: bảo trì mạng 7:00",
        },
        "en": {
            "notice": "Home screen notice Vietnamese text: Nghỉ trưa 11:30",
            "cleared": "Home screen notice Vietnamese text: —",
            "closed": "Out of service / back Out of service: Yes",
            "logs": "Fetch logs At most per file (KB): 256",
            "theirs": "Home screen notice Vietnamese text: Tỉnh: bảo trì mạng 7:00",
        },
    }
    for language, rows in _pages(web_store):
        for name, request_id in ids.items():
            command_cell = rows[request_id].split("<td>", 2)[1]  # after the time: the command
            assert _visible(command_cell) == expected[language][name], (language, name)


def test_another_fleets_command_has_no_send_time_and_its_result_time_says_what_it_is(
    web_store: Store, clock: FakeClock
) -> None:
    """"Gửi lúc" of another fleet's command showed its result's arrival: that fleet's send time is not
    known here (only the result came), so it is "—" with a tooltip saying why, and the kiosk's result
    time is below it, named as such. Ours still show when they were asked for."""
    mine = _ours(web_store, clock, "print_test_ticket", {}, "ok", "done")
    assert web_store.commands.record_result(
        "hcm-ben-thanh", K, "prov-notice", command="set_notice", status="ok", reason="done", result={},
        at=clock.now - timedelta(minutes=5), args={"text_vi": "Tỉnh: bảo trì mạng 7:00", "text_en": ""},
    ) == "elsewhere"
    answered = "23/11/2026 09:55:00"  # 02:55 UTC in the center's zone, by the kiosk's clock
    for language, rows in _pages(web_store):
        theirs = _time_cell(rows["prov-notice"])
        assert 'data-sent-at="unknown"' in theirs
        why = "Không rõ giờ gửi: lệnh do trang giám sát khác" if language == "vi" else "Not known: another"
        assert any(t.startswith(why) for t in _titles(theirs)), (language, _titles(theirs))
        label = "Kiosk trả kết quả lúc" if language == "vi" else "Kiosk answered at"
        assert _visible(theirs) == f"— {label} {answered}", (language, _visible(theirs))
        assert _visible(_time_cell(rows[mine])) == "23/11/2026 10:00:00"  # ours: when it was asked for


def test_configuration_forms_push_versions_and_say_what_is_wrong_in_vietnamese(web_store: Store) -> None:
    path = "/centers/hcm-ben-thanh/config"
    with browser(web_store, "kythuat.bt") as tech:
        assert tech.client.get(path).status_code == 200
        assert (
            tech.post(path, {"section": "notice", "notice_vi": "x"}).status_code == 403
        )  # not theirs to push
    with browser(web_store, "quanly.bt") as manager:
        services = {
            "svc-rows": "4",
            "svc-0-code": "HOTICH",
            "svc-0-prefix": "A",
            "svc-0-name_vi": "Hộ tịch",
            "svc-0-name_en": "Civil status",
            "svc-0-counters": "1, 2",
            "svc-0-opens": "07:30",
            "svc-0-closes": "17:00",
            "svc-2-code": "DATDAI",
            "svc-2-prefix": "A",
            "svc-2-name_vi": "Đất đai",
            "svc-2-name_en": "Land",
        }
        refused = manager.post(path, {"section": "services", **services})
        assert refused.status_code == 400
        assert (
            'data-error-for="svc-2-prefix">Dịch vụ 2: chữ đầu số: “A” bị trùng' in refused.text
        )  # form row 3
        assert 'value="Đất đai"' in refused.text  # what was typed stays on the form
        ok = manager.post(path, {"section": "services", **services, "svc-2-prefix": "B"})
        assert ok.status_code == 303 and ok.headers["location"] == f"{path}?done=pushed&version=1#services"
        notice = manager.post(path, {"section": "notice", "notice_vi": "Nghỉ lễ 2/9", "notice_en": ""})
        assert notice.headers["location"] == f"{path}?done=pushed&version=2#notice"
        again = manager.post(path, {"section": "notice", "notice_vi": "Nghỉ lễ 2/9", "notice_en": ""})
        assert again.headers["location"] == f"{path}?done=unchanged#notice"
        number = manager.post(path, {"section": "timeouts", "idle_timeout_s": "chín mươi"})
        assert 'data-error-for="idle_timeout_s">Phải là một số (ví dụ 90).' in number.text
        cleared = manager.post(path, {"section": "services", "action": "clear"})
        assert cleared.headers["location"] == f"{path}?done=pushed&version=3#services"
        page = manager.client.get(f"{path}?done=pushed&version=3").text
        assert "Đã lưu phiên bản 3" in page and 'data-version="3"' in page
    latest = web_store.outgoing.latest(ALL, "hcm-ben-thanh", "_center")
    assert latest is not None and latest.body == {"kiosk": {"notice_vi": "Nghỉ lễ 2/9", "notice_en": ""}}
    entries = web_store.audit.page(ALL, action="config.push").items
    assert [e.object_id for e in entries] == ["_center@3", "_center@2", "_center@1"]
    assert entries[0].before["config"]["services"][1]["prefix"] == "B"  # type: ignore[index]
    assert "services" not in entries[0].after["config"]  # type: ignore[index]


def test_a_store_whose_centers_push_their_own_configuration_shows_it_and_refuses_a_push(
    web_store: Store,
) -> None:
    """A province's fleet (``fleet config-owner centers``, docs/province.md): the configuration pages
    show the kiosks' states and say, on every form, in Vietnamese first, that configuration is pushed
    from the center's fleet; a push is refused (409), nothing recorded, nothing audited."""
    web_store.configs.set_owner("centers")
    before = len(web_store.outgoing.history(ALL, "hcm-ben-thanh", limit=100))
    for path in ("/centers/hcm-ben-thanh/config", f"/kiosks/{K}/config"):
        with browser(web_store, "quanly.bt") as manager:
            page = manager.client.get(path)
            assert page.status_code == 200
            assert "được đẩy từ trang giám sát của chính trung tâm, không đẩy từ đây" in page.text
            forms_on_page = page.text.count('class="card config-form"')
            assert forms_on_page >= 4 and page.text.count("data-pushed-elsewhere=") == forms_on_page
            assert "data-save=" not in page.text and 'class="list compact config-state"' in page.text
            refused = manager.post(path, {"section": "notice", "notice_vi": "Nghỉ lễ 2/9", "notice_en": ""})
            assert refused.status_code == 409
            assert "Không đẩy được: cấu hình của trung tâm này được đẩy từ trang giám sát" in refused.text
            english = manager.post("/language", {"lang": "en", "next": path})
            assert english.status_code == 303
            shown = html.unescape(manager.client.get(path).text)
            assert "pushed from the center's own fleet monitor, not from here" in shown
            assert "Configuration is pushed from the center's fleet monitor." in shown
    assert len(web_store.outgoing.history(ALL, "hcm-ben-thanh", limit=100)) == before
    assert list(web_store.audit.page(ALL, action="config.push").items) == []
    web_store.configs.set_owner("here")
    with browser(web_store, "quanly.bt") as manager:
        page = manager.client.get("/centers/hcm-ben-thanh/config").text
        assert "data-pushed-elsewhere=" not in page and "data-save=" in page


def test_a_center_of_its_own_rule_pushes_elsewhere_while_the_others_push_here(web_store: Store) -> None:
    """The rule per center (``fleet config-owner centers --center ID``): the store pushes, one center
    pushes its own. That center's pages say so and refuse a push (409); another center's take one."""
    web_store.configs.set_owner("centers", "hcm-ben-thanh")
    with browser(web_store, "quanly.bt") as manager:
        page = manager.client.get("/centers/hcm-ben-thanh/config")
        assert "data-pushed-elsewhere=" in page.text and "data-save=" not in page.text
        refused = manager.post(
            "/centers/hcm-ben-thanh/config", {"section": "notice", "notice_vi": "Nghỉ lễ", "notice_en": ""}
        )
        assert refused.status_code == 409
    with browser(web_store, "quanly.tdm") as other:
        page = other.client.get("/centers/hcm-thu-dau-mot/config")
        assert "data-pushed-elsewhere=" not in page.text and "data-save=" in page.text
        pushed = other.post(
            "/centers/hcm-thu-dau-mot/config", {"section": "notice", "notice_vi": "Nghỉ lễ", "notice_en": ""}
        )
        assert pushed.status_code == 303
    assert web_store.outgoing.latest(ALL, "hcm-ben-thanh", "_center") is None
    latest = web_store.outgoing.latest(ALL, "hcm-thu-dau-mot", "_center")
    assert latest is not None and latest.body == {"kiosk": {"notice_vi": "Nghỉ lễ", "notice_en": ""}}


def test_routes_are_managed_by_managers_and_audited(web_store: Store) -> None:
    path = "/centers/hcm-ben-thanh/notifications"
    with browser(web_store, "kythuat.bt") as tech:
        assert tech.client.get(path).status_code == 200
        assert tech.post(path, {"kind": "email", "target": "a@b.vn"}).status_code == 403
    with browser(web_store, "quanly.bt") as manager:
        assert (
            "Địa chỉ webhook phải bắt đầu"
            in manager.post(path, {"kind": "webhook", "target": "ftp://x"}).text
        )
        assert (
            manager.post(
                path, {"kind": "email", "target": "lanhdao@bt.gov.vn", "min_severity": "critical"}
            ).status_code
            == 303
        )
        assert (
            "Địa chỉ này đã có" in manager.post(path, {"kind": "email", "target": "lanhdao@bt.gov.vn"}).text
        )
        [route] = web_store.routes.of_center(ALL, "hcm-ben-thanh")
        assert manager.post(f"/notifications/{route.id}", {"action": "deactivate"}).status_code == 303
    assert not web_store.routes.of_center(ALL, "hcm-ben-thanh")[0].active
    actions = [
        (e.action, (e.after or {})["active"])
        for e in web_store.audit.page(ALL).items
        if e.action.startswith("route.")
    ]
    assert actions == [("route.update", False), ("route.create", True)]


def test_forms_read_rows_skip_empty_ones_and_diff_what_a_kiosk_has_not_applied() -> None:
    form = {
        "rsn-rows": "3",
        "rsn-0-code": "long_wait",
        "rsn-0-label_vi": "Chờ lâu",
        "rsn-1-code": "",
        "rsn-2-code": "staff",
        "rsn-2-label_vi": "Thái độ",
        "rsn-2-remove": "on",
        "off-rows": "1",
        "off-0-id": "cb-017",
        "off-0-name": "Nguyễn Thị Lan",
        "off-0-counter": "3",
        "levels": "5",
        "show_official_photos": "on",
    }
    parsed = forms.read_section("rating", form)
    assert parsed.part == {
        "rating": {
            "levels": 5,
            "show_official_photos": True,
            "reasons": [{"code": "long_wait", "label_vi": "Chờ lâu", "label_en": ""}],
            "officials": [{"id": "cb-017", "name": "Nguyễn Thị Lan", "counter": "3"}],
        }
    }
    body = forms.apply_section({"kiosk": {"notice_vi": "a", "idle_timeout_s": 90}}, "notice", None)
    assert body == {"kiosk": {"idle_timeout_s": 90}}  # the other section of the table stays
    assert forms.check(forms.apply_section(body, "rating", parsed.part)) == {}
    changes = forms.diff(
        {"kiosk": {"notice_vi": "Nghỉ trưa"}, "agent": {"heartbeat_s": 30}},
        {"kiosk": {"notice_vi": "Nghỉ lễ"}, "agent": {"heartbeat_s": 30}, "rating": parsed.part["rating"]},
    )
    assert [(d.label, d.before, d.after) for d in changes] == [
        ("Thông báo tiếng Việt", "Nghỉ trưa", "Nghỉ lễ"),
        ("Đánh giá", "—", "5 mức, 1 lý do, 1 cán bộ"),
    ]
