"""The fleet fed by real agents on the real broker, in a real browser: ``main.py fleet serve --broker``
(web and ingest of one center in one process) as a subprocess, Chromium through Playwright, a local
SMTP server and a local webhook receiver. Screenshots of every page: artifacts/fleet/2*.png (24b: the
command list with a command another fleet monitor sent)."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect

from contract.commands import Command, SetNoticeArgs
from fleet.store import Scope, Store, open_store
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.agent.conftest import FakeApp, agent_config, spawn_agent, write_kiosk_toml
from tests.agent.peer import Peer
from tests.conftest import ARTIFACTS
from tests.fleet.browser import SHOTS, launched_chromium, log_in, shot, watched_page
from tests.fleet.conftest import TIMINGS
from tests.fleet.data import PASSWORD
from tests.fleet.mqtt import CENTER, eventually, kiosk, seed
from tests.fleet.pg import free_port
from tests.fleet.receivers import Smtp, Webhook, smtp_server, webhook_server
from tests.fleet.server import Server, running_server

pytestmark = [pytest.mark.browser, pytest.mark.broker]
ALL = Scope.everything()
WILL_DELAY_S = 3


@dataclass
class Site:
    server: Server
    store: Store
    broker: Broker
    pki: Pki
    smtp: Smtp
    hook: Webhook
    app: FakeApp
    kill_me: subprocess.Popen[bytes]


def screen_png() -> bytes:
    """What the fake app answers to app.screenshot: a real PNG the page can show."""
    image = Image.new("RGB", (270, 480), (163, 18, 42))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 120, 250, 200), fill=(255, 255, 255))
    draw.rectangle((20, 230, 250, 310), fill=(255, 255, 255))
    draw.text((30, 40), "Mot Cua - kiosk-a", fill=(255, 255, 255))
    draw.text((40, 150), "Lay so thu tu", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    import shutil

    folder = tmp_path_factory.mktemp("fleet-ingest-browser")
    shutil.copyfile(sqlite_template, folder / "fleet.sqlite")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    store = open_store(url)
    seed(store, ("kiosk-a", "kiosk-b"), heartbeat_s=1)
    store.telemetry.set_heartbeat("kiosk-b", 10)  # its silence (30 s) must not come before its Will
    from fleet.auth import hash_password
    from tests.fleet.data import CHEAP

    store.accounts.add_user(
        "quanly.bt",
        hash_password(PASSWORD, CHEAP),
        "center_manager",
        center_id=CENTER,
        display_name="Trần Thị Bích Ngọc",
    )
    port = free_port()
    with (
        temporary_pki(("kiosk-a", "kiosk-b", "fleet"), "fbpki-") as pki,
        running_broker(pki, "fbbrk-") as broker,
        smtp_server() as smtp,
        webhook_server() as hook,
    ):
        store.routes.add(ALL, CENTER, "email", "kythuat@trungtam.example.vn", min_severity="major")
        store.routes.add(ALL, CENTER, "webhook", hook.url, min_severity="major")
        fleet_id = pki.client("fleet")
        extra = [
            "--center",
            CENTER,
            "--broker",
            f"127.0.0.1:{broker.service_port}",
            "--ca",
            str(pki.ca.cert_file),
            "--cert",
            str(fleet_id.cert_file),
            "--key",
            str(fleet_id.key_file),
            "--smtp",
            f"{smtp.host}:{smtp.port}",
            "--smtp-from",
            "giamsat@trungtam.example.vn",
            "--reminder-every",
            "0.1",
            "--announce-after",
            "1",
            "--public-url",
            f"http://127.0.0.1:{port}",
        ]
        directory = Path(tempfile.mkdtemp(prefix="fbk-"))
        cfg = agent_config(broker, pki, "kiosk-b", heartbeat_s=2.0, will_delay_s=WILL_DELAY_S)
        toml = write_kiosk_toml(directory / "kiosk.toml", "kiosk-b", directory, cfg)
        with running_server(url, folder, extra=extra, port=port) as server:
            process = spawn_agent(toml, directory / "agent.log")
            try:
                with kiosk(broker, pki, "kiosk-a", heartbeat_s=1.0) as (_agent, app, _directory):
                    assert app is not None
                    app.screenshot_path.write_bytes(screen_png())
                    eventually(lambda: store.registry.kiosk(ALL, "kiosk-a").state == "online", timeout=20)
                    eventually(lambda: store.registry.kiosk(ALL, "kiosk-b").state == "online", timeout=30)
                    yield Site(server, store, broker, pki, smtp, hook, app, process)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(15)
    store.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def console() -> list[str]:
    return []


@pytest.fixture
def page(chromium: Browser, site: Site, console: list[str]) -> Iterator[Page]:
    with watched_page(chromium, site.server.base, console) as opened:
        yield opened



def live(page: Page) -> None:
    expect(page.locator(".live-status")).to_have_text("Cập nhật trực tiếp", timeout=10_000)


def test_fleet_serve_froze_its_heap_before_its_worker_connected(site: Site) -> None:
    """``fleet serve --broker`` freezes its heap as ``fleet ingest`` does (docs/fleet.md, "Fifth pass"):
    once, with the web's modules and the app built, before its ingest worker starts."""
    text = site.server.log.read_text()
    frozen = re.findall(r"heap frozen: (\d+) objects", text)
    assert len(frozen) == 1 and int(frozen[0]) > 1000, text[-2000:]  # the modules at least
    assert text.index("heap frozen:") < text.index(f"connected to 127.0.0.1:{site.broker.service_port}")


