"""Enrollment against a real center: Mosquitto started with the generated configuration, the
provisioning service (``main.py provision serve``) over HTTPS, fresh kiosk folders, the real CLI and the
real agent. Refusals: a code used twice, an expired code, a wrong CA fingerprint, a replayed request,
a machine not on the allowlist; pending then approved; what a kiosk may do on the broker."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.identity import load_cert, make_csr, new_key, spki_sha256
from contract.enrollment import EnrollAnswer, EnrollChallenge, EnrollmentCode, EnrollRequest, MachineInfo
from contract.topics import KioskTopics
from fleet.store import Scope
from provisioning.enroll import CenterClient, Enroller, KioskLayout
from provisioning.ui import Console
from tests.provisioning.center import (
    CENTER,
    RawClient,
    RunningAgent,
    RunningCenter,
    enroll_cli,
    running_center,
    wait_for,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def center() -> Iterator[RunningCenter]:
    with running_center() as running:
        yield running


@pytest.fixture
def kiosk_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pk-"))  # short: the agent's sockets live in it
    yield folder
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def answer_of(result: object) -> dict[str, Any]:
    import subprocess

    assert isinstance(result, subprocess.CompletedProcess)
    return dict(json.loads(result.stdout))


def test_a_fresh_kiosk_enrolls_with_a_code_and_its_agent_comes_online(
    center: RunningCenter, kiosk_dir: Path
) -> None:
    code = center.code("kiosk-e2e-01", slot=7)
    result = enroll_cli(code, kiosk_dir, "--machine-serial", "PC-E2E-01")
    assert result.returncode == 0, result.stderr + result.stdout
    out = answer_of(result)
    assert (out["ok"], out["kiosk_id"], out["center_id"], out["slot"]) == (True, "kiosk-e2e-01", CENTER, 7)
    assert [s["step"] for s in out["steps"]] == [
        "enroll.pin",
        "enroll.key",
        "enroll.request",
        "enroll.install",
        "enroll.check",
    ]
    key = kiosk_dir / "data" / "identity" / "kiosk.key"
    assert key.stat().st_mode & 0o077 == 0
    import tomllib

    written = tomllib.loads((kiosk_dir / "kiosk.toml").read_text())
    assert written["kiosk"]["id"] == "kiosk-e2e-01" and written["numbering"] == {
        "mode": "center",
        "slot": 7,
        "offline_base": 800,
        "offline_block": 20,
    }
    assert written["agent"]["broker_port"] == center.settings.kiosk_port
    assert written["services"][0]["code"] == "HO_TICH"  # the center's template reached the kiosk
    store = center.open_store()
    try:
        assert store.enrollment.enrolled_slot(CENTER, "kiosk-e2e-01") == 7
        kiosk = store.registry.kiosk(Scope.everything(), "kiosk-e2e-01")
        assert (kiosk.center_id, kiosk.slot) == (CENTER, 7)
        assert store.enrollment.identity(Scope.everything(), "kiosk-e2e-01").machine_serial == "PC-E2E-01"  # type: ignore[union-attr]
    finally:
        store.close()
    # the registry file for the allocator, and the ACL block of this kiosk
    from contract.enrollment import EnrolledKiosks

    registry = EnrolledKiosks.load(center.layout.registry_file)
    assert registry.refusal(CENTER, "kiosk-e2e-01", 7) is None
    assert registry.refusal(CENTER, "kiosk-e2e-01", 8) is not None  # not its slot: slot squatting refused
    assert registry.refusal(CENTER, "kiosk-nobody", 0) is not None
    assert "user kiosk-e2e-01" in center.layout.acl_file.read_text()
    # the real agent connects with the new identity; the fleet sees its birth
    fleet = center.service_peer("fleet", f"motcua/v1/{CENTER}/+/status")
    agent = RunningAgent(kiosk_dir / "kiosk.toml")
    agent.start()
    try:
        status = fleet.wait_for(
            f"motcua/v1/{CENTER}/kiosk-e2e-01/status", lambda d: d["state"] == "online", 15
        )
        assert status["reason"] == "birth"
    finally:
        agent.stop()


def test_a_code_works_once(center: RunningCenter, kiosk_dir: Path) -> None:
    code = center.code("kiosk-once-01")
    assert enroll_cli(code, kiosk_dir / "a", "--no-check").returncode == 0
    second = enroll_cli(code, kiosk_dir / "b", "--no-check")
    assert second.returncode == 77
    out = answer_of(second)
    assert out["code"] == "token_used" and "Mã chỉ dùng một lần" in out["what_to_do"]["vi"]
    assert not (kiosk_dir / "b" / "data" / "identity" / "kiosk.crt").exists()


def test_an_expired_code_is_refused(center: RunningCenter, kiosk_dir: Path) -> None:
    # made two hours ago, valid for one (the store's clock set back when it was made)
    back = datetime.now(UTC) - timedelta(hours=2)
    store = center.open_store(clock=lambda: back)
    try:
        code = center.code("kiosk-old-01", lifetime=timedelta(hours=1), store=store)
    finally:
        store.close()
    result = enroll_cli(code, kiosk_dir, "--no-check")
    assert result.returncode == 77 and answer_of(result)["code"] == "token_expired"


def test_a_wrong_ca_fingerprint_makes_the_kiosk_refuse_the_center(
    center: RunningCenter, kiosk_dir: Path
) -> None:
    real = EnrollmentCode.from_text(center.code("kiosk-fp-01"))
    forged = EnrollmentCode(real.host, real.port, real.center_id, "0" * 64, real.token)
    store = center.open_store()
    try:
        requests_before = len(store.enrollment.pending(Scope.everything(), CENTER))
    finally:
        store.close()
    result = enroll_cli(forged.to_text(), kiosk_dir, "--no-check")
    assert result.returncode == 77
    out = answer_of(result)
    assert out["code"] == "wrong_ca" and "fingerprint" in str(out["error"])
    assert [s["step"] for s in out["steps"]] == ["enroll.pin"]  # nothing was sent, no key was made
    assert not (kiosk_dir / "data" / "identity").exists() and not (kiosk_dir / "kiosk.toml").exists()
    # the token was not spent: the right code still works
    assert enroll_cli(real.to_text(), kiosk_dir, "--no-check").returncode == 0
    store = center.open_store()
    try:
        assert len(store.enrollment.pending(Scope.everything(), CENTER)) == requests_before
    finally:
        store.close()


def test_a_replayed_request_is_refused_and_a_csr_must_carry_the_nonce(center: RunningCenter) -> None:
    code = EnrollmentCode.from_text(center.code("kiosk-replay-01"))
    client = CenterClient(code)
    client.pin()
    challenge = EnrollChallenge.parse(client.post("/enroll/v1/challenge")[1])
    key = new_key()
    body = EnrollRequest(
        CENTER, challenge.nonce, make_csr(key, "x", challenge.nonce), code.token, MachineInfo("PC-REPLAY")
    ).to_payload()
    status, first = client.post("/enroll/v1/request", body)
    assert status == 200 and EnrollAnswer.parse(first).status == "issued"
    status, again = client.post("/enroll/v1/request", body)  # the same bytes, seen on the wire
    answer = EnrollAnswer.parse(again)
    assert (status, answer.status, answer.reason) == (409, "refused", "replayed")
    # a fresh nonce, but the CSR signed over another one: no proof bound to this request
    other = EnrollChallenge.parse(client.post("/enroll/v1/challenge")[1])
    mismatched = EnrollRequest(
        CENTER, other.nonce, make_csr(new_key(), "x", challenge.nonce), None
    ).to_payload()
    assert EnrollAnswer.parse(client.post("/enroll/v1/request", mismatched)[1]).reason == "proof_failed"
    # the same key again (a cloned disk asking for a second identity)
    third = EnrollChallenge.parse(client.post("/enroll/v1/challenge")[1])
    reused = EnrollRequest(CENTER, third.nonce, make_csr(key, "x", third.nonce), None).to_payload()
    assert EnrollAnswer.parse(client.post("/enroll/v1/request", reused)[1]).reason == "key_reused"
    # a nonce the center never gave
    made_up = EnrollRequest(CENTER, "A" * 43, make_csr(new_key(), "x", "A" * 43), None).to_payload()
    assert EnrollAnswer.parse(client.post("/enroll/v1/request", made_up)[1]).reason == "nonce_unknown"


def test_without_a_code_the_kiosk_waits_as_pending_until_approved(
    center: RunningCenter, kiosk_dir: Path
) -> None:
    import threading

    code = EnrollmentCode.from_text(center.pending_code())
    layout = KioskLayout.standard(kiosk_dir / "kiosk.toml", kiosk_dir / "data")
    enroller = Enroller(
        code,
        layout,
        Console("test", as_json=True),
        machine=MachineInfo("PC-PENDING-01", "ACME"),
        base=None,
        validate=False,
        wait_s=60,
        sleep=lambda s: time.sleep(0.2),
    )
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(outcome=enroller.run()))
    worker.start()
    store = center.open_store()
    try:
        wait_for(
            lambda: bool(store.enrollment.pending(Scope.everything(), CENTER)), 20, "the request is pending"
        )
        (pending,) = [
            p
            for p in store.enrollment.pending(Scope.everything(), CENTER)
            if p.machine.get("serial") == "PC-PENDING-01"
        ]
        assert layout.pending_key.exists() and not layout.cert_file.exists()  # the key waits on the kiosk
        store.enrollment.approve(
            Scope.everything(), pending.id, kiosk_id="kiosk-pending-01", slot=12, username="t"
        )
        worker.join(30)
        outcome = result["outcome"]
        assert outcome.kiosk_id == "kiosk-pending-01" and outcome.slot == 12
        assert not layout.pending_key.exists()
        info_key = spki_sha256(load_cert(layout.cert_file).public_key())
        assert info_key == pending.key_sha256  # the certificate is for the key made on the kiosk
    finally:
        store.close()


def test_the_allowlist_refuses_other_machines(center: RunningCenter, kiosk_dir: Path) -> None:
    store = center.open_store()
    try:
        store.enrollment.allow(Scope.everything(), CENTER, "PC-LISTED", username="t")
        store.enrollment.set_allowlist_required(Scope.everything(), CENTER, True)
        refused = enroll_cli(
            center.code("kiosk-allow-01"), kiosk_dir / "a", "--no-check", "--machine-serial", "PC-STRANGER"
        )
        assert refused.returncode == 77 and answer_of(refused)["code"] == "not_allowlisted"
        listed = enroll_cli(
            center.code("kiosk-allow-02"), kiosk_dir / "b", "--no-check", "--machine-serial", "PC-LISTED"
        )
        assert listed.returncode == 0, listed.stdout
    finally:
        store.enrollment.set_allowlist_required(Scope.everything(), CENTER, False)
        store.close()


def test_a_kiosk_is_confined_to_its_namespace_and_services_cannot_take_its_client_id(
    center: RunningCenter, kiosk_dir: Path
) -> None:
    assert enroll_cli(center.code("kiosk-acl-01"), kiosk_dir / "a", "--no-check").returncode == 0
    assert enroll_cli(center.code("kiosk-acl-02"), kiosk_dir / "b", "--no-check").returncode == 0
    ca = center.layout.pki.chain_file
    a, b = kiosk_dir / "a" / "data" / "identity", kiosk_dir / "b" / "data" / "identity"
    mine = KioskTopics(CENTER, "kiosk-acl-01")
    fleet = center.service_peer("fleet", "motcua/v1/#")
    # kiosk-acl-01 asks for kiosk-acl-02's client id: the broker uses the certificate's CN instead
    kiosk = RawClient(
        center.settings.kiosk_port, ca, a / "kiosk.crt", a / "kiosk.key", "kiosk-acl-02"
    ).connect()
    try:
        assert kiosk.publish(mine.event("lookup"), b'{"x":1}') in (0x00, 0x10)  # its own namespace
        assert kiosk.publish(f"motcua/v1/{CENTER}/kiosk-acl-02/event/lookup", b"{}") == 0x87  # another kiosk
        assert (
            kiosk.publish("motcua/v1/other-center/kiosk-acl-01/event/lookup", b"{}") == 0x87
        )  # another center
        assert kiosk.publish(f"motcua/v1/{CENTER}/_center/config/set", b"{}", retain=True) == 0x87
        # Mosquitto 2.0 grants a subscription and checks read access at every delivery
        for topic_filter in (
            "motcua/v1/other-center/kiosk-acl-01/#",
            f"motcua/v1/{CENTER}/kiosk-acl-02/#",
            f"motcua/v1/{CENTER}/_center/#",
        ):
            kiosk.subscribe(topic_filter)
        for topic in (
            "motcua/v1/other-center/kiosk-acl-01/cmd/req",
            f"motcua/v1/{CENTER}/kiosk-acl-02/cmd/req",
            f"motcua/v1/{CENTER}/_center/queue/called",
        ):
            fleet.publish(topic, b'{"n":1}')
        assert wait_for(lambda: bool(kiosk.messages), 5, "the center-wide message") >= 0
        time.sleep(0.3)
        assert [topic for topic, _ in kiosk.messages] == [f"motcua/v1/{CENTER}/_center/queue/called"]
        assert fleet.wait(lambda: bool(fleet.on(mine.event("lookup"))), 5)
        assert not fleet.on(f"motcua/v1/{CENTER}/kiosk-acl-02/event/lookup")
        assert not fleet.on("motcua/v1/other-center/kiosk-acl-01/event/lookup")
        # a service certificate asking for a kiosk's client id on the services' listener gets its own CN
        kiosk_b = RawClient(
            center.settings.kiosk_port, ca, b / "kiosk.crt", b / "kiosk.key", "kiosk-acl-02"
        ).connect()
        pki = center.layout.pki
        intruder = RawClient(
            center.settings.service_port,
            ca,
            pki.cert_file("counter"),
            pki.key_file("counter"),
            "kiosk-acl-02",
        ).connect()
        try:
            time.sleep(0.5)
            assert not kiosk_b.disconnected.is_set(), "a service took the kiosk's session over"
            assert kiosk_b.publish(KioskTopics(CENTER, "kiosk-acl-02").event("lookup"), b"{}") in (0x00, 0x10)
            assert intruder.publish(f"motcua/v1/{CENTER}/kiosk-acl-02/cmd/req", b"{}") == 0x87
            assert "u'counter'" in center.broker_log() and " as counter " in center.broker_log()
        finally:
            intruder.close()
            kiosk_b.close()
    finally:
        kiosk.close()


def test_the_center_cli_makes_a_code_and_revokes(center: RunningCenter, kiosk_dir: Path) -> None:
    import subprocess
    import sys

    from tests.provisioning.center import ROOT

    def provision(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "main.py"),
                "provision",
                *args,
                "--dir",
                str(center.layout.root),
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    made = provision(
        "token", "create", "--kiosk", "kiosk-cli-01", "--slot", "40", "--qr", str(kiosk_dir / "qr.svg")
    )
    assert made["slot"] == 40 and (kiosk_dir / "qr.svg").read_text().startswith("<?xml")
    code = EnrollmentCode.from_text(made["code"])
    assert code.token == made["token"] and code.port == center.settings.enroll_port
    assert enroll_cli(made["code"], kiosk_dir / "k", "--no-check").returncode == 0
    listed = provision("token", "list")
    assert {"kiosk_id": "kiosk-cli-01", "state": "used"}.items() <= next(
        t for t in listed["tokens"] if t["kiosk_id"] == "kiosk-cli-01"
    ).items()
    revoked = provision("revoke", "--kiosk", "kiosk-cli-01")
    assert revoked["kiosk_id"] == "kiosk-cli-01" and len(revoked["serials"]) == 1
    assert revoked["steps"][0]["ok"] and "user kiosk-cli-01" not in center.layout.acl_file.read_text()
    identity = kiosk_dir / "k" / "data" / "identity"
    from tests.provisioning.center import can_connect

    assert not can_connect(
        center.settings.kiosk_port,
        center.layout.pki.chain_file,
        identity / "kiosk.crt",
        identity / "kiosk.key",
        "kiosk-cli-01",
    )
