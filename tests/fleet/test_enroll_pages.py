"""The enrollment pages over HTTP (in-process): a technician makes a code (QR + text, shown once), approves
a pending kiosk, keeps the allowlist, revokes; the scope and the roles hold; a kiosk's identity page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape

import pytest

from common.identity import make_csr, new_key
from contract.enrollment import EnrollmentCode
from fleet.store import Scope, Store, open_store
from fleet.store.enrollment import sha256
from tests.fleet.conftest import FakeClock
from tests.fleet.data import Fleet, build
from tests.fleet.web import browser

FINGERPRINT = "ab" * 32


@pytest.fixture
def site(sqlite_url: str, clock: FakeClock) -> Iterator[tuple[Store, Fleet]]:
    store = open_store(sqlite_url, clock=clock)
    f = build(store)
    for center in (f.center, f.other_center):
        store.enrollment.configure_center(
            center,
            enroll_host="10.20.0.5",
            enroll_port=8443,
            ca_fingerprint=FINGERPRINT,
            broker_host="10.20.0.5",
            broker_port=8883,
        )
    yield store, f
    store.close()


def pending_request(store: Store, center: str, serial: str) -> str:
    nonce, _ = store.enrollment.new_nonce(center)
    key = new_key()
    from common.identity import spki_sha256

    row = store.enrollment.enroll(
        center,
        nonce=nonce,
        token=None,
        key_sha256=spki_sha256(key.public_key()),
        csr=make_csr(key, "x", nonce),
        machine={"serial": serial, "vendor": "ACME"},
        address="10.20.0.77",
    )
    return row.id


def test_a_technician_makes_a_code_shown_once_as_qr_and_text(site: tuple[Store, Fleet]) -> None:
    store, f = site
    with browser(store, "kythuat.bt") as tech:
        page = tech.client.get("/enroll")
        assert page.status_code == 200 and 'id="token-form"' in page.text
        made = tech.post(
            "/enroll/tokens",
            {"center": f.center, "kiosk_id": "kiosk-bt-09", "slot": "9", "purpose": "new", "hours": "4"},
        )
        assert made.status_code == 200
        assert 'id="enroll-qr" src="data:image/svg+xml' in made.text
        found = re.search(r'id="enroll-code" class="payload">([^<]+)<', made.text)
        assert found is not None
        code = EnrollmentCode.from_text(unescape(found.group(1)))
        assert (code.host, code.port, code.center_id, code.ca_fingerprint) == (
            "10.20.0.5",
            8443,
            f.center,
            FINGERPRINT,
        )
        assert code.token is not None
        # the store has its hash only; the list shows it open, for that kiosk and slot
        (token,) = store.enrollment.tokens(Scope.everything(), f.center)
        assert (token.kiosk_id, token.slot, token.state(store.db.now())) == ("kiosk-bt-09", 9, "open")
        with store.db.read() as conn:
            text = str(conn.exec_driver_sql("SELECT * FROM enroll_tokens").fetchall())
        assert code.token not in text and sha256(code.token) in text
        again = tech.client.get("/enroll")
        assert code.token not in again.text and "kiosk-bt-09" in again.text  # never shown again
        # refusals say why, on the page
        taken = tech.post("/enroll/tokens", {"center": f.center, "kiosk_id": "kiosk-bt-01", "purpose": "new"})
        assert taken.status_code == 400 and "exists already" in taken.text
        reserved = tech.post(
            "/enroll/tokens", {"center": f.center, "kiosk_id": "allocator", "purpose": "new"}
        )
        assert reserved.status_code == 400 and "reserved" in reserved.text
        slot = tech.post("/enroll/tokens", {"center": f.center, "kiosk_id": "kiosk-bt-10", "slot": "9"})
        assert slot.status_code == 400 and "slot 9" in slot.text
        replace = tech.post(
            "/enroll/tokens", {"center": f.center, "kiosk_id": "kiosk-bt-01", "purpose": "replace"}
        )
        assert replace.status_code == 200 and "Thay thế" in replace.text
        cancel = tech.post(f"/enroll/tokens/{token.id}/cancel")
        assert cancel.status_code == 303
    assert store.enrollment.tokens(Scope.everything(), f.center)[-1].state(store.db.now()) == "cancelled"
    actions = [e.action for e in store.audit.page(Scope.everything()).items]
    assert actions.count("enroll.token_create") == 2 and "enroll.token_cancel" in actions


def test_approve_reject_and_the_allowlist(site: tuple[Store, Fleet]) -> None:
    store, f = site
    first = pending_request(store, f.center, "PC-PEND-1")
    second = pending_request(store, f.center, "PC-PEND-2")
    foreign = pending_request(store, f.other_center, "PC-FAR")
    with browser(store, "kythuat.bt") as tech:
        page = tech.client.get("/enroll").text
        assert first in page and second in page and foreign not in page and "PC-PEND-1" in page
        done = tech.post(f"/enroll/requests/{first}/approve", {"kiosk_id": "kiosk-bt-11", "slot": "11"})
        assert done.status_code == 303
        assert tech.post(f"/enroll/requests/{second}/reject", {"reason": "unknown PC"}).status_code == 303
        # another center's request, by URL: not found
        assert tech.post(f"/enroll/requests/{foreign}/approve", {"kiosk_id": "kiosk-x-01"}).status_code == 404
        assert tech.post(f"/enroll/requests/{foreign}/reject").status_code == 404
        assert (
            tech.post(
                "/enroll/allowlist", {"center": f.center, "action": "add", "serial": "PC-OK-1"}
            ).status_code
            == 303
        )
        assert tech.post("/enroll/allowlist", {"center": f.center, "action": "require"}).status_code == 303
        assert (
            tech.post(
                "/enroll/allowlist", {"center": f.other_center, "action": "add", "serial": "X"}
            ).status_code
            == 404
        )
    assert (
        store.enrollment.request(first).state == "approved"
        and store.enrollment.request(first).kiosk_id == "kiosk-bt-11"
    )
    assert store.enrollment.request(second).state == "rejected"
    assert store.enrollment.request(foreign).state == "pending"
    assert store.enrollment.center(f.center).allowlist_required
    assert [e.machine_serial for e in store.enrollment.allowlist(Scope.everything(), f.center)] == ["PC-OK-1"]


def test_roles_a_viewer_reads_and_cannot_change(site: tuple[Store, Fleet]) -> None:
    """Enrolling and revoking is a technician's work (and their center's head's, above them: the same
    "technician or above" rule as commands); a viewer only reads."""
    store, f = site
    with browser(store, "xem.bt") as viewer:
        page = viewer.client.get("/enroll")
        assert page.status_code == 200 and 'id="token-form"' not in page.text
        assert (
            viewer.post("/enroll/tokens", {"center": f.center, "kiosk_id": "kiosk-bt-12"}).status_code == 403
        )
        assert viewer.post(f"/enroll/kiosks/{f.kiosk}/revoke", {"action": "revoke"}).status_code == 403
    with browser(store, "quanly.bt") as manager:
        assert 'id="token-form"' in manager.client.get("/enroll").text
    with browser(store, "admin.hcm") as admin:  # a province admin works on either center of the province
        assert admin.client.get(f"/enroll?center={f.other_center}").status_code == 200
        assert admin.client.get(f"/enroll?center={f.far_center}").status_code == 404


def test_the_identity_page_certificates_replacements_selftest_and_revoke(site: tuple[Store, Fleet]) -> None:
    store, f = site
    # kiosk-bt-21 enrolled, then replaced by another PC (what the provisioning service records)
    nonce, _ = store.enrollment.new_nonce(f.center)
    text, _ = store.enrollment.create_token(Scope.everything(), f.center, "kiosk-bt-21", slot=21)
    from common.identity import spki_sha256

    keys = [new_key(), new_key()]
    row = store.enrollment.enroll(
        f.center,
        nonce=nonce,
        token=text,
        key_sha256=spki_sha256(keys[0].public_key()),
        csr="csr",
        machine={"serial": "PC-OLD"},
        address="a",
    )
    now = store.db.now()
    store.enrollment.record_issue(
        row.id,
        serial="aa01",
        not_before=now,
        not_after=now + timedelta(days=365),
        key_sha256=spki_sha256(keys[0].public_key()),
        pem="-",
    )
    text2, _ = store.enrollment.create_token(Scope.everything(), f.center, "kiosk-bt-21", purpose="replace")
    nonce2, _ = store.enrollment.new_nonce(f.center)
    row2 = store.enrollment.enroll(
        f.center,
        nonce=nonce2,
        token=text2,
        key_sha256=spki_sha256(keys[1].public_key()),
        csr="csr",
        machine={"serial": "PC-NEW"},
        address="b",
    )
    _, revoked = store.enrollment.record_issue(
        row2.id,
        serial="bb02",
        not_before=now,
        not_after=now + timedelta(days=365),
        key_sha256=spki_sha256(keys[1].public_key()),
        pem="-",
    )
    assert revoked == ["aa01"]
    store.enrollment.record_selftest(
        f.center,
        "kiosk-bt-21",
        event_id="e" * 32,
        at=now,
        result="pass",
        source="cli",
        report={
            "steps": [{"step": "printer", "ok": True, "state": "ok", "detail": "printed", "duration_ms": 900}]
        },
    )
    with browser(store, "kythuat.bt") as tech:
        page = tech.client.get("/enroll/kiosks/kiosk-bt-21").text
        assert (
            "PC-OLD" in page
            and "PC-NEW" in page
            and 'data-serial="bb02"' in page
            and 'data-step="printer"' in page
        )
        data = tech.client.get("/enroll/kiosks/kiosk-bt-21?format=json").json()
        assert [c["state"] for c in data["certificates"]] in (["active", "revoked"], ["revoked", "active"])
        assert data["self_test"]["result"] == "pass"
        assert tech.client.get(f"/enroll/kiosks/{f.other_kiosk}").status_code == 404
        assert tech.post(f"/enroll/kiosks/{f.other_kiosk}/revoke", {"action": "revoke"}).status_code == 404
        assert tech.post("/enroll/kiosks/kiosk-bt-21/revoke", {"action": "revoke"}).status_code == 303
        assert "Đã thu hồi" in tech.client.get("/enroll/kiosks/kiosk-bt-21?done=revoke").text
    identity = store.enrollment.identity(Scope.everything(), "kiosk-bt-21")
    assert identity is not None and identity.state == "revoked"
    assert {c.serial for c in store.enrollment.unapplied_revocations(f.center)} == {"aa01", "bb02"}
    assert store.enrollment.enrolled_slot(f.center, "kiosk-bt-21") is None  # the allocator refuses it now