def test_paper_out_is_an_alarm_that_is_mailed_reminded_acknowledged_and_cleared(
    page: Page, site: Site
) -> None:
    log_in(page, "kythuat.bt")
    page.goto("/kiosks/kiosk-a")
    live(page)
    mails, hooks = len(site.smtp.box.messages), len(site.hook.received)
    site.app.printer_state = "paper_out"  # what the kiosk's next heartbeat says
    row = page.locator("#alarms tr[data-alarm-type='printer'][data-active='yes']")
    expect(row).to_contain_text("Hết giấy", timeout=10_000)  # drawn live: the page was not reloaded
    expect(row).to_contain_text("Nghiêm trọng")
    expect(page.locator(".dev-card[data-device='printer']")).to_contain_text("Hết giấy")
    shot(page, "20-kiosk-paper-out")
    # (kiosk-b runs without an app: its app_down alarm is mailed too, at any moment; look for ours)
    [raised] = eventually(
        lambda: [m for m in site.smtp.box.messages[mails:] if "Cảnh báo mới: Máy in" in m["Subject"]]
    )
    assert (
        raised["Subject"] == "[Giám sát kiosk] Cảnh báo mới: Máy in phiếu (Hết giấy) – kiosk-a (Nghiêm trọng)"
    )
    assert raised["To"] == "kythuat@trungtam.example.vn"
    [hooked] = eventually(
        lambda: [
            h
            for _, h in site.hook.received[hooks:]
            if h["event"] == "raised" and h["alarm"]["type"] == "printer"
        ]
    )
    assert (hooked["alarm"]["kiosk_id"], hooked["alarm"]["severity"], hooked["alarm"]["detail"]) == (
        "kiosk-a",
        "critical",
        {"state": "paper_out"},
    )

    def reminded() -> list[str]:
        subjects = [m["Subject"] for m in site.smtp.box.messages[mails:]]
        return [s for s in subjects if "Nhắc lần 1" in s and "kiosk-a" in s]

    assert eventually(reminded, timeout=20) == [
        "[Giám sát kiosk] Nhắc lần 1: Máy in phiếu (Hết giấy) – kiosk-a vẫn chưa được xử lý (Nghiêm trọng)"
    ]
    assert eventually(
        lambda: [h for _, h in site.hook.received[hooks:] if h["event"] == "reminder"], timeout=20
    )
    row.locator("button[data-ack]").click()
    acked = page.locator("#alarms tr[data-alarm-type='printer'][data-active='yes']")
    expect(acked).to_contain_text("Đã xác nhận: kythuat.bt")
    shot(page, "21-kiosk-alarm-acknowledged")
    site.app.printer_state = "ok"
    cleared = page.locator("#alarms tr[data-alarm-type='printer']").first
    expect(cleared).to_have_attribute("data-active", "no", timeout=10_000)
    expect(cleared).to_contain_text("Đã kết thúc")
    expect(page.locator(".dev-card[data-device='printer']")).to_contain_text("Bình thường")
    shot(page, "22-kiosk-paper-back")
    ended = eventually(
        lambda: [m for m in site.smtp.box.messages[mails:] if "Đã hết cảnh báo" in m["Subject"]]
    )
    assert "Đã xác nhận: kythuat.bt" in ended[0].get_content()
    [alarm] = [
        a for a in site.store.alarms.page(ALL, active=False, kiosk_id="kiosk-a").items if a.type == "printer"
    ]
    assert alarm.acknowledged_by_name == "kythuat.bt" and alarm.reminders >= 1 and alarm.ended_at is not None


