"""``center-init``: the PKI (checked with ``openssl``), the broker configuration and ACL it generates,
the units, idempotence, and the identity rules (reserved names, lifetimes)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from common.errors import ConflictError, ValidationError
from common.identity import cert_info, make_csr, new_key
from fleet.store import Scope, open_store
from provisioning.broker import listeners_of
from provisioning.center import CenterLayout, center_init
from provisioning.center_pki import PkiError, Revoked
from provisioning.units import render_units
from tests.provisioning.center import CENTER, PASSPHRASE, ROOT, make_settings


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> CenterLayout:
    root = tmp_path_factory.mktemp("center-init") / "center"
    center_init(root, make_settings(kiosk_port=18883, service_port=18884, enroll_port=18443), PASSPHRASE)
    return CenterLayout(root.resolve())


def test_init_makes_what_is_missing_keeps_what_exists_and_refuses_other_settings(
    center: CenterLayout,
) -> None:
    settings = make_settings(kiosk_port=18883, service_port=18884, enroll_port=18443)
    pki = center.pki
    before = {p.name: p.read_bytes() for p in pki.directory.glob("*.key")}
    assert {
        "root-ca.key",
        "issuing-ca.key",
        "broker.key",
        "enroll.key",
        "fleet.key",
        "allocator.key",
        "counter.key",
        "provisioner.key",
    } <= set(before)
    again = center_init(center.root, settings, None)  # no passphrase needed: the root exists
    assert again.made == [], again.made
    assert {p.name: p.read_bytes() for p in pki.directory.glob("*.key")} == before  # no key was replaced
    with pytest.raises(ConflictError, match="kiosk_port"):
        center_init(center.root, make_settings(kiosk_port=28883, service_port=18884, enroll_port=18443), None)
    # the root key is encrypted with the passphrase (meant to leave the center)
    assert b"ENCRYPTED PRIVATE KEY" in before["root-ca.key"]
    with pytest.raises(PkiError, match="passphrase"):
        pki.root_key(b"not the passphrase")
    assert pki.root_key(PASSPHRASE).public_key() == pki.root_cert().public_key()
    assert openssl("pkey", "-in", str(pki.root_key_file), "-passin", "pass:wrong", "-noout").returncode != 0
    # keys are the owner's only
    for key in pki.directory.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    # the store knows the center and how its kiosks enroll (the QR code's fingerprint is the root's)
    store = open_store(center.store_url(settings))
    try:
        assert store.registry.center(Scope.everything(), CENTER).name == settings.center_name
        assert store.enrollment.center(CENTER).ca_fingerprint == pki.fingerprint()
    finally:
        store.close()


def test_openssl_verifies_the_chain_and_the_crl(center: CenterLayout, tmp_path: Path) -> None:
    pki = center.pki
    key = new_key()
    cert = pki.issue_kiosk(make_csr(key, "anything", "nonce-1"), CENTER, "kiosk-ossl-01")
    kiosk = tmp_path / "kiosk.crt"
    kiosk.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    root, issuing, chain = str(pki.root_cert_file), str(pki.issuing_cert_file), str(pki.chain_file)
    ok = openssl("verify", "-CAfile", root, "-untrusted", issuing, "-purpose", "sslclient", str(kiosk))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok.stdout + ok.stderr
    for server in ("broker", "enroll"):
        done = openssl(
            "verify",
            "-CAfile",
            root,
            "-untrusted",
            issuing,
            "-purpose",
            "sslserver",
            str(pki.cert_file(server)),
        )
        assert done.returncode == 0, done.stderr
    crl = openssl("crl", "-in", str(pki.crl_file), "-CAfile", chain, "-noout")
    assert crl.returncode == 0 and "verify OK" in (crl.stdout + crl.stderr), crl.stderr
    checked = openssl("verify", "-crl_check", "-CAfile", chain, "-CRLfile", str(pki.crl_file), str(kiosk))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # revoke it: the CRL both in crl.pem and as the next file of the capath folder
    serial = cert_info(cert).serial
    newest = pki.publish_crl([Revoked(serial, dt.datetime.now(dt.UTC), "key_compromise")])
    assert newest.name.endswith(".r1") and newest.read_bytes() == pki.crl_file.read_bytes()
    revoked = openssl("verify", "-crl_check", "-CAfile", chain, "-CRLfile", str(pki.crl_file), str(kiosk))
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    crl_text = openssl("crl", "-in", str(pki.crl_file), "-noout", "-text").stdout
    assert serial.upper() in crl_text.replace(":", "").upper() and "Key Compromise" in crl_text
    # the certificate says whose it is: CN = kiosk id, SAN URI with the center
    san = openssl("x509", "-in", str(kiosk), "-noout", "-ext", "subjectAltName,extendedKeyUsage").stdout
    assert f"URI:urn:motcua:kiosk:{CENTER}:kiosk-ossl-01" in san and "TLS Web Client Authentication" in san
    assert cert.subject.rfc4514_string() == "CN=kiosk-ossl-01"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc) <= dt.timedelta(days=365, minutes=5)


def test_reserved_names_long_lifetimes_and_bad_requests_are_refused(center: CenterLayout) -> None:
    pki = center.pki
    csr = make_csr(new_key(), "x", "nonce-2")
    for name in ("fleet", "allocator", "counter", "provisioner", "_center", "Kiosk-A", "a"):
        with pytest.raises(ValidationError):
            pki.issue_kiosk(csr, CENTER, name)
    with pytest.raises(ValidationError, match="365"):
        pki.issue_kiosk(csr, CENTER, "kiosk-long", days=400)
    with pytest.raises(ValidationError, match="certificate request"):
        pki.issue_kiosk(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", CENTER, "k-1"
        )
    store = open_store(center.store_url(make_settings()))
    try:
        for name in ("fleet", "counter", "_center", "enroll"):
            with pytest.raises(ValidationError):
                store.enrollment.create_token(Scope.everything(), CENTER, name)
    finally:
        store.close()


def test_the_generated_broker_configuration_and_acl(center: CenterLayout) -> None:
    text = center.broker_conf.read_text()
    assert listeners_of(text) == [("127.0.0.1", 18883), ("127.0.0.1", 18884)]
    sections = text.split("\nlistener ")[1:]
    for section in sections:
        settings = {
            line.split(" ", 1)[0]: line.split(" ", 1)[1]
            for line in section.splitlines()[1:]
            if line and not line.startswith("#")
        }
        assert settings["tls_version"] == "tlsv1.2"
        assert settings["require_certificate"] == "true"
        assert settings["use_identity_as_username"] == "true"
        assert settings["use_username_as_clientid"] == "true"  # on the services' listener too
        assert settings["crlfile"] == str(center.pki.crl_file)
        assert settings["capath"] == str(center.pki.crl_dir)
        assert settings["cafile"] == str(center.pki.chain_file)
    for line in (
        "persistence true",
        "max_queued_messages 0",
        "max_queued_bytes 268435456",
        "allow_anonymous false",
        f"acl_file {center.acl_file}",
        f"pid_file {center.pid_file}",
    ):
        assert line in text.splitlines(), line
    acl = center.acl_file.read_text().splitlines()
    assert not [
        line for line in acl if line.startswith("pattern")
    ]  # patterns would cover revoked certificates
    assert "user provisioner" in acl and "user fleet" in acl and "user allocator" in acl


def test_units_are_generated_for_the_center_and_deploy_holds_the_example(tmp_path: Path) -> None:
    layout = CenterLayout(Path("/var/lib/motcua-center"))
    settings = make_settings(
        kiosk_port=8883,
        service_port=8884,
        enroll_port=8443,
        broker_user="mosquitto",
        bind="",
        kiosk_template="",
    )
    units = render_units(layout, settings)
    assert set(units) == {
        "motcua-broker.service",
        "motcua-provision.service",
        "motcua-fleet.service",
        "motcua-allocator.service",
    }
    assert (
        "ExecStart=/usr/sbin/mosquitto -c /var/lib/motcua-center/broker/mosquitto.conf"
        in units["motcua-broker.service"]
    )
    assert "ExecReload=/bin/kill -HUP $MAINPID" in units["motcua-broker.service"]
    assert "--cert /var/lib/motcua-center/pki/allocator.crt" in units["motcua-allocator.service"]
    # the allocator's plan is the one the enrollment bundles give the kiosks (else: config_mismatch)
    plan = f"--offline-base {settings.offline_base} --offline-block {settings.offline_block}"
    assert plan in units["motcua-allocator.service"]
    for name, text in units.items():
        deployed = ROOT / "deploy" / "center" / name
        assert deployed.read_text() == text, (
            f"{deployed} differs from what center-init writes (regenerate it)"
        )


def test_center_init_refuses_an_install_dir_a_unit_cannot_hold_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--install-dir`` is checked as the province's is (``provisioning.units.check_install_dir``): a
    relative path or one systemd reads its own way in ExecStart= is refused before anything is made."""
    from main import main

    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    directory = tmp_path / "center"
    init = ["provision", "center-init", "--dir", str(directory), "--center", CENTER, "--name", "Bến Thành",
            "--province", "hcm", "--province-name", "TP. Hồ Chí Minh", "--passphrase-file", str(secret),
            "--lang", "en"]
    refusals = (
        ("opt/motcua", "is not an absolute path"),
        ("/opt/mot cua", "cannot go into a systemd"),
        ("/opt/motcua%i", "cannot go into a systemd"),
        ("/opt/$HOME", "cannot go into a systemd"),
    )
    for bad, says in refusals:
        assert main([*init, "--install-dir", bad]) == 78
        err = capsys.readouterr().err
        assert f"ERROR: install_dir: {bad!r} {says}" in err, err
        assert "Traceback" not in err and len([line for line in err.splitlines() if "ERROR" in line]) == 1
        assert not directory.exists()
    with pytest.raises(ValueError, match="install_dir"):
        make_settings(install_dir="/opt/mot\ncua")


