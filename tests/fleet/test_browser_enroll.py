"""The enrollment pages in a real browser (Chromium via Playwright) against ``main.py fleet serve``: a
technician finds the page from the menu, makes a code (the QR image is drawn), approves a pending kiosk
and opens its identity page. Screenshots: artifacts/fleet/enroll-*.png; any console error fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, expect, sync_playwright

from common.identity import make_csr, new_key, spki_sha256
from contract.enrollment import EnrollmentCode
from fleet.store import Store, open_store
from tests.fleet.browser import CHROMIUM, CHROMIUM_ARGS, shot
from tests.fleet.data import PASSWORD, build
from tests.fleet.server import running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[str, Store]]:
    folder = tmp_path_factory.mktemp("fleet-enroll-browser")
    shutil.copyfile(sqlite_template, folder / "fleet.sqlite")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    store = open_store(url)
    f = build(store)
    store.enrollment.configure_center(
        f.center,
        enroll_host="10.20.0.5",
        enroll_port=8443,
        ca_fingerprint="cd" * 32,
        broker_host="10.20.0.5",
        broker_port=8883,
    )
    with running_server(url, folder) as server:
        yield server.base, store
    store.close()


@pytest.fixture
def page(site: tuple[str, Store]) -> Iterator[Page]:
    problems: list[str] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(
            viewport={"width": 1280, "height": 900}, locale="vi-VN", base_url=site[0]
        )
        opened = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                problems.append(message.text)

        def on_response(response: Response) -> None:
            if response.status >= 400:
                problems.append(f"{response.status} {urlsplit(response.url).path}")

        opened.on("console", on_console)
        opened.on("pageerror", lambda exc: problems.append(str(exc)))
        opened.on("response", on_response)
        yield opened
        context.close()
        chromium.close()
    assert problems == []  # a CSP violation, a script error, a missing asset


def test_a_technician_makes_a_code_approves_a_pending_kiosk_and_opens_its_identity(
    page: Page, site: tuple[str, Store]
) -> None:
    store = site[1]
    nonce, _ = store.enrollment.new_nonce("hcm-ben-thanh")
    key = new_key()
    pending = store.enrollment.enroll(
        "hcm-ben-thanh",
        nonce=nonce,
        token=None,
        key_sha256=spki_sha256(key.public_key()),
        csr=make_csr(key, "x", nonce),
        machine={"serial": "PC-CHO-DUYET", "vendor": "Dell", "product": "OptiPlex", "hostname": "k"},
        address="10.20.0.88",
    )
    page.goto("/login")
    page.fill("input[name=username]", "kythuat.bt")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.click("nav >> text=Đăng ký kiosk")
    expect(page.locator("h1")).to_have_text("Đăng ký kiosk")
    expect(page.locator(f'tr[data-request="{pending.id}"]')).to_contain_text("PC-CHO-DUYET")
    shot(page, "enroll-01-page")
    # a code for a new kiosk
    page.fill("#token-form input[name=kiosk_id]", "kiosk-bt-30")
    page.fill("#token-form input[name=slot]", "30")
    page.click("#token-form button.primary")
    qr = page.locator("#enroll-qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 100")  # the QR image really drew
    code = EnrollmentCode.from_text(page.locator("#enroll-code").inner_text())
    assert code.center_id == "hcm-ben-thanh" and code.ca_fingerprint == "cd" * 32 and code.token
    assert page.locator("#enroll-token").inner_text() == code.token
    shot(page, "enroll-02-code")
    # the pending kiosk becomes kiosk-bt-31
    row = page.locator(f'tr[data-request="{pending.id}"]')
    row.locator("input[name=kiosk_id]").fill("kiosk-bt-31")
    row.locator("input[name=slot]").fill("31")
    row.locator(f'button[data-approve="{pending.id}"]').click()
    expect(page.locator(".flash.ok")).to_contain_text("Đã duyệt")
    expect(page.locator(f'tr[data-request="{pending.id}"]')).to_have_count(0)
    assert store.enrollment.request(pending.id).kiosk_id == "kiosk-bt-31"
    # a kiosk's identity page, from its kiosk page
    page.goto("/kiosks/kiosk-bt-01")
    page.click("#identity-link")
    expect(page.locator("h1")).to_have_text("Danh tính kiosk kiosk-bt-01")
    expect(page.locator("#identity-state")).to_have_text("Chưa đăng ký")
    assert "⟦" not in page.content()
    shot(page, "enroll-03-identity")
    page.click("#language-toggle")
    expect(page.locator("h1")).to_have_text("Identity of kiosk kiosk-bt-01")
    assert "⟦" not in page.content()