def sent_request(page: Page, previous: str | None) -> str:
    """The request id the console redirected to after a send. Waits for the redirect: read at once after
    the click, page.url may still name the previous command (seen in CI)."""

    def request_of(url: str) -> str | None:
        query = urlsplit(url).query
        return query.split("request=")[1].split("&")[0] if "request=" in query else None

    page.wait_for_url(lambda url: request_of(url) not in (None, previous), timeout=10_000)
    found = request_of(page.url)
    assert found is not None
    return found


def test_the_console_sends_a_command_and_shows_its_result_and_a_screenshot(
    page: Page, site: Site, console: list[str]
) -> None:
    log_in(page, "kythuat.bt")
    page.goto("/kiosks/kiosk-a")
    live(page)
    notice = page.locator("form[data-command='set_notice']")
    notice.locator("textarea[name=text_vi]").fill("x" * 301)
    notice.locator("button[data-send]").click()
    expect(page.locator("form[data-command='set_notice'] .field-error")).to_have_text(
        "Nội dung tiếng Việt: tối đa 300 ký tự (đang có 301)"
    )
    expected_refusal(console, "/kiosks/kiosk-a/commands")
    shot(page, "23-console-refused-on-the-form")
    notice = page.locator("form[data-command='set_notice']")
    notice.locator("textarea[name=text_vi]").fill("Hôm nay nghỉ trưa 11:30–13:00")
    notice.locator("button[data-send]").click()
    expect(page.locator(".flash.ok")).to_contain_text("Đã tạo lệnh")
    request_id = sent_request(page, previous=None)
    row = page.locator(f"tr[data-request='{request_id}']")
    expect(row).to_have_attribute("data-status", "ok", timeout=10_000)  # live, from the kiosk's result
    expect(row).to_contain_text("Thành công")
    assert site.app.called("app.notice")[-1] == {"text_vi": "Hôm nay nghỉ trưa 11:30–13:00", "text_en": ""}
    page.locator("form[data-command='screenshot'] button[data-send]").click()
    shot_id = sent_request(page, previous=request_id)
    image = page.locator(f"img[data-screenshot='{shot_id}']")
    expect(image).to_be_visible(timeout=10_000)
    expect(image).to_have_js_property("naturalWidth", 270)  # the PNG itself, served from the store
    page.locator("form[data-command='upload_logs'] button[data-send]").click()
    logs_id = sent_request(page, previous=shot_id)
    # (seen "pending" for good here and at the screenshot under load: a result stored while the page
    # after the redirect was being drawn was on neither the page nor its stream; fleet.web.live)
    expect(page.locator(f"tr[data-request='{logs_id}']")).to_have_attribute(
        "data-status", "error", timeout=10_000
    )
    logs_outcome = page.locator(f"tr[data-request='{logs_id}'] .outcome")  # the kiosk's English: its title
    expect(logs_outcome).to_have_text("Không lấy được nhật ký: không tìm thấy tệp nhật ký nào.")  # its code
    expect(logs_outcome).to_have_attribute("data-outcome", "no_log_files")
    kiosk_said = re.compile(r"^Nguyên văn \(tiếng Anh\): no log files found: ")
    expect(logs_outcome).to_have_attribute("title", kiosk_said)
    shot(page, "24-console-results-and-screenshot")
    entry = site.store.audit.page(ALL, action="command.create").items[0]
    assert (entry.username, entry.after["command"]) == ("kythuat.bt", "upload_logs")  # type: ignore[index]
    # a command another fleet monitor sent (the province's: docs/province.md) reaches the same kiosk on the
    # broker; the kiosk's result comes to this fleet's worker too and is listed, marked as theirs
    theirs = Command.build(
        "province-hcm-1", "set_notice", SetNoticeArgs("Tỉnh: sáng mai bảo trì mạng 7:00–7:30", "")
    )
    other = Peer(site.broker.service_port, str(site.pki.ca.cert_file), site.pki.client("fleet-2")).connect()
    try:
        other.publish(f"motcua/v1/{CENTER}/kiosk-a/cmd/req", json.dumps(theirs.to_data()))
    finally:
        other.client.loop_stop()
        other.client.disconnect()
    row = page.locator("tr[data-request='province-hcm-1']")
    expect(row).to_have_attribute("data-sent-elsewhere", "yes", timeout=10_000)  # live, no reload
    expect(row).to_have_attribute("data-status", "ok")
    expect(row.locator(".badge.sent-elsewhere")).to_have_text("Trang giám sát khác")
    expect(row).to_contain_text("Nội dung tiếng Việt: Tỉnh: sáng mai bảo trì mạng 7:00–7:30")  # echoed args
    expect(row).not_to_contain_text("text_en")  # left blank: not listed
    expect(row.locator(".outcome")).to_have_text("Đã cập nhật thông báo trên màn hình.")
    expect(row.locator("[data-sent-at='unknown']")).to_have_text("—")  # only the result came here
    expect(row.locator("[data-result-at]")).to_contain_text("Kiosk trả kết quả lúc")
    expect(page.locator(f"tr[data-request='{logs_id}']")).to_contain_text("kythuat.bt")  # ours, by name
    assert site.app.called("app.notice")[-1]["text_vi"] == "Tỉnh: sáng mai bảo trì mạng 7:00–7:30"
    listed = site.store.commands.for_kiosk(ALL, "kiosk-a")
    assert [c.sent_elsewhere for c in listed if c.request_id == "province-hcm-1"] == [True]
    page.evaluate("window.scrollTo(0, 0)")  # as shot() does: sticky headers drawn where they belong
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("[data-live-target='kiosk-commands:kiosk-a']").screenshot(
        path=str(SHOTS / "24b-kiosk-other-fleet.png")
    )
    shot(page, "24c-kiosk-other-fleet-page")


