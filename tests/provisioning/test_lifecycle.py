"""Revocation, replacement and renewal with real agents on one real broker (the generated
configuration) and the provisioning service. Measured numbers go to artifacts/provisioning/."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.identity import cert_info, load_cert
from common.journal import EventJournal
from contract.events import SessionEnded
from fleet.store import Scope
from provisioning.center import load_settings
from provisioning.service import Authority
from tests.conftest import ARTIFACTS
from tests.provisioning.center import (
    CENTER,
    RealIngest,
    RunningAgent,
    RunningCenter,
    can_connect,
    enroll_cli,
    keep_takeovers,
    running_center,
    wait_for,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def center() -> Iterator[RunningCenter]:
    with running_center(interval_s=0.2) as running:
        yield running


@pytest.fixture
def folder() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="pl-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def record(name: str, values: dict[str, Any]) -> None:
    out = ARTIFACTS / "provisioning"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(values, indent=2, default=str) + "\n")


def enroll(center: RunningCenter, folder: Path, kiosk_id: str, *extra: str, replace: bool = False) -> Path:
    result = enroll_cli(center.code(kiosk_id, replace=replace), folder, "--no-check", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "kiosk.toml"


class Appender:
    """The app's side: events appended to a kiosk's journal at a steady pace (the agent's outbox)."""

    def __init__(self, data_dir: Path, every_s: float = 0.05) -> None:
        self.journal = EventJournal(data_dir / "events.sqlite")
        self.every_s = every_s
        self.ids: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ids.append(self.journal.append(SessionEnded("finished", 1.0)).event_id)
            self._stop.wait(self.every_s)

    def __enter__(self) -> Appender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(5)
        self.journal.close()


def event_ids(peer: Any, kiosk_id: str) -> set[str]:
    prefix = f"motcua/v1/{CENTER}/{kiosk_id}/event/"
    return {m.json()["event_id"] for m in peer.on_prefix(prefix)}


def test_revocation_reaches_a_connected_kiosk_within_10_s_and_it_cannot_reconnect(
    center: RunningCenter, folder: Path
) -> None:
    revoked_cfg = enroll(center, folder / "r1", "kiosk-rv-01")
    other_cfg = enroll(center, folder / "r2", "kiosk-rv-02")
    fleet = center.service_peer("fleet", f"motcua/v1/{CENTER}/+/event/+")
    one, two = RunningAgent(revoked_cfg), RunningAgent(other_cfg)
    a1, a2 = one.start(), two.start()
    identity = folder / "r1" / "data" / "identity"
    try:
        with Appender(folder / "r1" / "data") as app1, Appender(folder / "r2" / "data") as app2:
            wait_for(
                lambda: (
                    len(event_ids(fleet, "kiosk-rv-01")) >= 5 and len(event_ids(fleet, "kiosk-rv-02")) >= 5
                ),
                15,
                "both kiosks report",
            )
            connects_two = a2.link.connect_count
            store = center.open_store()
            try:
                started = time.monotonic()
                serials = store.enrollment.request_revocation(
                    Scope.everything(), "kiosk-rv-01"
                )  # the dashboard's call
                wait_for(
                    lambda: "user kiosk-rv-01" not in center.layout.acl_file.read_text(),
                    10,
                    "the ACL lost the kiosk",
                )
                acl_s = time.monotonic() - started
                wait_for(lambda: not a1.link.connected, 10, "the revoked kiosk's connection ended")
                cut_s = time.monotonic() - started
                wait_for(
                    lambda: all(
                        c.applied_at for c in store.enrollment.certificates(Scope.everything(), "kiosk-rv-01")
                    ),
                    10,
                    "revocation applied",
                )
                applied_s = time.monotonic() - started
            finally:
                store.close()
            total = time.monotonic() - started
            seen_one = len(event_ids(fleet, "kiosk-rv-01"))
            time.sleep(3.0)  # the revoked agent keeps trying to reconnect, with its backoff
            assert not a1.link.connected and a1.link.connect_count == 1, "the revoked certificate got back in"
            assert len(event_ids(fleet, "kiosk-rv-01")) == seen_one  # nothing of it arrives any more
            assert app1.journal.count() > 0  # its events wait, unsent, in its journal (not lost)
            # the other kiosk carried on, on the same connection
            assert a2.link.connected and a2.link.connect_count == connects_two
            before = len(event_ids(fleet, "kiosk-rv-02"))
            wait_for(
                lambda: len(event_ids(fleet, "kiosk-rv-02")) > before + 5, 10, "the other kiosk still reports"
            )
            assert app2.ids[:5] and set(app2.ids[:-40]) <= event_ids(fleet, "kiosk-rv-02")
        # the revoked certificate is refused at the TLS handshake (the CRL in the capath folder)
        ca = center.layout.pki.chain_file
        assert not can_connect(
            center.settings.kiosk_port, ca, identity / "kiosk.crt", identity / "kiosk.key", "kiosk-rv-01"
        )
        other_identity = folder / "r2" / "data" / "identity"
        assert can_connect(
            center.settings.kiosk_port,
            ca,
            other_identity / "kiosk.crt",
            other_identity / "kiosk.key",
            "probe",
        )
        assert "certificate verify failed" in center.broker_log()
        assert cert_info(load_cert(identity / "kiosk.crt")).serial in serials
        assert cut_s < 10 and total < 10
        record(
            "revocation",
            {
                "acl_removed_s": round(acl_s, 3),
                "connection_closed_s": round(cut_s, 3),
                "applied_s": round(applied_s, 3),
                "total_s": round(total, 3),
                "service_interval_s": 0.2,
                "reconnects_refused_for_s": 3.0,
            },
        )
    finally:
        one.stop()
        two.stop()


def test_the_takeover_certificate_is_on_the_crl_once_used(
    center: RunningCenter, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-minute certificate with the kiosk's CN that takes a revoked kiosk's session over is on
    the CRL as soon as the sync has used it: its key, had it leaked, cannot connect as the kiosk for
    the rest of its two minutes (after a replacement the kiosk's ACL block stays: it would have had the
    kiosk's rights). The running service is paused between two syncs, so the takeover is this
    process's, whose certificate the test keeps."""
    import fcntl
    import os
    import signal

    enroll(center, folder / "t1", "kiosk-to-01")
    takeovers = keep_takeovers(monkeypatch)  # what the sync forgets
    assert center.serve is not None
    pki = center.layout.pki
    store = center.open_store()
    paused = False
    try:
        with center.layout.lock_file.open("a") as lock:  # the service is not inside a sync when paused
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.kill(center.serve.pid, signal.SIGSTOP)
            paused = True
            fcntl.flock(lock, fcntl.LOCK_UN)
        serials = store.enrollment.request_revocation(Scope.everything(), "kiosk-to-01")
        files = len(list(pki.crl_dir.iterdir()))
        started = time.monotonic()
        result = Authority(center.layout, load_settings(center.layout), store).sync()
        sync_s = time.monotonic() - started
    finally:
        if paused:
            os.kill(center.serve.pid, signal.SIGCONT)
        store.close()
    assert result.kicked == ["kiosk-to-01"] and not result.errors, result
    assert result.revoked == serials and result.takeovers_revoked
    assert len(takeovers) == 1
    cert_pem, key_pem, serial = takeovers[0]
    assert {serial, *serials} <= pki.revoked_serials()
    assert len(list(pki.crl_dir.iterdir())) == files + 2  # the kiosk's CRL, then the takeover's
    (folder / "takeover.crt").write_bytes(cert_pem)
    (folder / "takeover.key").write_bytes(key_pem)
    refused = center.broker_log().count("certificate verify failed")
    assert not can_connect(
        center.settings.kiosk_port, pki.chain_file, folder / "takeover.crt", folder / "takeover.key",
        "kiosk-to-01",
    )
    wait_for(lambda: center.broker_log().count("certificate verify failed") > refused, 5, "refused")
    record("takeover-revoked", {"sync_with_two_crls_s": round(sync_s, 3)})


def test_replacement_keeps_the_kiosk_history_on_the_dashboard(center: RunningCenter, folder: Path) -> None:
    from tests.fleet.data import CHEAP, PASSWORD
    from tests.fleet.web import browser

    ingest = RealIngest(center)
    old_cfg = enroll(center, folder / "old", "kiosk-rp-01", "--machine-serial", "PC-OLD-1")
    old = RunningAgent(old_cfg)
    a_old = old.start()
    try:
        with Appender(folder / "old" / "data", every_s=0.02) as app:
            wait_for(lambda: len(app.ids) >= 20, 10, "events appended")
        wait_for(
            lambda: (
                ingest.events >= 20 and EventJournal(folder / "old" / "data" / "events.sqlite").count() == 0
            ),
            15,
            "the old PC's events stored",
        )
        history = ingest.events
        # the old PC broke; a new PC takes its id, slot and history with a replacement code
        new_cfg = enroll(center, folder / "new", "kiosk-rp-01", "--machine-serial", "PC-NEW-1", replace=True)
        wait_for(lambda: not a_old.link.connected, 10, "the old PC's connection ended")
        new = RunningAgent(new_cfg)
        a_new = new.start()
        try:
            with Appender(folder / "new" / "data", every_s=0.02) as app_new:
                wait_for(lambda: len(app_new.ids) >= 5, 10, "new events")
            wait_for(lambda: ingest.events >= history + 5, 15, "the new PC's events stored")
            time.sleep(1.0)
            assert a_new.link.connected and not a_old.link.connected and a_old.link.connect_count == 1
            assert ingest.errors == []
            store = ingest.store
            store.accounts.add_user("kt.bt", CHEAP.hash(PASSWORD), "technician", center_id=CENTER)
            with browser(store, "kt.bt") as person:
                identity = person.client.get("/enroll/kiosks/kiosk-rp-01?format=json").json()
                page = person.client.get("/enroll/kiosks/kiosk-rp-01").text
                kiosk_page = person.client.get("/kiosks/kiosk-rp-01")
            assert identity["events"] == ingest.events >= history + 5  # one history, old and new PC's events
            (replacement,) = identity["replacements"]
            assert replacement["old_machine"]["serial"] == "PC-OLD-1"
            assert replacement["new_machine"]["serial"] == "PC-NEW-1"
            states = {c["source"]: c["state"] for c in identity["certificates"]}
            assert states == {"enrollment": "revoked", "replacement": "active"}
            assert "PC-OLD-1" in page and "PC-NEW-1" in page
            assert kiosk_page.status_code == 200 and "identity-link" in kiosk_page.text
            kiosk = store.registry.kiosk(Scope.everything(), "kiosk-rp-01")
            assert kiosk.state == "online" and kiosk.slot is not None
            assert store.enrollment.enrolled_slot(CENTER, "kiosk-rp-01") == kiosk.slot
        finally:
            new.stop()
    finally:
        old.stop()
        ingest.close()


def test_the_agent_renews_its_certificate_before_expiry_without_dropping_an_event(
    center: RunningCenter, folder: Path
) -> None:
    cfg = enroll(center, folder / "k", "kiosk-rn-01")
    identity = folder / "k" / "data" / "identity"
    before = cert_info(load_cert(identity / "kiosk.crt"))
    key_before = (identity / "kiosk.key").read_bytes()
    fleet = center.service_peer("fleet", f"motcua/v1/{CENTER}/kiosk-rn-01/event/+")
    agent = RunningAgent(cfg)
    # the kiosk's clock says the certificate ends in 25 days (it renews 30 days before)
    later = before.not_after - timedelta(days=25)
    offset = later - datetime.now(UTC)
    started = time.monotonic()
    with Appender(folder / "k" / "data", every_s=0.01) as app:
        a = agent.start(clock=lambda: datetime.now(UTC) + offset)
        try:
            renew_s = wait_for(lambda: a.renewal.renewed == 1, 30, "the certificate was renewed")
            wait_for(
                lambda: a.link.connected and a.link.connect_count == 2, 15, "reconnected with the new one"
            )
            time.sleep(1.0)  # events keep flowing on the new connection
        finally:
            pass
    try:
        wait_for(lambda: set(app.ids) <= event_ids(fleet, "kiosk-rn-01"), 20, "every event arrived")
        received = [m.json()["event_id"] for m in fleet.on_prefix(f"motcua/v1/{CENTER}/kiosk-rn-01/event/")]
        after = cert_info(load_cert(identity / "kiosk.crt"))
        assert after.serial != before.serial and after.kiosk_id == "kiosk-rn-01" and after.center_id == CENTER
        assert (identity / "kiosk.key").read_bytes() != key_before  # a new key, made on the kiosk
        assert after.key_sha256 != before.key_sha256
        assert after.not_after - after.not_before <= timedelta(days=365, minutes=5)
        store = center.open_store()
        try:
            certs = {
                c.serial: c.state for c in store.enrollment.certificates(Scope.everything(), "kiosk-rn-01")
            }
        finally:
            store.close()
        assert certs == {before.serial: "superseded", after.serial: "active"}
        # after the grace time the old certificate is revoked: it cannot connect, the kiosk stays on
        settings = load_settings(center.layout)
        store = center.open_store()
        try:
            result = Authority(center.layout, settings, store, superseded_grace=timedelta(0)).sync()
        finally:
            store.close()
        assert result.revoked == [before.serial] and result.kicked == []
        assert a.link.connected and a.link.connect_count == 2
        record(
            "renewal",
            {
                "events_appended": len(app.ids),
                "events_received": len(received),
                "distinct_received": len(set(received)),
                "lost": len(set(app.ids) - set(received)),
                "duplicates": len(received) - len(set(received)),
                "renewed_after_s": round(renew_s, 3),
                "total_s": round(time.monotonic() - started, 3),
            },
        )
        assert not set(app.ids) - set(received)
    finally:
        agent.stop()


def test_factory_reset_flushes_first_then_leaves_nothing_behind(center: RunningCenter, folder: Path) -> None:
    import subprocess
    import sys

    from provisioning.reset import factory_reset, plan_for
    from provisioning.ui import Console
    from tests.provisioning.center import ROOT

    cfg = enroll(center, folder / "k", "kiosk-rs-01")
    data = folder / "k" / "data"
    # what a kiosk accumulates: events not sent yet, logs, printed tickets, app data
    journal = EventJournal(data / "events.sqlite")
    for _ in range(30):
        journal.append(SessionEnded("finished", 2.0))
    journal.close()
    (data / "logs").mkdir()
    (data / "logs" / "kiosk.log").write_text("2026-11-23 INFO kiosk started\n")
    (data / "printer").mkdir()
    (data / "printer" / "ticket-0001.png").write_bytes(b"\x89PNG fake ticket")
    (data / "ratings.sqlite").write_bytes(b"SQLite format 3\x00")
    reset = [
        sys.executable,
        str(ROOT / "main.py"),
        "provision",
        "reset",
        "--config",
        str(cfg),
        "--yes",
        "--no-stop",
        "--flush-timeout",
        "2",
        "--json",
    ]
    # 1. no agent to send them: refused, nothing wiped
    refused = subprocess.run(reset, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and json.loads(refused.stdout)["code"] == "unsent_events"
    assert (data / "identity" / "kiosk.key").exists() and (data / "events.sqlite").exists()
    # 2. with the agent running the final flush sends them; then the agent is stopped and all goes
    fleet = center.service_peer("fleet", f"motcua/v1/{CENTER}/kiosk-rs-01/event/+")
    agent = RunningAgent(cfg)
    agent.start()
    stopped: list[bool] = []

    def stop() -> None:
        agent.stop()
        stopped.append(True)

    result = factory_reset(plan_for(cfg), Console("reset", as_json=True), flush_timeout_s=30, stop=stop)
    assert stopped == [True] and result["dropped_events"] == 0
    assert len(event_ids(fleet, "kiosk-rs-01")) == 30  # every event reached the center before the wipe
    left = [p for p in folder.rglob("*") if p.is_file()]
    assert left == [], left  # no key, certificate, event, log line, printed ticket or config file
    # 3. --drop-unsent wipes a kiosk whose events cannot be sent, and says how many were dropped
    cfg2 = enroll(center, folder / "k2", "kiosk-rs-02")
    journal = EventJournal(folder / "k2" / "data" / "events.sqlite")
    journal.append(SessionEnded("finished", 2.0))
    journal.close()
    dropped = subprocess.run(
        [*reset[:5], str(cfg2), *reset[6:], "--drop-unsent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert json.loads(dropped.stdout)["dropped_events"] == 1
    assert [p for p in (folder / "k2").rglob("*") if p.is_file()] == []


def test_a_revoked_certificate_cannot_resume_a_tls_1_3_session(center: RunningCenter, tmp_path: Path) -> None:
    """A resumed TLS session skips the certificate check (the CRL too): the broker issues no session
    tickets (its OPENSSL_CONF), so a revoked kiosk has no TLS 1.3 session to come back with."""
    import contextlib
    import datetime as dt
    import socket
    import ssl

    from cryptography.hazmat.primitives import serialization

    from common.identity import key_pem, make_csr, new_key
    from provisioning.center_pki import Revoked

    pki = center.layout.pki
    key = new_key()
    cert = pki.issue_kiosk(make_csr(key, "x", "n"), CENTER, "kiosk-tls-01")
    (tmp_path / "k.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.key").write_bytes(key_pem(key))
    contexts = {}
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(pki.chain_file))
        context.load_cert_chain(str(tmp_path / "k.crt"), str(tmp_path / "k.key"))
        context.minimum_version = context.maximum_version = version
        contexts[version] = context

    def handshake(version: ssl.TLSVersion, session: ssl.SSLSession | None = None) -> tuple[Any, bool, str]:
        """(session, reused, error): the server's alert for a refused client certificate comes with the
        first read in TLS 1.3, during the handshake in TLS 1.2."""
        raw = socket.create_connection(("127.0.0.1", center.settings.kiosk_port), timeout=5)
        try:
            tls = contexts[version].wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            return None, False, str(exc)
        try:
            tls.settimeout(1.0)
            try:
                tls.recv(1)  # post-handshake messages: a ticket, or the alert
                error = ""
            except TimeoutError:
                error = ""
            except (ssl.SSLError, OSError) as exc:
                error = str(exc) or type(exc).__name__
            session_now, reused = tls.session, tls.session_reused
            if not error:
                with contextlib.suppress(ssl.SSLError, OSError):
                    tls.unwrap()  # close_notify: a session closed otherwise is not kept for resumption
            return session_now, bool(reused), error
        finally:
            tls.close()

    s13, _, error = handshake(ssl.TLSVersion.TLSv1_3)
    assert error == "" and s13 is not None and not s13.has_ticket  # accepted, and no ticket to resume with
    s12, _, error = handshake(ssl.TLSVersion.TLSv1_2)
    assert error == "" and s12 is not None and not s12.has_ticket
    store = center.open_store()
    try:
        entries = [Revoked(s, at, r) for s, at, r in store.enrollment.crl_entries(CENTER)]
    finally:
        store.close()
    pki.publish_crl([*entries, Revoked(cert_info(cert).serial, dt.datetime.now(dt.UTC), "key_compromise")])
    for version in contexts:
        _, _, error = handshake(version)
        assert "CERTIFICATE_REVOKED" in error.upper().replace(" ", "_"), error
    _, reused13, error13 = handshake(ssl.TLSVersion.TLSv1_3, s13)
    assert not reused13 and "REVOKED" in error13.upper()
    _, reused12, _ = handshake(ssl.TLSVersion.TLSv1_2, s12)
    record(
        "tls-resumption",
        {
            "tls1_3_ticket_issued": s13.has_ticket,
            "tls1_3_resumed_after_revocation": reused13,
            "tls1_2_ticket_issued": s12.has_ticket,
            "tls1_2_session_id_resumed_after_revocation": reused12,
        },
    )
