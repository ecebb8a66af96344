"""provisioning/pki.py: what a certificate may name and how long it lasts; private keys are private."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from provisioning.pki import MAX_KIOSK_DAYS, CertificateAuthority, PkiError


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "ca")


def validity_days(cert_file: Path) -> float:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return (cert.not_valid_after_utc - cert.not_valid_before_utc) / dt.timedelta(days=1)


@pytest.mark.parametrize(
    "name",
    ["fleet", "allocator", "counter", "center", "admin", "broker", "_center", "fleet-1",
     "allocator-hcm-ben-thanh", "counter-3", "Kiosk-A", "k"],
)
def test_a_kiosk_certificate_cannot_carry_a_reserved_or_malformed_name(ca, tmp_path, name):
    with pytest.raises(PkiError):
        ca.issue(tmp_path / "out", name)
    assert not (tmp_path / "out" / f"{name}.crt").exists()


def test_a_kiosk_certificate_lasts_at_most_a_year(ca, tmp_path):
    issued = ca.issue(tmp_path / "out", "kiosk-a")
    assert validity_days(issued.cert_file) <= MAX_KIOSK_DAYS + 1  # +5 minutes of clock skew allowance
    with pytest.raises(PkiError, match="at most 365 days"):
        ca.issue(tmp_path / "out", "kiosk-b", days=825)


def test_service_certificates_are_explicit(ca, tmp_path):
    for name in ("fleet", "fleet-2", "allocator", "counter"):
        issued = ca.issue(tmp_path / "out", name, service=True)
        cn = x509.load_pem_x509_certificate(issued.cert_file.read_bytes()).subject.rfc4514_string()
        assert cn == f"CN={name}"
    with pytest.raises(PkiError, match="not a center service name"):
        ca.issue(tmp_path / "out", "kiosk-a", service=True)


def test_private_keys_are_0600_even_over_an_existing_file(ca, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "kiosk-a.key"
    stale.write_text("old")
    os.chmod(stale, 0o644)
    issued = ca.issue(out, "kiosk-a")
    assert stat.S_IMODE(issued.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    fresh = ca.issue(tmp_path / "new-dir", "kiosk-b")
    assert stat.S_IMODE(fresh.key_file.parent.stat().st_mode) == 0o700