def expected_refusal(console: list[str], path: str) -> None:
    """A form refused on purpose answers 400: that one is expected, anything else still fails."""
    assert f"400 {path}" in console, console
    console.remove(f"400 {path}")


def test_a_configuration_push_is_applied_and_the_diff_says_so(
    page: Page, site: Site, console: list[str]
) -> None:
    log_in(page, "quanly.bt")
    page.goto("/centers/hcm-ben-thanh/config")
    form = page.locator("form[data-section='timeouts']")
    form.locator("input[name=idle_timeout_s]").fill("1")
    form.locator("button[data-save]").click()
    expect(page.locator("[data-error-for='idle_timeout_s']")).to_have_text(
        "Thời gian chờ khi không thao tác: phải là số từ 5 đến 600 (đã nhập 1)"
    )
    expected_refusal(console, "/centers/hcm-ben-thanh/config")
    shot(page, "25-config-refused-on-the-form")
    form = page.locator("form[data-section='notice']")
    form.locator("textarea[name=notice_vi]").fill("Trung tâm làm việc cả thứ Bảy")
    form.locator("button[data-save]").click()
    expect(page.locator(".flash.ok")).to_contain_text("Đã lưu phiên bản 1")
    live(page)
    # no reload: the kiosks' reports reach the table live (fleet/web/live.py, view "config").
    # kiosk-a's app reloaded it; kiosk-b's agent runs without an app: the file waits for the app
    row_a, row_b = page.locator("tr[data-kiosk='kiosk-a']"), page.locator("tr[data-kiosk='kiosk-b']")
    expect(row_a).to_have_attribute("data-config-status", "applied", timeout=20_000)
    expect(row_b).to_have_attribute("data-config-status", "app_pending", timeout=20_000)
    expect(row_a).to_contain_text("Đã áp dụng")
    expect(row_b).to_contain_text("Chờ ứng dụng nạp")
    for row in (row_a, row_b):
        expect(row).to_contain_text("1 / 1")
        expect(row).to_contain_text("Đã áp dụng đầy đủ")
    # the push's history is not live: its "published" mark (the broker's PUBACK, recorded) after a reload
    deadline = time.monotonic() + 20
    while page.locator("[data-published='yes']").count() != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    expect(page.locator("[data-published='yes']")).to_be_visible()
    shot(page, "26-config-applied")
    page.goto("/kiosks/kiosk-a/config")
    form = page.locator("form[data-section='heartbeat']")
    form.locator("input[name=heartbeat_s]").fill("2")
    form.locator("button[data-save]").click()
    expect(page.locator("[data-error-for='heartbeat_s']")).to_contain_text(
        "Nhịp tim: phải là số từ 5 đến 3600"
    )
    expected_refusal(console, "/kiosks/kiosk-a/config")
    shot(page, "27-kiosk-config")
    assert site.store.audit.page(ALL, action="config.push").items[0].username == "quanly.bt"