def test_the_kiosks_listener_can_require_tls_1_3(tmp_path: Path) -> None:
    layout = CenterLayout(tmp_path / "c")
    center_init(layout.root, make_settings(kiosk_tls="tlsv1.3"), PASSPHRASE)
    kiosks, services = layout.broker_conf.read_text().split("\nlistener ")[1:]
    assert "tls_version tlsv1.3" in kiosks.splitlines() and "tls_version tlsv1.2" in services.splitlines()
    assert "NumTickets = 0" in layout.openssl_conf.read_text()


def test_a_used_takeover_certificate_stays_on_every_crl_until_an_hour_past_its_end(tmp_path: Path) -> None:
    """``retire_takeover``: each later ``publish_crl`` lists the serial whatever list the caller gives
    (the store's, the bridges'), until ``TAKEOVER_LISTED_AFTER`` past the certificate's two minutes; then
    the CRL and the ledger forget it. ``takeovers_unlisted`` says when a publish is due for one."""
    from cryptography import x509

    from provisioning.center_pki import TAKEOVER_LIFETIME, TAKEOVER_LISTED_AFTER, CenterPki

    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pki = CenterPki.create(tmp_path / "pki", CENTER, "test", PASSPHRASE, now=start)
    cert, _key, serial = pki.issue_takeover("kiosk-x-01", now=start)
    end = x509.load_pem_x509_certificate(cert).not_valid_after_utc
    assert end == start + TAKEOVER_LIFETIME
    assert not pki.takeovers_unlisted(start)
    assert pki.retire_takeover(cert, now=start) == serial
    assert pki.takeovers_unlisted(start)
    kiosk = Revoked("abc", start, "key_compromise")
    pki.publish_crl([kiosk], now=start + dt.timedelta(seconds=1))
    assert pki.revoked_serials() == {"abc", serial} and not pki.takeovers_unlisted(start)
    entry = x509.load_pem_x509_crl(pki.crl_file.read_bytes()).get_revoked_certificate_by_serial_number(
        int(serial, 16)
    )
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.cessation_of_operation
    pki.publish_crl([], now=start + dt.timedelta(seconds=2))  # a caller whose list is empty
    assert pki.revoked_serials() == {serial}
    almost = end + TAKEOVER_LISTED_AFTER - dt.timedelta(seconds=1)
    pki.publish_crl([kiosk], now=almost)
    assert pki.revoked_serials() == {"abc", serial}
    later = end + TAKEOVER_LISTED_AFTER
    pki.publish_crl([kiosk], now=later)
    assert pki.revoked_serials() == {"abc"} and not pki.takeovers_unlisted(later)
    other, _key, second = pki.issue_takeover("kiosk-x-02", now=later)
    pki.retire_takeover(other, now=later)
    ledger = json.loads(pki.takeovers_file.read_text())
    assert [item["serial"] for item in ledger] == [second]  # the one long over left out
    assert pki.takeovers_file.stat().st_mode & 0o777 == 0o600
