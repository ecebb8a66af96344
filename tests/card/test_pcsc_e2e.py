"""End to end through the real pcscd + vpcd + the virtual chip: success and every failure path."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from drivers.card.errors import (
    CardRemovedError,
    CardTimeoutError,
    NotIdCardError,
    ReaderMissingError,
    SecureMessagingError,
    WrongKeyError,
)
from drivers.card.identity import IdentityRecord
from drivers.card.keys import AccessKey, access_keys_from_cccd_qr
from drivers.card.service import CardReaderService
from drivers.card.sim.chip import CardFaults
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile
from drivers.card.sim.vicc import VirtualCard
from drivers.card.sod import Authenticity

from .conftest import VPCD_PORT, wait_reader_empty

pytestmark = pytest.mark.pcsc

Insert = Callable[..., VirtualCard]
ROOT = Path(__file__).resolve().parents[2]


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


def _service(reader: str, pki: TestPki | None = None, timeout_s: float = 5.0) -> CardReaderService:
    return CardReaderService(reader, pki.trust_dir if pki else None, timeout_s)


def _wait_present(service: CardReaderService) -> None:
    assert service.wait_for_card(3.0), "virtual card did not appear in the reader"


def _swap(service: CardReaderService, card: VirtualCard) -> None:
    """Take ``card`` out and wait until pcscd noticed (it polls vpcd every ~0.4 s), as a citizen would."""
    card.remove()
    assert service.reader_name_substring is not None
    wait_reader_empty(service.reader_name_substring)


def test_read_genuine_card_through_pcscd(
    pcscd: str, inserted: Insert, adult: CardProfile, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inserted(adult)
    service = _service(pcscd, pki)
    _wait_present(service)
    record = service.read_identity(access_keys_from_cccd_qr(adult.qr_text))
    report = service.last_report
    assert report is not None
    assert record.authenticity is Authenticity.GENUINE
    assert (record.chip_auth, record.active_auth) == ("passed", "not_checked")
    assert (record.id_number, record.full_name, record.birth_date) == (
        "079090001234",
        "Nguyễn Văn An",
        date(1990, 5, 17),
    )
    assert record.place_of_residence == "Phường Bến Thành, TP. Hồ Chí Minh"
    # BAC 3, SOD 5 x 231, DG14 1, MSE + GENERAL AUTHENTICATE 2, then AES blocks of 223: DG1 1, DG13 2
    assert report.apdu_count == 3 + 5 + 1 + 2 + 1 + 2
    assert report.timings_ms["wall"] < 1000
    logs = caplog.text
    record.wipe()
    for secret in ("079090001234", "090001234", "Nguy", "Nguyen", "NGUYEN", "1990", "900517"):
        assert secret not in logs, f"personal data {secret!r} reached the logs"


def test_elderly_and_married_profiles_with_photo(
    pcscd: str, inserted: Insert, elderly: CardProfile, married: CardProfile, pki: TestPki
) -> None:
    service = _service(pcscd, pki)
    card = inserted(elderly)
    _wait_present(service)
    record = service.read_identity(access_keys_from_cccd_qr(elderly.qr_text), with_photo=True)
    assert record.expiry_date is None and record.age_on(date(2026, 11, 23)) == 78
    assert record.photo is not None and len(record.photo) == 15000
    assert record.spouse_name == "Đỗ Quang Đức"
    _swap(service, card)
    inserted(married)
    _wait_present(service)
    record = service.read_identity([_key(married)])
    assert (record.full_name, record.spouse_name) == ("Trần Thị Bích Ngọc", "Lê Hoàng Nam")


def test_wrong_key_through_pcscd(pcscd: str, inserted: Insert, adult: CardProfile) -> None:
    inserted(adult)
    service = _service(pcscd)
    _wait_present(service)
    with pytest.raises(WrongKeyError):
        service.read_identity([AccessKey.from_mrz("090001234", "900517", "350517")])
    # the card is still usable with the right key afterwards
    assert service.read_identity([_key(adult)]).id_number == "079090001234"


def test_card_lifted_mid_read_then_retry_succeeds(pcscd: str, inserted: Insert, adult: CardProfile) -> None:
    card = inserted(adult, CardFaults(remove_after_apdus=6))
    service = _service(pcscd)
    _wait_present(service)
    with pytest.raises(CardRemovedError) as info:
        service.read_identity([_key(adult)])
    assert info.value.code == "card_removed"
    assert card.wait_removed(2.0)
    _swap(service, card)
    card.insert(port=VPCD_PORT)  # the citizen puts the card back
    _wait_present(service)
    record = service.read_identity([_key(adult)])
    assert record.full_name == "Nguyễn Văn An"


def test_slow_card_never_hangs_past_the_timeout(pcscd: str, inserted: Insert, adult: CardProfile) -> None:
    inserted(adult, CardFaults(delay_s=0.3))
    service = _service(pcscd, timeout_s=1.0)
    _wait_present(service)
    started = time.monotonic()
    with pytest.raises(CardTimeoutError) as info:
        service.read_identity([_key(adult)])
    assert time.monotonic() - started < 1.5
    assert info.value.code == "card_timeout"


def test_not_id_card_and_bad_mac_and_altered(
    pcscd: str, inserted: Insert, adult: CardProfile, pki: TestPki
) -> None:
    service = _service(pcscd, pki)
    card = inserted(adult, CardFaults(not_id_card=True))
    _wait_present(service)
    with pytest.raises(NotIdCardError):
        service.read_identity([_key(adult)])
    _swap(service, card)
    card = inserted(adult, CardFaults(bad_mac=True))
    _wait_present(service)
    with pytest.raises(SecureMessagingError):
        service.read_identity([_key(adult)])
    _swap(service, card)
    inserted(adult, CardFaults(alter_dg13=True))
    _wait_present(service)
    record = service.read_identity([_key(adult)])
    assert (record.authenticity, record.authenticity_code) == (Authenticity.FAILED, "hash_mismatch")


def test_reader_missing_when_configured_reader_is_not_listed(pcscd: str) -> None:
    service = _service("Reader That Is Unplugged")
    assert service.reader_present() is False
    with pytest.raises(ReaderMissingError) as info:
        service.read_identity([AccessKey.from_mrz("090001234", "900517", "300517")])
    assert info.value.code == "card_reader_missing"
    result = service.self_test()
    assert result["reader_found"] is False and result["error"]["code"] == "card_reader_missing"


def test_no_card_and_self_test(pcscd: str, inserted: Insert, adult: CardProfile) -> None:
    service = _service(pcscd)
    assert service.reader_present() is True
    assert service.wait_for_card(0.2) is False
    result = service.self_test()
    assert (result["reader_found"], result["card_present"]) == (True, False)
    inserted(adult)
    _wait_present(service)
    result = service.self_test()
    assert (result["card_present"], result["card_answers"], result["is_id_card"]) == (True, True, True)
    assert result["atr"] == "3B888001" + b"CCCD-SIM".hex().upper() + "74"  # TCK = XOR of T0..last byte
    assert result["error"] is None and result["timings_ms"]["total"] < 1000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "card", "read", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )


def test_cli_card_read_json(
    pcscd: str, inserted: Insert, adult: CardProfile, pki: TestPki, tmp_path: Path
) -> None:
    inserted(adult)
    _wait_present(_service(pcscd))
    photo = tmp_path / "face.jpg"
    done = _cli(
        "--reader",
        pcscd,
        "--cccd-qr",
        adult.qr_text,
        "--trust",
        str(pki.trust_dir),
        "--photo",
        str(photo),
        "--show-personal-data",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["full_name"] == "Nguyễn Văn An" and out["birth_date"] == "1990-05-17"
    assert out["expiry_date"] == "2030-05-17" and out["authenticity"] == "genuine"
    assert (out["authenticity_code"], out["birth_date_trusted"]) == ("verified", True)
    assert out["apdu_count"] == 14 + 68 and "read_dg2" in out["timings"]  # DG2: ceil(15 082 / 223) = 68
    assert (out["chip_auth"], out["active_auth"]) == ("passed", "not_checked")
    assert photo.read_bytes()[:2] == b"\xff\xd8" and len(photo.read_bytes()) == 15000

    masked = json.loads(
        _cli(
            "--reader",
            pcscd,
            "--doc-number",
            "090001234",
            "--birth",
            "900517",
            "--expiry",
            "300517",
            "--json",
        ).stdout
    )
    assert masked["full_name"] == "N************" and masked["birth_date"] == "****-**-**"
    assert (masked["authenticity"], masked["authenticity_code"]) == ("not_verified", "no_trust_store")
    assert "079090001234" not in json.dumps(masked)

    failed = _cli(
        "--reader", pcscd, "--doc-number", "090001234", "--birth", "900517", "--expiry", "310517", "--json"
    )
    assert failed.returncode != 0
    assert json.loads(failed.stdout)["error"]["code"] == "card_wrong_key"


def test_identity_record_wipe_after_session(pcscd: str, inserted: Insert, married: CardProfile) -> None:
    inserted(married)
    service = _service(pcscd)
    _wait_present(service)
    record: IdentityRecord = service.read_identity([_key(married)], with_photo=True)
    record.wipe()
    assert record.is_wiped()
    assert "Ngọc" not in json.dumps(record.to_json(show_personal_data=True), ensure_ascii=False)


def test_sim_card_cli_serves_a_card_to_card_read(pcscd: str, tmp_path: Path) -> None:
    """``main.py sim card`` in its own process, read by ``main.py card read`` with --trust from its PKI."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sim = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "sim",
            "card",
            "--profile",
            "elderly",
            "--print-keys",
            "--vpcd",
            f"127.0.0.1:{VPCD_PORT}",
            "--pki",
            str(tmp_path / "pki"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert sim.stdout is not None
        keys = json.loads(sim.stdout.readline())
        assert "inserted" in sim.stdout.readline()
        assert keys["doc_number"] == "148005678" and keys["expiry"] == "991231"
        _wait_present(_service(pcscd))
        done = _cli(
            "--reader",
            pcscd,
            "--doc-number",
            keys["doc_number"],
            "--birth",
            keys["birth"],
            "--expiry",
            keys["expiry"],
            "--trust",
            keys["trust"],
            "--json",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out = json.loads(done.stdout)
        assert out["authenticity"] == "genuine" and out["expiry_date"] is None
    finally:
        sim.terminate()
        sim.wait(10)
        wait_reader_empty(pcscd)


def test_pace_can_through_pcscd_and_cli(
    pcscd: str, inserted: Insert, married: CardProfile, pki: TestPki
) -> None:
    inserted(married)
    service = _service(pcscd, pki)
    _wait_present(service)
    record = service.read_identity([AccessKey.from_can(married.id_number[-6:])])
    assert record.full_name == "Trần Thị Bích Ngọc" and record.authenticity is Authenticity.GENUINE
    assert service.last_report is not None
    assert service.last_report.access_control == "PACE-AES-brainpoolP256r1"
    done = _cli("--reader", pcscd, "--can", married.id_number[-6:], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["access_control"] == "PACE-AES-brainpoolP256r1"
    wrong = _cli("--reader", pcscd, "--can", "000000", "--json")
    assert json.loads(wrong.stdout)["error"]["code"] == "card_wrong_key"


def test_next_citizens_card_right_after_removal_appears(
    pcscd: str, inserted: Insert, adult: CardProfile, married: CardProfile
) -> None:
    """A demo removes one VirtualCard and inserts another object at once: vpcd must still see it."""
    first = inserted(adult)
    service = _service(pcscd)
    _wait_present(service)
    first.remove()
    inserted(married)  # a new object, no wait in between (VirtualCard settles per vpcd slot)
    deadline = time.monotonic() + 3.0
    while True:  # pcscd first notices the removal, then the new card
        try:
            record = service.read_identity([_key(married)])
            break
        except (CardRemovedError, ReaderMissingError):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert record.full_name == "Trần Thị Bích Ngọc"