def test_a_sigkilled_agent_is_offline_on_the_page_within_the_will_delay_plus_5_s(
    page: Page, site: Site
) -> None:
    log_in(page, "kythuat.bt")
    page.goto("/kiosks/kiosk-b")
    live(page)
    expect(page.locator("[data-live-target='kiosk-state:kiosk-b']")).to_contain_text("Trực tuyến")
    killed = time.monotonic()
    site.kill_me.send_signal(signal.SIGKILL)
    site.kill_me.wait()
    expect(page.locator("[data-live-target='kiosk-state:kiosk-b']")).to_contain_text(
        "Ngoại tuyến", timeout=(WILL_DELAY_S + 5) * 1000
    )
    state_s = time.monotonic() - killed
    expect(page.locator("#alarms tr[data-alarm-type='offline'][data-active='yes']")).to_contain_text(
        "Kiosk ngoại tuyến", timeout=max(1, int((WILL_DELAY_S + 5 - (time.monotonic() - killed)) * 1000))
    )
    alarm_s = time.monotonic() - killed
    TIMINGS["browser_sigkill_to_offline_on_page_s (will delay 3 s)"] = round(state_s, 2)
    TIMINGS["browser_sigkill_to_offline_alarm_on_page_s (will delay 3 s)"] = round(alarm_s, 2)
    (ARTIFACTS / "fleet").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "fleet" / "sigkill-to-offline.json").write_text(
        json.dumps(
            {
                "will_delay_s": WILL_DELAY_S,
                "offline_on_page_s": round(state_s, 2),
                "alarm_on_page_s": round(alarm_s, 2),
            },
            indent=2,
        )
        + "\n"
    )
    assert WILL_DELAY_S <= state_s <= alarm_s < WILL_DELAY_S + 5
    expect(page.locator("[data-live-target='kiosk-state:kiosk-b']")).to_contain_text("mất kết nối")
    shot(page, "28-kiosk-sigkilled-offline")


def test_the_other_pages_of_this_phase(page: Page, site: Site, console: list[str]) -> None:
    log_in(page, "quanly.bt")
    page.goto("/centers/hcm-ben-thanh/notifications")
    expect(page.locator("tr[data-delivery][data-status='sent']").first).to_be_visible()
    shot(page, "29-notifications")
    page.fill("input[name=target]", "không phải địa chỉ")
    page.click("#add-route button.primary")
    expect(page.locator(".flash.bad")).to_have_text("Địa chỉ thư điện tử không hợp lệ.")
    expected_refusal(console, "/centers/hcm-ben-thanh/notifications")
    page.fill("input[name=target]", "lanhdao@trungtam.example.vn")
    page.click("#add-route button.primary")
    expect(page.locator(".flash.ok")).to_have_text("Đã thêm nơi nhận.")
    expect(page.locator("table.routes")).to_contain_text("lanhdao@trungtam.example.vn")
    page.goto("/ingest")
    expect(page.locator("tr[data-worker][data-state='connected']")).to_have_count(1)
    expect(page.locator("tr[data-worker]")).to_contain_text("điều phối")
    shot(page, "30-ingest")
    page.goto("/alarms?view=all")
    expect(page.locator("tr[data-alarm]").first).to_be_visible()
    shot(page, "31-alarms-with-durations")
    page.goto("/centers/hcm-ben-thanh")
    shot(page, "32-center")
    page.goto("/audit")
    expect(page.locator("tr[data-action='route.create']").first).to_contain_text("quanly.bt")
    shot(page, "33-audit")


def test_the_visit_settings_are_pushed_from_the_form_and_reach_a_kiosk(
    page: Page, site: Site, console: list[str]
) -> None:
    """[visit] on the config page (docs/visit.md "Pushed by the center"): a half account is refused on
    the form in Vietnamese; the hotline, topics and window are pushed, the agent of kiosk-a accepts them
    (the contract on its side) and its app is asked to reload the overlay that carries them."""
    log_in(page, "quanly.bt")
    page.goto("/centers/hcm-ben-thanh/config")
    form = page.locator("form[data-section='visit']")
    form.locator("input[name=hotline]").fill("0274 1022")
    form.locator("input[name=appointment_early_min]").fill("45")
    form.locator("input[name='topic-thu_tuc']").check()
    form.locator("input[name='topic-khac']").check()
    form.locator("input[name=payee_account]").fill("0071000123456")
    form.locator("button[data-save]").click()
    expect(page.locator("[data-error-for='payee_account']")).to_contain_text(
        "mã ngân hàng và số tài khoản phải nhập cùng nhau"
    )
    expected_refusal(console, "/centers/hcm-ben-thanh/config")
    form = page.locator("form[data-section='visit']")
    expect(form.locator("input[name=hotline]")).to_have_value("0274 1022")  # what was typed stays
    form.locator("input[name=payee_bank_bin]").fill("970436")
    before = len(site.app.called("app.reload_config"))
    form.locator("button[data-save]").click()
    expect(page.locator(".flash.ok")).to_contain_text("Đã lưu phiên bản")
    shot(page, "28-config-visit-pushed")

    def reloaded_with_visit() -> dict[str, object] | None:
        calls = site.app.called("app.reload_config")
        for args in calls[before:]:
            overlay = json.loads(Path(str(args["overlay_path"])).read_text(encoding="utf-8"))
            if "visit" in overlay:
                return dict(overlay["visit"])
        return None

    visit = eventually(reloaded_with_visit, timeout=20)
    assert visit == {
        "hotline": "0274 1022",
        "appointment_early_min": 45,
        "feedback_topics": ["thu_tuc", "khac"],
        "payee_bank_bin": "970436",
        "payee_account": "0071000123456",
    }
